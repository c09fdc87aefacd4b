"""How ``zerohttp.StaticFiles`` talks ASGI, as plain functions over plain data (sans-IO).

The scope becomes the ``RequestHead`` the CLI server would have read (``route_path``,
``request_head``), and a ``Response`` becomes the messages to send for what the host offers in
``scope["extensions"]`` (``plan_messages``): ``http.response.zerocopysend`` (file ranges by
offset and count), ``http.response.pathsend`` (whole-file 200s only: it has no offset or
count), or plain ``http.response.body`` chunks read with pread. ``staticfiles.py`` runs the
plan.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ..message.response import ByteRange, FileBody, RequestHead, Response, lowered_pairs
from ..static.representation import whole_file

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Segment = bytes | ByteRange

ZEROCOPYSEND = "http.response.zerocopysend"
PATHSEND = "http.response.pathsend"

# Characters a Location path keeps as they are (RFC 3986 pchar plus "/"); mirrors paths.py.
_LOCATION_SAFE = "/!$&'()*+,;=:@-._~"


class Delivery(enum.Enum):
    """How file bytes reach the host, best first."""

    ZEROCOPY = ZEROCOPYSEND
    PATHSEND = PATHSEND
    STREAM = "http.response.body"


@dataclass(frozen=True, slots=True)
class FileRange:
    """One ``http.response.zerocopysend`` of the response's file; the runner adds ``file``."""

    offset: int
    count: int
    more_body: bool


@dataclass(frozen=True, slots=True)
class ReadSegments:
    """Literal bytes and file ranges to send as ``http.response.body`` chunks (more_body=True),
    read with pread in bounded chunks; the plan ends the body with a message of its own."""

    segments: tuple[Segment, ...]


Step = Message | FileRange | ReadSegments


def delivery_for(extensions: Mapping[str, Any] | None) -> Delivery:
    """The best body path the host advertises (ASGI: an extension is on if its key is there)."""
    if extensions:
        if ZEROCOPYSEND in extensions:
            return Delivery.ZEROCOPY
        if PATHSEND in extensions:
            return Delivery.PATHSEND
    return Delivery.STREAM


def route_path(scope: Scope) -> str:
    """The path below the mount: ``path`` without ``root_path``, cut only on a "/" boundary.

    Starlette's ``get_route_path``: servers that do not prefix ``path`` with ``root_path``
    (hypercorn, granian) give a path that does not start with it and is used as it is.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


def request_head(scope: Scope, route: str) -> RequestHead:
    """The request as the CLI server would have read it: the route path re-quoted (the core
    decodes escapes exactly once), the query string as sent, lower-case header names.

    UnicodeEncodeError for a path no UTF-8 request could have produced (lone surrogates):
    check ``path_is_faithful`` first.
    """
    target = quote(route, safe="/").encode("ascii")
    query: bytes = scope.get("query_string", b"")
    if query:
        target += b"?" + query
    headers = tuple((bytes(name).lower(), bytes(value)) for name, value in scope.get("headers", ()))
    method = scope["method"].encode("latin-1", "replace")
    version = scope.get("http_version", "1.1").encode("ascii", "replace")
    return RequestHead(method, target, version, headers)


_MALFORMED_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")  # as paths.parse_target refuses


def path_is_faithful(raw_path: bytes | None, route: str) -> bool:
    """Whether the decoded path still says what the client sent.

    The CLI refuses a malformed escape or non-UTF-8 with 400; hosts decode them leniently
    (``%zz`` kept as text, ``%ff`` as U+FFFD), so the route would name another file. Lone
    surrogates (a host decoding with surrogateescape) cannot be re-quoted at all.
    """
    if raw_path:
        if _MALFORMED_ESCAPE.search(raw_path):
            return False
        try:
            unquote_to_bytes(raw_path).decode("utf-8")
        except UnicodeDecodeError:
            return False
    try:
        route.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def location_prefix(root_path: str) -> str:
    """The mount's ``root_path`` as a Location prefix: percent-encoded, no trailing slash."""
    return quote(root_path.rstrip("/"), safe=_LOCATION_SAFE)


def body_message(body: bytes, more_body: bool) -> Message:
    """An ``http.response.body`` message; ``more_body=False`` completes the response."""
    return {"type": "http.response.body", "body": body, "more_body": more_body}


def plan_messages(
    response: Response,
    delivery: Delivery,
    *,
    path_size: int | None = None,
) -> list[Step]:
    """The messages that send ``response`` over a host offering ``delivery``.

    ``path_size`` is the size of the file at ``FileBody.path`` if it is still the file open
    on ``FileBody.fd`` (else None): pathsend makes the host open the path itself, so it is
    used only when the body is exactly that whole file; ranges and multipart bodies, and
    non-200 file bodies, are streamed. zerocopysend always names offset and count: the
    descriptor may be shared through the open-file cache, so its position means nothing.
    """
    start: Message = {
        "type": "http.response.start",
        "status": response.status,
        "headers": lowered_pairs(response.fields),
    }
    body = response.body
    if isinstance(body, bytes):
        return [start, body_message(body, False)]
    segments = body.segments
    if not segments:
        return [start, body_message(b"", False)]
    if (
        delivery is Delivery.PATHSEND
        and response.status == 200
        and path_size is not None
        and segments == whole_file(path_size)
        and os.path.isabs(body.path)
    ):
        return [start, {"type": PATHSEND, "path": body.path}]
    if delivery is Delivery.ZEROCOPY:
        steps: list[Step] = [start]
        last = len(segments) - 1
        for i, segment in enumerate(segments):
            if isinstance(segment, bytes):
                steps.append(body_message(segment, i < last))
            else:
                steps.append(FileRange(segment.start, segment.length, i < last))
        return steps
    return [start, ReadSegments(segments), body_message(b"", False)]


def spec_version(scope: Scope) -> tuple[int, ...]:
    """``scope["asgi"]["spec_version"]``; missing (or unreadable) means 2.0."""
    text = scope.get("asgi", {}).get("spec_version", "2.0")
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (2, 0)


# --- the I/O part ------------------------------------------------------------------------


def same_file_size(body: FileBody) -> int | None:
    """The size of the file at ``body.path`` if it is the one open on ``body.fd``.

    A file replaced on disk since it was opened would make a pathsend send other bytes than
    the headers (computed from the descriptor) describe.
    """
    try:
        opened = os.fstat(body.fd)
        named = os.stat(body.path)
    except OSError:
        return None
    if (opened.st_ino, opened.st_dev, opened.st_size) != (
        named.st_ino,
        named.st_dev,
        named.st_size,
    ):
        return None
    return opened.st_size
