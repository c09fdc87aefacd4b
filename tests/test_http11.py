"""The HTTP/1.1 connection rules zerohttp applies itself: limits, keep-alive, framing, heads."""

from __future__ import annotations

import h11
import pytest

from zerohttp.http.http11 import CONTINUE_100, render_head
from zerohttp.message.response import Response

Headers = list[tuple[bytes, bytes]]

HOST: Headers = [(b"host", b"example.com")]
DATE_LINE = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"


def test_continue_line() -> None:
    assert CONTINUE_100 == b"HTTP/1.1 100 Continue\r\n\r\n"


# --- render_head -----------------------------------------------------------------------------


def _response(status: int = 200, length: int = 2) -> Response:
    return Response(status, (("Content-Type", "text/plain"), ("Content-Length", str(length))))


def test_render_head_layout_keep_alive_11() -> None:
    head = render_head(_response(), DATE_LINE, keep_alive=True, http10=False)
    assert head == (
        b"HTTP/1.1 200 OK\r\n"
        b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        b"Server: zerohttp\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    ("keep_alive", "http10", "connection"),
    [
        (True, False, None),
        (False, False, b"Connection: close\r\n"),
        (True, True, b"Connection: keep-alive\r\n"),
        (False, True, b"Connection: close\r\n"),
    ],
)
def test_render_head_connection_field(
    keep_alive: bool, http10: bool, connection: bytes | None
) -> None:
    head = render_head(_response(404), DATE_LINE, keep_alive=keep_alive, http10=http10)
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n" + DATE_LINE)
    assert head.endswith(b"\r\n\r\n")
    assert head.count(b"\r\n\r\n") == 1
    assert head.lower().count(b"connection:") == (0 if connection is None else 1)
    if connection is not None:
        assert head.endswith(connection + b"\r\n")


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (304, b"HTTP/1.1 304 Not Modified\r\n"),
        (308, b"HTTP/1.1 308 Permanent Redirect\r\n"),
        (405, b"HTTP/1.1 405 Method Not Allowed\r\n"),
        (431, b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        (505, b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        (599, b"HTTP/1.1 599 \r\n"),
    ],
)
def test_render_head_status_line(status: int, line: bytes) -> None:
    head = render_head(Response(status), DATE_LINE, keep_alive=True, http10=False)
    assert head.startswith(line + DATE_LINE)


def _client_receive(data: bytes) -> tuple[h11.Connection, list[h11.Event]]:
    """Feed ``data`` to an h11 client that has just sent a GET; return all events."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "example.com")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    events: list[h11.Event] = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            break
        events.append(event)
        if isinstance(event, h11.EndOfMessage):
            break
    return client, events


@pytest.mark.parametrize(
    ("keep_alive", "http10", "client_state", "connection"),
    [
        (True, False, h11.DONE, None),
        (False, False, h11.MUST_CLOSE, b"close"),
        (True, True, h11.DONE, b"keep-alive"),
        (False, True, h11.MUST_CLOSE, b"close"),
    ],
)
def test_render_head_is_valid_http_for_h11(
    keep_alive: bool, http10: bool, client_state: object, connection: bytes | None
) -> None:
    head = render_head(_response(200, 2), DATE_LINE, keep_alive=keep_alive, http10=http10)
    client, events = _client_receive(head + b"hi")
    response, data, end = events
    assert isinstance(response, h11.Response)
    assert response.status_code == 200
    assert response.http_version == b"1.1"
    assert response.reason == b"OK"
    headers = dict(response.headers)
    assert headers[b"date"] == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert headers[b"server"] == b"zerohttp"
    assert headers[b"content-type"] == b"text/plain"
    assert headers[b"content-length"] == b"2"
    assert headers.get(b"connection") == connection
    assert isinstance(data, h11.Data) and bytes(data.data) == b"hi"
    assert isinstance(end, h11.EndOfMessage)
    assert client.their_state is client_state
    if client_state is h11.DONE:
        client.start_next_cycle()  # the connection really is reusable


def test_render_head_without_body_fields_for_h11() -> None:
    response = Response(308, (("Location", "/docs/"), ("Content-Length", "0")))
    head = render_head(response, DATE_LINE, keep_alive=True, http10=False)
    _, events = _client_receive(head)
    response, end = events
    assert isinstance(response, h11.Response)
    assert response.status_code == 308
    assert dict(response.headers)[b"location"] == b"/docs/"
    assert isinstance(end, h11.EndOfMessage)
