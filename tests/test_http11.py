"""The HTTP/1.1 connection rules zerohttp applies itself: limits, keep-alive, framing, heads."""

from __future__ import annotations

import h11
import pytest

from zerohttp.http.http11 import (
    CONTINUE_100,
    declared_body,
    expects_continue,
    head_size,
    keep_alive_requested,
    render_head,
    request_error,
)
from zerohttp.message.response import Response

Headers = list[tuple[bytes, bytes]]

HOST: Headers = [(b"host", b"example.com")]
DATE_LINE = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"


# --- request_error ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [b"2.0", b"0.9", b"1.2", b"1", b"", b"1.10", b"11"])
def test_unsupported_version_is_505(version: bytes) -> None:
    assert request_error(version, b"GET", b"/", HOST, 16384) == 505


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_supported_version_small_head_is_fine(version: bytes) -> None:
    assert request_error(version, b"GET", b"/", HOST, 16384) is None


def test_head_size_is_the_shortest_wire_size() -> None:
    """``Name:value`` without the optional space: a head that fits is never refused."""
    headers: Headers = [(b"host", b"example.com"), (b"accept", b"*/*")]
    wire = b"GET /index.html HTTP/1.1\r\nhost:example.com\r\naccept:*/*\r\n\r\n"
    assert head_size(b"GET", b"/index.html", headers) == len(wire)
    assert head_size(b"GET", b"/", []) == len(b"GET / HTTP/1.1\r\n\r\n")


def test_head_over_limit_is_431() -> None:
    size = head_size(b"GET", b"/", HOST)
    assert request_error(b"1.1", b"GET", b"/", HOST, size) is None
    assert request_error(b"1.1", b"GET", b"/", HOST, size - 1) == 431


def test_long_target_or_many_headers_is_431() -> None:
    assert request_error(b"1.1", b"GET", b"/" + b"a" * 20000, HOST, 16384) == 431
    many = HOST + [(b"x-filler", b"v" * 100)] * 200
    assert request_error(b"1.1", b"GET", b"/", many, 16384) == 431
    assert request_error(b"1.1", b"GET", b"/", many[:100], 16384) is None


def test_version_checked_before_size() -> None:
    assert request_error(b"2.0", b"GET", b"/" + b"a" * 20000, HOST, 16384) == 505


# --- keep_alive_requested --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Close", False),
        (b"1.1", b"CLOSE", False),
        (b"1.1", b"keep-alive", True),
        (b"1.1", b"keep-alive, close", False),
        (b"1.1", b"Upgrade, close", False),
        (b"1.1", b"Upgrade", True),
        (b"1.1", b"closed", True),
        (b"1.1", b"  close  ", False),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"KEEP-ALIVE", True),
        (b"1.0", b"keep-alive, Upgrade", True),
        (b"1.0", b"Upgrade,keep-alive", True),
        (b"1.0", b"keep-alive, close", False),
        (b"1.0", b"close", False),
        (b"1.0", b"Upgrade", False),
        (b"1.0", b"keep-alive-ish", False),
    ],
)
def test_keep_alive_requested(version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    headers: Headers = list(HOST)
    if connection is not None:
        headers.append((b"connection", connection))
    assert keep_alive_requested(version, headers) is keep_alive


def test_keep_alive_tokens_from_several_connection_fields() -> None:
    headers: Headers = [(b"connection", b"keep-alive"), (b"connection", b"close")]
    assert keep_alive_requested(b"1.0", headers) is False
    assert keep_alive_requested(b"1.1", headers) is False
    headers = [(b"connection", b"upgrade"), (b"connection", b"keep-alive")]
    assert keep_alive_requested(b"1.0", headers) is True


def test_close_in_other_field_is_ignored() -> None:
    assert keep_alive_requested(b"1.1", [(b"x-connection", b"close")]) is True
    assert keep_alive_requested(b"1.0", [(b"x-connection", b"keep-alive")]) is False


# --- declared_body / expects_continue --------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "size"),
    [
        ([], 0),
        (HOST, 0),
        ([(b"content-length", b"0")], 0),
        ([(b"content-length", b"42")], 42),
        ([*HOST, (b"content-length", b"123456789")], 123456789),
        ([(b"transfer-encoding", b"chunked")], None),
        ([(b"transfer-encoding", b"chunked"), (b"content-length", b"5")], None),
    ],
)
def test_declared_body(headers: Headers, size: int | None) -> None:
    assert declared_body(headers) == size


@pytest.mark.parametrize(
    ("version", "headers", "expected"),
    [
        (b"1.1", [(b"expect", b"100-continue")], True),
        (b"1.1", [(b"expect", b"100-Continue")], True),
        (b"1.1", [*HOST, (b"expect", b"100-CONTINUE")], True),
        (b"1.0", [(b"expect", b"100-continue")], False),
        (b"1.1", [], False),
        (b"1.1", [(b"expect", b"200-ok")], False),
        (b"1.1", [(b"x-expect", b"100-continue")], False),
    ],
)
def test_expects_continue(version: bytes, headers: Headers, expected: bool) -> None:
    assert expects_continue(version, headers) is expected


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
