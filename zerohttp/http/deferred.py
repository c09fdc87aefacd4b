"""A synchronous ``Response`` sent later, through an ``Exchange``.

A handler that must wait before it can decide (a password checked in a thread) answers
with a ``Responder``; what it then wants to send is often an ordinary ``Response`` of the
handler it stands in front of: bytes, or a ``FileBody`` whose ranges must still go out by
sendfile. ``send_response`` does that through the exchange's own paths: the framing the
response's fields declare, no body bytes for HEAD, 204 or 304, and the file descriptor
released however the send ends.
"""

from __future__ import annotations

from ..message.response import ByteRange, FileBody, Response, lowered_pairs, omits_body
from .exchange import ClientDisconnected, Exchange


def exchange_headers(response: Response) -> list[tuple[bytes, bytes]]:
    """The response's fields as an exchange takes them: lower-case names (the framing
    reads ``content-length`` by that name), ``connection: close`` when it must close."""
    headers = lowered_pairs(response.fields)
    if response.close:
        headers.append((b"connection", b"close"))
    return headers


async def send_response(exchange: Exchange, response: Response) -> None:
    """Send ``response`` as the exchange's whole answer; a client gone meanwhile ends it
    quietly (the connection is already aborted)."""
    body = response.body
    try:
        exchange.start(response.status, exchange_headers(response))
        if isinstance(body, FileBody) and not omits_body(exchange.request.method):
            await _send_file_body(exchange, body)
        else:
            await exchange.write(b"" if isinstance(body, FileBody) else body, more=False)
    except ClientDisconnected:
        pass
    finally:
        response.release()


async def _send_file_body(exchange: Exchange, body: FileBody) -> None:
    """Each segment in order, ranges by ``send_file`` (zero-copy where the connection can)."""
    segments = body.segments
    if not segments:
        await exchange.write(b"", more=False)
        return
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        more = index < last
        if isinstance(segment, ByteRange):
            await exchange.send_file(body.fd, segment.start, segment.length, more=more)
        else:
            await exchange.write(segment, more=more)
