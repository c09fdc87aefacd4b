"""--body-timeout over real sockets: a request body that stops arriving gets 408 (or, once
the response has started, a closed connection) within the timeout, whether the body is
read to be dropped or read by an ASGI app; a slow body that keeps moving is never cut, nor
one the server itself holds back (an app not reading yet, a client waiting for its
100 Continue). Each connection is timed from its last byte to the server's close.

Every scenario is a wait on the server's clock, so they all run at once, each on its own
connection and thread, against one static server and one ASGI server per loop; each test
then asserts on its own scenario's outcome (a scenario that raises fails its own test).
The file takes about as long as its slowest scenario per loop, not the sum of them.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pytest
from conftest import RunningServer, start_server

TIMEOUT = 0.5  # --body-timeout (and the static server's idle timeout) in these tests
# The head's deadline runs from its first byte, so a head timeout as short would close a
# stalled body on time even with no body deadline at all: it is kept far past every limit.
HEAD_TIMEOUT = 30.0
SWEEP = TIMEOUT / 4  # how often the server's sweeper enforces it (ServerState.sweep_interval)
# A cut comes no sooner than the timeout after our last byte, less the loop clock's grain
# (uvloop's is a millisecond, read once per loop pass), and within it plus one sweep; a
# loaded box gets some slack on top.
EARLIEST = TIMEOUT - 0.05
CLOSED_WITHIN = TIMEOUT + SWEEP + 0.5
# How long the server holds a client back in the "not a stall" scenarios: well past the timeout.
HELD = TIMEOUT * 2.5
STALLED_GET = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
LOOPS = ["uvloop", "asyncio"]


def connect(server: RunningServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def read_to_close(sock: socket.socket, limit: float) -> bytes:
    """Everything the server sends until it closes; fails the test if the connection is
    still open after ``limit`` seconds."""
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pytest.fail(f"still open after {limit} s; received {data!r}")
    except ConnectionResetError:
        pass
    return data


def stall(sock: socket.socket, sent: bytes) -> tuple[bytes, float]:
    """Sends ``sent`` and nothing more: what the server answers until it closes, and the
    seconds from the start of our last send to the close (the server's wait starts after it)."""
    start = time.monotonic()
    sock.sendall(sent)
    data = read_to_close(sock, CLOSED_WITHIN + 3)
    return data, time.monotonic() - start


def send_slowly(sock: socket.socket, body: bytes, every: float) -> float:
    """One byte every ``every`` seconds: a slow client that keeps making progress. Returns
    the seconds it took."""
    start = time.monotonic()
    for byte in body:
        time.sleep(every)
        sock.sendall(bytes([byte]))
    return time.monotonic() - start


@dataclass
class Seen:
    """What an app saw of one request: its receive() messages, and whether it returned."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class Recorder:
    """An ASGI app that reads the whole request body, then answers with its length; what
    it saw is kept per path, one path per scenario.

    ``/first-then-read`` starts its response (and sends a first chunk) before reading; with
    ``?wait=S`` it sleeps S seconds before its first receive(), holding the body unread.
    """

    def __init__(self) -> None:
        self.requests: dict[str, Seen] = {}

    def seen(self, path: str) -> Seen:
        return self.requests.setdefault(path, Seen())  # atomic: both threads may ask first

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen = self.seen(scope["path"])
        try:
            await self.serve(scope, receive, send, seen.messages)
        finally:
            seen.done.set()

    async def serve(
        self, scope: Any, receive: Any, send: Any, messages: list[dict[str, Any]]
    ) -> None:
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
            messages.append(message)
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


# --- running every scenario at once ------------------------------------------------------


@dataclass
class Servers:
    """One loop's servers: static files, and the Recorder app, both with --body-timeout."""

    static: RunningServer
    app: RunningServer
    recorder: Recorder


Result = TypeVar("Result")
Scenario = Callable[[Servers], Any]
SCENARIOS: list[Scenario] = []


def scenario(func: Callable[[Servers], Result]) -> Callable[[Servers], Result]:
    """Registers ``func`` to run alongside all the others once a loop's servers are up."""
    SCENARIOS.append(func)
    return func


class Outcomes:
    def __init__(self, servers: Servers, futures: dict[Scenario, Future[Any]]) -> None:
        self.servers = servers
        self.futures = futures

    def of(self, func: Callable[[Servers], Result]) -> Result:
        """What ``func`` returned; re-raises what it raised (a pytest.fail included)."""
        return cast(Result, self.futures[func].result(timeout=60))


@pytest.fixture(scope="module", params=LOOPS)
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outcomes]:
    root = tmp_path_factory.mktemp("root")
    (root / "a.txt").write_text("a\n")
    recorder = Recorder()
    with (
        start_server(
            root,
            request.param,
            header_timeout=HEAD_TIMEOUT,
            keepalive_timeout=TIMEOUT,
            body_timeout=TIMEOUT,
        ) as static,
        start_server(
            root, request.param, app=recorder, lifespan="off", body_timeout=TIMEOUT
        ) as app,
        ThreadPoolExecutor(len(SCENARIOS), thread_name_prefix="scenario") as pool,
    ):
        servers = Servers(static, app, recorder)
        yield Outcomes(servers, {func: pool.submit(func, servers) for func in SCENARIOS})


# --- a body read to be dropped -------------------------------------------------------


@scenario
def stalled_get(servers: Servers) -> tuple[bytes, float]:
    with connect(servers.static) as sock:
        return stall(sock, STALLED_GET)


def test_a_stalled_body_of_a_get_gets_408_and_a_close(outcomes: Outcomes) -> None:
    """The issue's reproduction: a head that declares a body escaped every deadline."""
    data, took = outcomes.of(stalled_get)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert b"\r\nConnection: close\r\n" in data
    assert EARLIEST <= took <= CLOSED_WITHIN, took


@scenario
def partly_sent_body(servers: Servers) -> tuple[bytes, float]:
    with connect(servers.static) as sock:
        return stall(sock, STALLED_GET + b"12345")


def test_a_partly_sent_body_stalls_too(outcomes: Outcomes) -> None:
    data, took = outcomes.of(partly_sent_body)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert EARLIEST <= took <= CLOSED_WITHIN, took


@scenario
def slow_body(servers: Servers) -> tuple[bytes, float]:
    body = b"0123456"  # 7 bytes, one every 0.3 timeouts: 2.1 timeouts in all
    with connect(servers.static) as sock:
        sock.sendall(STALLED_GET.replace(b"10", b"%d" % len(body)))
        lasted = send_slowly(sock, body, TIMEOUT * 0.3)
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_to_close(sock, 10), lasted


def test_a_slow_body_that_keeps_moving_is_not_cut(outcomes: Outcomes) -> None:
    data, lasted = outcomes.of(slow_body)
    assert lasted >= 2 * TIMEOUT, lasted
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2, data  # kept alive for the next request


@dataclass
class Crowd:
    closed: list[float]  # seconds from the first stalled send to each close
    still_open: int
    served: int  # requests a normal client had answered meanwhile


@scenario
def fifty_stalled_bodies(servers: Servers) -> Crowd:
    stalled = [connect(servers.static) for _ in range(50)]
    closed: dict[socket.socket, float] = {}
    served = 0
    try:
        sent = time.monotonic()
        for sock in stalled:
            sock.sendall(STALLED_GET)
        # a normal client meanwhile, on keep-alive, until every stalled one is closed
        with connect(servers.static) as client, selectors.DefaultSelector() as selector:
            for sock in stalled:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            while len(closed) < len(stalled) and time.monotonic() - sent < CLOSED_WITHIN + 5:
                client.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = client.recv(65536)
                assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"a\n")
                served += 1
                for key, _ in selector.select(timeout=TIMEOUT / 20):
                    sock = cast(socket.socket, key.fileobj)
                    if not sock.recv(65536):
                        closed[sock] = time.monotonic() - sent
                        selector.unregister(sock)
    finally:
        for sock in stalled:
            sock.close()
    return Crowd(sorted(closed.values()), len(stalled) - len(closed), served)


def test_fifty_stalled_bodies_close_on_time_while_others_are_served(
    outcomes: Outcomes,
) -> None:
    crowd = outcomes.of(fifty_stalled_bodies)
    assert crowd.still_open == 0, f"{crowd.still_open} still open"
    assert EARLIEST <= crowd.closed[0] <= crowd.closed[-1] <= CLOSED_WITHIN + 0.5, crowd.closed
    assert crowd.served > 10


# --- a body read by an ASGI app --------------------------------------------------------


def post(path: str, length: int, *, expect: bool = False) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
    if expect:
        head += "Expect: 100-continue\r\n"
    return (head + "\r\n").encode()


@scenario
def stalled_upload(servers: Servers) -> tuple[bytes, float]:
    with connect(servers.app) as sock:
        return stall(sock, post("/upload/stalled", 100) + b"x" * 10)


def test_a_stalled_upload_to_an_app_gets_408(outcomes: Outcomes) -> None:
    data, took = outcomes.of(stalled_upload)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert EARLIEST <= took <= CLOSED_WITHIN, took
    seen = outcomes.servers.recorder.seen("/upload/stalled")
    assert seen.done.wait(5)
    assert seen.messages[-1] == {"type": "http.disconnect"}  # the app learns the client is gone


@scenario
def stall_after_the_response_started(servers: Servers) -> tuple[bytes, float]:
    with connect(servers.app) as sock:
        return stall(sock, post("/first-then-read", 100) + b"x" * 10)


def test_a_stall_after_the_response_started_closes(outcomes: Outcomes) -> None:
    data, took = outcomes.of(stall_after_the_response_started)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    assert data.endswith(b"5\r\nfirst\r\n"), data  # no last chunk: it cannot look complete
    assert b"408" not in data
    assert EARLIEST <= took <= CLOSED_WITHIN, took
    assert outcomes.servers.recorder.seen("/first-then-read").done.wait(5)


@scenario
def slow_upload(servers: Servers) -> tuple[bytes, float]:
    body = b"0123456"
    with connect(servers.app) as sock:
        sock.sendall(post("/upload/slow", len(body)))
        lasted = send_slowly(sock, body, TIMEOUT * 0.3)
        sock.settimeout(10)
        return sock.recv(65536), lasted


def test_a_slow_upload_that_keeps_moving_is_not_cut(outcomes: Outcomes) -> None:
    reply, lasted = outcomes.of(slow_upload)
    assert lasted >= 2 * TIMEOUT, lasted
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"\r\n\r\n7"), reply


UNREAD_BODY = 4 << 20


@scenario
def body_the_app_does_not_read_yet(servers: Servers) -> tuple[bytes, float]:
    with connect(servers.app) as sock:
        start = time.monotonic()
        sock.sendall(post(f"/upload/unread?wait={HELD}", UNREAD_BODY))
        sender = threading.Thread(target=sock.sendall, args=(b"x" * UNREAD_BODY,))
        sender.start()
        sock.settimeout(15)
        reply = sock.recv(65536)
        lasted = time.monotonic() - start
        sender.join(15)
    return reply, lasted


def test_a_body_the_app_does_not_read_yet_is_not_a_stall(outcomes: Outcomes) -> None:
    """Above the high-water mark the server stops reading: the client is held back by us,
    for longer than the timeout here, and must not be cut for it."""
    reply, lasted = outcomes.of(body_the_app_does_not_read_yet)
    assert lasted >= 2 * TIMEOUT, lasted
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
    assert reply.endswith(b"\r\n\r\n%d" % UNREAD_BODY), reply


@scenario
def waiting_for_100_continue(servers: Servers) -> tuple[bytes, float]:
    with connect(servers.app) as sock:
        start = time.monotonic()
        sock.sendall(post(f"/upload/continue?wait={HELD}", 3, expect=True))
        sock.settimeout(10)
        interim = sock.recv(65536)
        waited = time.monotonic() - start
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abc")
        return sock.recv(65536), waited


def test_a_client_waiting_for_100_continue_is_not_a_stall(outcomes: Outcomes) -> None:
    reply, waited = outcomes.of(waiting_for_100_continue)  # asserts the 100 Continue
    assert waited >= 2 * TIMEOUT, waited
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"\r\n\r\n3"), reply
