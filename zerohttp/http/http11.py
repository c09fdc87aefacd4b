"""HTTP/1.1 connection rules that h11 leaves to us, as plain functions over plain data.

zerohttp keeps h11 as its request parser but renders responses itself (h11's
``Connection.send`` costs ~20 µs a response), so the parts of the state machine that
decide framing and heads for the *response* live here; what a request head says
(size, framing, keep-alive, Expect) is read in one pass by ``reader.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from ..message.response import SERVER_NAME, STATUS_LINES, Response, omits_body, status_line

SUPPORTED_VERSIONS = (b"1.1", b"1.0")
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"

Headers = Sequence[tuple[bytes, bytes]]


def keep_alive_requested(http_version: bytes, connection: bytes | None) -> bool:
    """RFC 9112 §9.3: 1.1 persists unless ``close``; 1.0 only with ``keep-alive``.

    ``connection`` is the request's Connection field values joined by commas (None: none).
    """
    if connection is None:
        return http_version != b"1.0"
    tokens = {token.strip().lower() for token in connection.split(b",")}
    if http_version == b"1.0":
        return b"keep-alive" in tokens and b"close" not in tokens
    return b"close" not in tokens


def render_head(response: Response, date_line: bytes, *, keep_alive: bool, http10: bool) -> bytes:
    """Status line, Date, Server, the core's fields and the Connection field, then CRLF.

    The one rendering of a core response's head; its fields come from
    ``Response.field_lines`` (a cached rendering when the open-file cache made one).
    """
    status = response.status
    if not keep_alive:
        connection = b"Connection: close\r\n"
    elif http10:
        connection = b"Connection: keep-alive\r\n"
    else:
        connection = b""
    return b"".join(
        (
            STATUS_LINES.get(status) or status_line(status),
            date_line,
            b"Server: ",
            SERVER_NAME,
            b"\r\n",
            response.field_lines(),
            connection,
            b"\r\n",
        )
    )


# --- responses written by an application (the ASGI host) ------------------------------

# RFC 9110 §5.1 token; a §5.5 field-value has no CR, LF or NUL (obs-text allowed).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Fields the connection layer owns: an application's copy would contradict our framing.
SERVER_LINE = b"Server: " + SERVER_NAME + b"\r\n"
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding"})


class InvalidResponse(ValueError):
    """An application's status or header field that must not reach the wire."""


class Framing(NamedTuple):
    """How an application's response body is delimited on the wire (a tuple: made per
    response, and a frozen dataclass costs several times as much to build)."""

    length: int | None  # Content-Length the application declared
    chunked: bool  # Transfer-Encoding: chunked added by us
    bodiless: bool  # HEAD, 1xx, 204, 304: body bytes are dropped
    keep_alive: bool


def app_response_framing(
    method: bytes,
    http_version: bytes,
    status: int,
    headers: Headers,
    *,
    keep_alive: bool,
) -> Framing:
    """RFC 9112 §6: Content-Length if the app gave one, else chunked on 1.1, else close.

    A HEAD response carries the framing fields a GET would have had, without the body.
    """
    length: int | None = None
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                raise InvalidResponse(f"content-length {value!r} is not a number")
            length = int(value)
        elif name == b"connection" and b"close" in value.lower():
            keep_alive = False
    no_content = status < 200 or status in (204, 304)
    bodiless = no_content or omits_body(method)
    chunked = length is None and not no_content and http_version == b"1.1"
    if length is None and not no_content and not chunked:
        keep_alive = False  # HTTP/1.0: the end of the body is the end of the connection
    return Framing(length, chunked, bodiless, keep_alive)


# Field names already checked against _TOKEN (an application sends the same few names on
# every response); bounded, so names that vary cannot grow it without end.
_TOKENS: dict[bytes, bool] = {}
_TOKENS_MAX = 512


def _is_token(name: bytes) -> bool:
    ok = _TOKENS.get(name)
    if ok is None:
        ok = _TOKEN.match(name) is not None
        if len(_TOKENS) < _TOKENS_MAX:
            _TOKENS[name] = ok
    return ok


def render_app_head(
    status: int,
    headers: Headers,
    date_line: bytes,
    framing: Framing,
    *,
    http10: bool,
) -> bytes:
    """The head for an application's response; refuses fields that could split it."""
    if not 100 <= status <= 999:
        raise InvalidResponse(f"status {status!r} is not a three-digit code")
    lines = [status_line(status), date_line, SERVER_LINE]
    for name, value in headers:
        if name in HOP_BY_HOP:
            continue
        # CR, LF, NUL: ints, so ``in`` is one memchr (a bytes needle costs several times more)
        if not _is_token(name) or 13 in value or 10 in value or 0 in value:
            raise InvalidResponse(f"header field {name!r}: {value!r} is not valid HTTP")
        if name == b"date":
            lines[1] = b""
        elif name == b"server":
            lines[2] = b""
        lines += (name, b": ", value.strip(b" \t"), b"\r\n")
    if framing.chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if not framing.keep_alive:
        lines.append(b"Connection: close\r\n")
    elif http10:
        lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); empty data would end the body, so ''."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"
