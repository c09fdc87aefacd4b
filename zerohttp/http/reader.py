"""Everything the HTTP/1.1 driver needs from a request head, read in one pass.

A bodiless GET/HEAD in the common shape is read by ``simple_head.read_simple_head``, which
reads its keep-alive in the same pass and whose shape settles the rest (no body, no Expect,
within the size limit). Any other head is h11's, and ``head_of_h11`` reads what h11 parsed
in one loop over its fields: size, framing, conflicts, keep-alive and ``Expect``.
Plain functions over plain data (sans-IO).
"""

from __future__ import annotations

from dataclasses import dataclass

import h11

from ..message.response import RequestHead
from .http11 import SUPPORTED_VERSIONS, Headers, keep_alive_requested


@dataclass(slots=True)
class Head:
    """A request head and what it says about the exchange around it."""

    request: RequestHead
    body: int | None = 0  # bytes of body declared: 0 none, None chunked
    keep_alive: bool = True  # what the client asked for (RFC 9112 §9.3)
    expects_continue: bool = False
    refusal: int | None = None  # the status to refuse it with (505, 431, 400), or None


def header_pairs(event: h11.Request) -> tuple[tuple[bytes, bytes], ...]:
    """``(lower-case name, value)`` pairs, read once.

    Iterating h11's ``Headers`` goes through ``Sequence.__iter__`` and a ``__getitem__``
    per field (~12 calls per request measured); its ``_full_items`` list is the same data.
    """
    full = getattr(event.headers, "_full_items", None)
    if full is None:
        return tuple(event.headers)
    return tuple([(name, value) for _, name, value in full])


def head_of_h11(event: h11.Request, max_head: int) -> Head:
    return head_of(event.method, event.target, event.http_version, header_pairs(event), max_head)


def head_of(method: bytes, target: bytes, version: bytes, headers: Headers, max_head: int) -> Head:
    """One pass over the fields of a head h11 accepted.

    The size is each field's shortest wire form (``Name:value\\r\\n``): h11's
    ``max_incomplete_event_size`` only bounds a head still arriving, and one that lands
    complete in a single read is accepted at any size. Content-Length beside
    Transfer-Encoding is refused as nginx does (the request-smuggling shape, RFC 9112 §6.3).
    """
    size = len(method) + len(target) + len(b" HTTP/1.1\r\n\r\n") + 1
    length = 0
    has_length = chunked = expect = False
    connection: bytes | None = None
    for name, value in headers:
        size += len(name) + len(value) + 3
        if name == b"content-length":
            has_length = True
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"connection":
            connection = value if connection is None else connection + b"," + value
        elif name == b"expect":
            expect = expect or value.lower() == b"100-continue"
    request = RequestHead(
        method, target, version, headers if isinstance(headers, tuple) else tuple(headers)
    )
    refusal = None
    if version not in SUPPORTED_VERSIONS:
        refusal = 505
    elif size > max_head:
        refusal = 431
    elif has_length and chunked:
        refusal = 400
    keep_alive = keep_alive_requested(version, connection)
    return Head(
        request,
        None if chunked else length,
        keep_alive,
        expect and version == b"1.1",
        refusal,
    )
