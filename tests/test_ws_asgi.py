"""Starlette and FastAPI WebSocket routes under ``zerohttp --app``, end to end.

The app (``apps/ws_frameworks.py``) runs in a ``zerohttp --app`` subprocess with a
``--mount /static`` directory beside it; clients are the ``websockets`` library, httpx-ws
and raw sockets (a TCP connection that just drops). What the routes see when their client
goes (``WebSocketDisconnect`` codes and reasons) is read back over HTTP.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from httpx_ws import connect_ws
from serverprocs import free_port, server_process
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from zerohttp.asgi.websocket import WebSocketSession
from zerohttp.asgi.websocket import message_payload as payload
from zerohttp.http.exchange import CONNECTED, FINISHED, READY, STARTED, TOLD, ClientDisconnected
from zerohttp.message.response import RequestHead, Response
from zerohttp.websocket.driver import WebSocketSettings
from zerohttp.websocket.handshake import Offer, read_offer

TESTS = Path(__file__).resolve().parent
TIMEOUT = 10.0
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    static = tmp_path_factory.mktemp("ws-static")
    (static / "hello.txt").write_text("hello from the mount\n")
    args = ["-m", "zerohttp", "--app", "apps.ws_frameworks:app", "--port", "0"]
    args += ["--lifespan", "on", "--mount", f"/static={static}"]
    with server_process(args, cwd=TESTS) as running:
        yield running.port


def ws(port: int, path: str, **kwargs: Any) -> ClientConnection:
    return connect(
        f"ws://127.0.0.1:{port}{path}", open_timeout=TIMEOUT, close_timeout=TIMEOUT, **kwargs
    )


def route_record(port: int, ident: str) -> Any:
    """How the route saw its client go, once it has."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            conn.request("GET", f"/fa/record/{ident}")
            reply = conn.getresponse()
            body = reply.read()
        finally:
            conn.close()
        if reply.status == 200:
            return json.loads(body)
        assert reply.status == 404, body
        assert time.monotonic() < deadline, f"no record for {ident}"
        time.sleep(0.02)


def closed_with(connection: ClientConnection) -> tuple[int, str] | None:
    """The close frame the server sent, once the connection is over."""
    with pytest.raises(ConnectionClosed):
        connection.recv(timeout=TIMEOUT)
    rcvd = connection.protocol.close_rcvd
    return None if rcvd is None else (int(rcvd.code), rcvd.reason)


# --- FastAPI ---------------------------------------------------------------------------------


def test_fastapi_echo_with_the_websockets_client(port: int) -> None:
    ident = uuid.uuid4().hex
    with ws(port, f"/fa/echo?id={ident}", subprotocols=["other", "chat"]) as conn:  # type: ignore[list-item]
        assert conn.subprotocol == "chat"
        conn.send("héllo")
        assert conn.recv(timeout=TIMEOUT) == "héllo"
        conn.send(b"\x00\x01" * 50_000)
        assert conn.recv(timeout=TIMEOUT) == b"\x00\x01" * 50_000
        conn.close(4005, "client done")
    assert route_record(port, ident) == {"code": 4005, "reason": "client done"}


def test_fastapi_echo_with_httpx_ws(port: int) -> None:
    ident = uuid.uuid4().hex
    with httpx.Client(timeout=TIMEOUT) as client:
        url = f"http://127.0.0.1:{port}/fa/echo?id={ident}"
        with connect_ws(url, client, subprotocols=["chat"]) as session:
            assert session.subprotocol == "chat"
            session.send_text("over httpx")
            assert session.receive_text(timeout=TIMEOUT) == "over httpx"
            session.send_bytes(b"\xff" * 1000)
            assert session.receive_bytes(timeout=TIMEOUT) == b"\xff" * 1000
    assert route_record(port, ident) == {"code": 1000, "reason": ""}


@pytest.mark.parametrize(
    ("how", "code", "reason"),
    [
        ("close 1001", 1001, "tab closed"),
        ("close without code", 1005, ""),  # www.rst: no code in the client's frame: 1005
        ("drop tcp", 1006, ""),  # RFC 6455 §7.1.5: no close frame at all: 1006
    ],
)
def test_the_route_sees_how_its_client_left(port: int, how: str, code: int, reason: str) -> None:
    ident = uuid.uuid4().hex
    if how == "close 1001":
        with ws(port, f"/fa/echo?id={ident}") as conn:
            conn.close(code, reason)
    else:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(
                f"GET /fa/echo?id={ident} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101 ")
            if how == "close without code":
                sock.sendall(b"\x88\x80" + b"\x00\x00\x00\x00")  # masked, empty close frame
                assert sock.recv(4096)[:2] == b"\x88\x00"  # the server's empty close frame
    assert route_record(port, ident) == {"code": code, "reason": reason}


def test_the_route_reads_url_client_headers_and_state(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    local = sock.getsockname()  # now: the client closes it as soon as the server has closed
    headers = {"X-Custom": "custom value"}
    with ws(port, "/fa/info/bob?flag=1", additional_headers=headers, sock=sock) as conn:
        info = json.loads(conn.recv(timeout=TIMEOUT))
        # Starlette's WebSocket.close(code, reason): the reason reaches the client
        assert closed_with(conn) == (4000, "done with info")
    assert info == {
        "url": f"ws://127.0.0.1:{port}/fa/info/bob?flag=1",
        "path": "/fa/info/bob",
        "client": ["127.0.0.1", local[1]],
        "header": "custom value",
        "name": "bob",
        "flag": "1",
        "state": "hello",
    }


def test_a_dependency_on_a_websocket_route(port: int) -> None:
    with ws(port, "/fa/room/lobby?token=secret") as conn:
        assert conn.recv(timeout=TIMEOUT) == "alice joined lobby"
        assert closed_with(conn) == (1000, "")
    # the dependency raises WebSocketException before accept: a close before accept, 403
    with pytest.raises(InvalidStatus) as denied:
        ws(port, "/fa/room/lobby?token=wrong")
    assert denied.value.response.status_code == 403


def test_a_denial_response(port: int) -> None:
    with pytest.raises(InvalidStatus) as denied:
        ws(port, "/fa/deny")
    response = denied.value.response
    assert response.status_code == 401
    assert response.headers["x-why"] == "login"
    assert response.body == b"members only\n"


def test_a_route_that_raises_closes_with_1011(port: int) -> None:
    with ws(port, "/fa/fail") as conn:
        assert conn.recv(timeout=TIMEOUT) == "about to fail"
        assert closed_with(conn) == (1011, "")


# --- Starlette -------------------------------------------------------------------------------


def test_a_starlette_endpoint(port: int) -> None:
    ident = uuid.uuid4().hex
    with ws(port, f"/st/shout?id={ident}") as conn:
        conn.send("hi")
        assert conn.recv(timeout=TIMEOUT) == "HI"
        conn.send("bye")
        assert closed_with(conn) == (4001, "said bye")
    # on_disconnect gets the code of the close the endpoint sent (the disconnect after it)
    assert route_record(port, ident) == {"code": 4001}


def test_a_starlette_endpoint_sees_the_client_close(port: int) -> None:
    ident = uuid.uuid4().hex
    with ws(port, f"/st/shout?id={ident}") as conn:
        conn.send("x")
        assert conn.recv(timeout=TIMEOUT) == "X"
        conn.close(4444, "")
    assert route_record(port, ident) == {"code": 4444}


# --- beside a static mount ----------------------------------------------------------------


def test_a_websocket_route_beside_a_static_mount(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/static/hello.txt")
        reply = conn.getresponse()
        assert (reply.status, reply.read()) == (200, b"hello from the mount\n")
    finally:
        conn.close()
    with ws(port, "/fa/echo") as socket_conn:
        socket_conn.send("beside the mount")
        assert socket_conn.recv(timeout=TIMEOUT) == "beside the mount"


def test_a_websocket_handshake_to_the_mount_gets_the_file(port: int) -> None:
    """--mount paths never reach the application: a handshake there is an ordinary GET
    whose Upgrade the static handler ignores (RFC 9110 §7.8: a server MAY ignore it), so a
    WebSocket client sees a 200 and gives up."""
    with pytest.raises(InvalidStatus) as refused:
        ws(port, "/static/hello.txt")
    assert refused.value.response.status_code == 200
    assert refused.value.response.body == b"hello from the mount\n"


# --- the session's rules before the handshake completes, without sockets ----------------------

HANDSHAKE = (
    (b"host", b"x"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", KEY.encode()),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-protocol", b"chat"),
)


class FakeExchange:
    """What a ``WebSocketSession`` uses of an ``Exchange``, recorded."""

    def __init__(self) -> None:
        self.request = RequestHead(b"GET", b"/ws", b"1.1", HANDSHAKE)
        self.phase = READY
        self.peer = CONNECTED
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.switched: Response | None = None

    @property
    def closed_for_sending(self) -> bool:
        return self.peer >= TOLD

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status, self.headers, self.phase = status, list(headers), STARTED

    async def write(self, data: bytes, *, more: bool) -> None:
        self.body += data
        if not more:
            self.phase = FINISHED

    def switch(self, response: Response, factory: Any) -> None:
        self.switched, self.phase = response, FINISHED


class FakeHost:
    def __init__(self, app: Any) -> None:
        self.app = app

    def websocket_scope(self, exchange: Any, offer: Offer) -> dict[str, Any]:
        return {"type": "websocket", "subprotocols": list(offer.subprotocols)}


def run_session(app: Any) -> FakeExchange:
    request = RequestHead(b"GET", b"/ws", b"1.1", HANDSHAKE)
    offer = read_offer(request, deflate=False)
    assert isinstance(offer, Offer)
    exchange = FakeExchange()
    session = WebSocketSession(FakeHost(app), offer, WebSocketSettings())
    asyncio.run(session.run(exchange))  # type: ignore[arg-type]
    return exchange


def test_a_close_before_accept_is_a_403_and_ends_the_session() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "websocket.close", "code": 4000})
        seen.append(await receive())
        for message in ({"type": "websocket.accept"}, {"type": "websocket.send", "text": "x"}):
            with pytest.raises(ClientDisconnected):
                await send(message)

    exchange = run_session(app)
    assert (exchange.status, exchange.body) == (403, b"403 Forbidden\n")
    assert (b"connection", b"close") in exchange.headers
    assert seen == [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1006, "reason": ""},
    ]


def test_a_denial_response_needs_a_final_status_and_ends_with_its_body() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for status in (100, 101, 600):
            with pytest.raises(RuntimeError):
                await send({"type": "websocket.http.response.start", "status": status})
        with pytest.raises(RuntimeError):
            await send({"type": "websocket.http.response.body", "body": b"early"})
        start = {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"X-A", b"1")],
        }
        await send(start)
        with pytest.raises(RuntimeError):  # a close inside the response: an invalid event
            await send({"type": "websocket.close"})
        await send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"pe"})
        with pytest.raises(ClientDisconnected):
            await send({"type": "websocket.http.response.body", "body": b"late"})

    exchange = run_session(app)
    assert exchange.status == 401
    assert exchange.headers == [(b"x-a", b"1"), (b"connection", b"close")]
    assert exchange.body == b"nope"


def test_accept_answers_101_with_the_subprotocol_and_the_app_headers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"x-extra", b"1"), (b"sec-websocket-protocol", b"not this way")]
        await send({"type": "websocket.accept", "subprotocol": "chat", "headers": headers})

    exchange = run_session(app)
    assert exchange.switched is not None
    assert exchange.switched.status == 101
    fields = [(n.lower(), v) for n, v in exchange.switched.fields]
    assert ("sec-websocket-protocol", "chat") in fields
    assert ("x-extra", "1") in fields
    assert ("sec-websocket-protocol", "not this way") not in fields


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"text": "t"}, "t"),
        ({"bytes": b"b"}, b"b"),
        ({"text": "t", "bytes": None}, "t"),
        ({"text": None, "bytes": bytearray(b"b")}, b"b"),
        ({"text": "t", "bytes": b"b"}, RuntimeError),
        ({}, RuntimeError),
        ({"text": None, "bytes": None}, RuntimeError),
    ],
)
def test_a_send_carries_exactly_one_of_bytes_and_text(
    message: dict[str, Any], expected: Any
) -> None:
    # www.rst: "Exactly one of bytes or text must be non-None. One or both keys may be present"
    if expected is RuntimeError:
        with pytest.raises(RuntimeError):
            payload({"type": "websocket.send", **message})
    else:
        assert payload({"type": "websocket.send", **message}) == expected


# --- over TLS -------------------------------------------------------------------------------


def test_a_route_over_tls_sees_wss(tmp_path: Path) -> None:
    """The scope's scheme is ``wss`` on a TLS listener (www.rst: "likely ws or wss"), so
    Starlette's ``websocket.url`` names it."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = free_port()  # the banner names https://, which server_process does not read
    args = ["-m", "zerohttp", "--app", "apps.ws_frameworks:app", "--port", str(port)]
    args += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    with server_process(args, port=port, cwd=TESTS) as running:
        url = f"wss://127.0.0.1:{running.port}/fa/info/tls"
        with connect(url, ssl=context, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as conn:
            info = json.loads(conn.recv(timeout=TIMEOUT))
            assert closed_with(conn) == (4000, "done with info")
    assert info["url"] == url
