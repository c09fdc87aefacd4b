"""The message model: plain data passed between the handlers and the protocol drivers.

A ``Response`` keeps its header fields as ``(name, value)`` pairs until the head is
written, so every rule that acts on a response after the handler (HEAD, a mount prefix's
``Location``, per-path field rules) works on that structure, never on rendered bytes.
Rendering is ``render_fields``; the open-file cache keeps a ``RenderedFields`` per file
version, and a response built from it carries it so the hot path writes cached bytes. The
rendering is used only while it is of the response's current ``fields`` tuple (checked by
identity), so a rule that changes a field drops it without having to know about it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Releasable(Protocol):
    """A shared descriptor's owner (the open-file cache's ``SharedFile``)."""

    def release(self) -> None: ...


SERVER_NAME = b"zerohttp"


@dataclass(slots=True)  # not frozen: built once per request, and frozen init costs more
class RequestHead:
    """What the core needs to know about a request; header names are lower-case."""

    method: bytes
    target: bytes
    http_version: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def header(self, name: bytes) -> bytes | None:
        """The last value of header ``name`` (lower-case), or None."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None


@dataclass(slots=True)
class FileBody:
    """Literal bytes and ranges of one open regular file, sent in order.

    A plain 200 is one range; a multipart/byteranges 206 interleaves part headers and
    ranges, so every part body can still go out through sendfile. The response owns ``fd``
    and must close it.
    """

    fd: int
    path: str
    segments: tuple[bytes | ByteRange, ...]
    owner: Releasable | None = None  # a cached descriptor: release it instead of closing

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            if self.owner is not None:
                self.owner.release()
            else:
                os.close(fd)

    @property
    def length(self) -> int:
        return sum(len(s) if isinstance(s, bytes) else s.length for s in self.segments)


Field = tuple[str, str]
Fields = tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class RenderedFields:
    """``fields`` and ``render_fields(fields)``, kept together by a cache of responses."""

    fields: Fields
    data: bytes


def lowered_pairs(fields: Iterable[Field]) -> list[tuple[bytes, bytes]]:
    """``fields`` as an ASGI app and an ``Exchange`` take them: latin-1 bytes, names
    lower-case (the exchange's framing reads ``content-length`` by that name)."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fields]


def rendered(fields: Fields) -> RenderedFields:
    return RenderedFields(fields, render_fields(fields))


class FieldsChange:
    """A change to every response's fields (a rule's, CORS') that keeps the hot path's
    pre-rendered head: a response carrying a current rendering (the open-file cache's,
    one per file version) gets the rendering of its changed fields, made once per source
    rendering and kept (at most ``limit``; the memo starts again when full). Any other
    response just has its fields changed."""

    __slots__ = ("_made", "change", "limit")

    def __init__(self, change: Callable[[Fields], Fields], limit: int) -> None:
        self.change = change
        self.limit = limit
        # id of a source rendering -> (that rendering, the changed one); the source is kept
        # so that an id reused after it is freed is never taken for it
        self._made: dict[int, tuple[RenderedFields, RenderedFields]] = {}

    def apply(self, response: Response) -> Response:
        source = response.rendered
        if source is None or source.fields is not response.fields:
            response.fields = self.change(response.fields)
            return response
        made = self._made.get(id(source))
        if made is None or made[0] is not source:
            if len(self._made) >= self.limit:
                self._made.clear()
            made = self._made[id(source)] = (source, rendered(self.change(source.fields)))
        response.fields = made[1].fields
        response.rendered = made[1]
        return response


def omits_body(method: bytes) -> bool:
    """RFC 9110 §9.3.2: the response to HEAD is GET's status and fields without the body.

    The one statement of the rule: ``Response.body_for`` for the core's responses and
    the framing of an application's (``http.http11``) both ask it.
    """
    return method == b"HEAD"


@dataclass(slots=True)
class Response:
    """Status, header fields and a body: bytes, a file region, or nothing.

    ``fields`` are ``(name, value)`` pairs in order, the value as it goes on the wire;
    change them by assigning a new tuple (or with ``set_field``). ``rendered`` is an
    optional cached rendering, used only while ``rendered.fields is fields``.
    """

    status: int
    fields: Fields = ()
    body: bytes | FileBody = b""
    close: bool = False
    rendered: RenderedFields | None = None

    def field_lines(self) -> bytes:
        """The fields as ``Name: value\\r\\n`` lines: the cached rendering while it is current."""
        cached = self.rendered
        if cached is not None and cached.fields is self.fields:
            return cached.data
        return render_fields(self.fields)

    def field(self, name: str) -> str | None:
        """The last value of field ``name`` (any case), or None."""
        name = name.lower()
        found = None
        for key, value in self.fields:
            if key.lower() == name:
                found = value
        return found

    def set_field(self, name: str, value: str) -> None:
        """Field ``name`` is ``value``: the first such field's value replaced, any others
        removed, appended when there was none."""
        lower = name.lower()
        fields: list[Field] = []
        done = False
        for key, old in self.fields:
            if key.lower() != lower:
                fields.append((key, old))
            elif not done:
                fields.append((key, value))
                done = True
        if not done:
            fields.append((name, value))
        self.fields = tuple(fields)

    def body_for(self, method: bytes) -> bytes | FileBody:
        """The body to send for a request with ``method``; for HEAD none, and a file
        this response holds is released now (the fields still describe GET's body)."""
        if omits_body(method):
            self.release()
            return b""
        return self.body

    def release(self) -> None:
        if isinstance(self.body, FileBody):
            self.body.close()


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


STATUS_LINES = {int(s): _status_line(int(s)) for s in HTTPStatus}


def status_line(status: int) -> bytes:
    return STATUS_LINES.get(status) or _status_line(status)


def render_fields(fields: Iterable[Field]) -> bytes:
    """``Name: value\\r\\n`` lines; values are produced by the core, never copied from a request."""
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in fields)


def error_response(status: int, extra: Iterable[Field] = (), *, close: bool = False) -> Response:
    """A short plain-text error page, e.g. ``404 Not Found``."""
    body = f"{status} {HTTPStatus(status).phrase}\n".encode("ascii")
    fields = (
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
        *extra,
    )
    return Response(status, fields, body, close=close)
