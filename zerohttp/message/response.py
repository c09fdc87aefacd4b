"""The message model: plain data passed between the handlers and the protocol drivers.

The core returns a ``Response`` whose header fields are already rendered bytes, so a
later file cache can hand out the same bytes for every request of a file version; the
connection layer only adds the status line, ``Date`` and ``Connection`` before writing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class Response:
    """Status, rendered header fields and a body: bytes, a file region, or nothing.

    ``content_length`` is what the ``Content-Length`` field says; for HEAD it describes
    the body that a GET would have carried while ``body`` stays empty.
    """

    status: int
    fields: bytes = b""
    body: bytes | FileBody = b""
    close: bool = False
    info: dict[str, object] = field(default_factory=dict)

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


def render_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    """``Name: value\\r\\n`` lines; values are produced by the core, never copied from a request."""
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in fields)


def error_response(
    status: int, extra: Iterable[tuple[str, str]] = (), *, close: bool = False
) -> Response:
    """A short plain-text error page, e.g. ``404 Not Found``."""
    body = f"{status} {HTTPStatus(status).phrase}\n".encode("ascii")
    fields = render_fields(
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            *extra,
        ]
    )
    return Response(status, fields, body, close=close)
