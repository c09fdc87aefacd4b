"""--body-timeout over real sockets: a request body that stops arriving gets 408 (or, once
the response has started, a closed connection) within the timeout, whether the body is
read to be dropped or read by an ASGI app; a slow body that keeps moving is never cut, nor
one the server itself holds back (an app not reading yet, a client waiting for its
100 Continue). Each connection is timed from its last byte to the server's close."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server

TIMEOUT = 1.0  # --body-timeout in these tests
# The sweeper checks every TIMEOUT / 4; allow a loaded box some slack on top.
CLOSED_WITHIN = TIMEOUT + 1.0
STALLED_GET = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
LOOPS = ["uvloop", "asyncio"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("a\n")
    return tmp_path


@pytest.fixture(params=LOOPS)
def static(request: pytest.FixtureRequest, root: Path) -> Iterator[RunningServer]:
    with start_server(
        root,
        request.param,
        header_timeout=TIMEOUT,
        keepalive_timeout=TIMEOUT,
        body_timeout=TIMEOUT,
    ) as server:
        yield server


def connect(server: RunningServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def read_to_close(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took; fails the
    test if the connection is still open after ``limit`` seconds."""
    start = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pytest.fail(f"still open after {limit} s; received {data!r}")
    except ConnectionResetError:
        pass
    return data, time.monotonic() - start


class Recorder:
    """An ASGI app that reads the whole request body, then answers with what it saw.

    ``/first-then-read`` starts its response (and sends a first chunk) before reading; with
    ``?wait=S`` it sleeps S seconds before its first receive(), holding the body unread.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.done = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            await self.serve(scope, receive, send)
        finally:
            self.done.set()

    async def serve(self, scope: Any, receive: Any, send: Any) -> None:
        started = scope["path"] == "/first-then-read"
        if started:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
        query = scope["query_string"].decode()
        if query.startswith("wait="):
            await asyncio.sleep(float(query.removeprefix("wait=")))
        size = 0
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] == "http.disconnect":
                return
            size += len(message["body"])
            if not message["more_body"]:
                break
        body = b"%d" % size
        if not started:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))],
                }
            )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=LOOPS)
def app_server(
    request: pytest.FixtureRequest, root: Path
) -> Iterator[tuple[RunningServer, Recorder]]:
    app = Recorder()
    with start_server(root, request.param, app=app, lifespan="off", body_timeout=TIMEOUT) as server:
        yield server, app


# --- a body read to be dropped -------------------------------------------------------


def test_a_stalled_body_of_a_get_gets_408_and_a_close(static: RunningServer) -> None:
    """The issue's reproduction: a head that declares a body escaped every deadline."""
    with connect(static) as sock:
        sock.sendall(STALLED_GET)
        data, took = read_to_close(sock, CLOSED_WITHIN + 3)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert b"\r\nConnection: close\r\n" in data
    assert took <= CLOSED_WITHIN


def test_a_partly_sent_body_stalls_too(static: RunningServer) -> None:
    with connect(static) as sock:
        sock.sendall(STALLED_GET + b"12345")
        data, took = read_to_close(sock, CLOSED_WITHIN + 3)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert took <= CLOSED_WITHIN


def send_slowly(sock: socket.socket, body: bytes, every: float) -> None:
    """One byte every ``every`` seconds: a slow client that keeps making progress."""
    for byte in body:
        time.sleep(every)
        sock.sendall(bytes([byte]))


def test_a_slow_body_that_keeps_moving_is_not_cut(static: RunningServer) -> None:
    body = b"0123456"  # 7 bytes, one every 0.3 s: 2.1 s, twice the timeout
    with connect(static) as sock:
        sock.sendall(STALLED_GET.replace(b"10", b"%d" % len(body)))
        send_slowly(sock, body, 0.3)
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = read_to_close(sock, 10)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2, data  # kept alive for the next request


def test_fifty_stalled_bodies_close_on_time_while_others_are_served(
    static: RunningServer,
) -> None:
    stalled = [connect(static) for _ in range(50)]
    try:
        for sock in stalled:
            sock.sendall(STALLED_GET)
        sent = time.monotonic()
        # a normal client meanwhile, on keep-alive, until every stalled one is closed
        with connect(static) as client:
            selector = selectors.DefaultSelector()
            for sock in stalled:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ, bytearray())
            closed: dict[socket.socket, float] = {}
            served = 0
            while len(closed) < len(stalled) and time.monotonic() - sent < CLOSED_WITHIN + 5:
                client.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = client.recv(65536)
                assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"a\n")
                served += 1
                for key, _ in selector.select(timeout=0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    chunk = sock.recv(65536)
                    key.data.extend(chunk)
                    if not chunk:
                        closed[sock] = time.monotonic() - sent
                        selector.unregister(sock)
            selector.close()
    finally:
        for sock in stalled:
            sock.close()
    assert len(closed) == len(stalled), f"{len(stalled) - len(closed)} still open"
    assert max(closed.values()) <= CLOSED_WITHIN + 0.5, sorted(closed.values())
    assert served > 10


# --- a body read by an ASGI app --------------------------------------------------------


def post(path: str, length: int, *, expect: bool = False) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
    if expect:
        head += "Expect: 100-continue\r\n"
    return (head + "\r\n").encode()


def test_a_stalled_upload_to_an_app_gets_408(app_server: tuple[RunningServer, Recorder]) -> None:
    server, app = app_server
    with connect(server) as sock:
        sock.sendall(post("/upload", 100) + b"x" * 10)
        data, took = read_to_close(sock, CLOSED_WITHIN + 3)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert took <= CLOSED_WITHIN
    assert app.done.wait(5)
    assert app.messages[-1] == {"type": "http.disconnect"}  # the app learns the client is gone


def test_a_stall_after_the_response_started_closes(
    app_server: tuple[RunningServer, Recorder],
) -> None:
    server, app = app_server
    with connect(server) as sock:
        sock.sendall(post("/first-then-read", 100) + b"x" * 10)
        data, took = read_to_close(sock, CLOSED_WITHIN + 3)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    assert data.endswith(b"5\r\nfirst\r\n"), data  # no last chunk: it cannot look complete
    assert b"408" not in data
    assert took <= CLOSED_WITHIN
    assert app.done.wait(5)


def test_a_slow_upload_that_keeps_moving_is_not_cut(
    app_server: tuple[RunningServer, Recorder],
) -> None:
    server, _ = app_server
    body = b"0123456"
    with connect(server) as sock:
        sock.sendall(post("/upload", len(body)))
        send_slowly(sock, body, 0.3)
        sock.settimeout(10)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"\r\n\r\n7"), reply


def test_a_body_the_app_does_not_read_yet_is_not_a_stall(
    app_server: tuple[RunningServer, Recorder],
) -> None:
    """Above the high-water mark the server stops reading: the client is held back by us,
    for longer than the timeout here, and must not be cut for it."""
    server, _ = app_server
    body = b"x" * (4 << 20)
    with connect(server) as sock:
        sock.sendall(post(f"/upload?wait={TIMEOUT * 2.5}", len(body)))
        sender = threading.Thread(target=sock.sendall, args=(body,))
        sender.start()
        sock.settimeout(15)
        reply = sock.recv(65536)
        sender.join(15)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
    assert reply.endswith(b"\r\n\r\n%d" % len(body)), reply


def test_a_client_waiting_for_100_continue_is_not_a_stall(
    app_server: tuple[RunningServer, Recorder],
) -> None:
    server, _ = app_server
    with connect(server) as sock:
        sock.sendall(post(f"/upload?wait={TIMEOUT * 2}", 3, expect=True))
        sock.settimeout(10)
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abc")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"\r\n\r\n3"), reply
