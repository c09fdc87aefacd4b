"""Operating under load and at the edges, each against a ``python -m zerohttp`` process:
the concurrency limit (503 and a bounded descriptor count with 100 held connections),
lingering close keeping a response intact while the client keeps sending, the graceful
drain (new connections refused, a download finishing, a second signal ending it at once,
its timeout), and a slowloris client closed after --header-timeout while others are served.
"""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from helpers import RawClient, RawResponse, wait_for
from serverprocs import Zerohttp


class Served(Zerohttp):
    """zerohttp on a free port of 127.0.0.1."""

    def __init__(self, args: Sequence[str]) -> None:
        super().__init__([*args, "--port", "0"])

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture
def launch() -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, args: Sequence[str]) -> None:
            super().__init__(args)
            started.append(self)

    yield Tracked
    for one in started:
        one.kill()


def read_response(sock: socket.socket) -> tuple[RawResponse, bytes]:
    """The response, parsed strictly, and whatever arrives after it until the server
    closes (not by a reset: that would have destroyed part of the response)."""
    client = RawClient(sock)
    response = client.read_response()
    rest = client.read_until_close()
    assert not client.reset, "the server reset the connection"
    return response, rest


def status(port: int, path: str = "/one.bin") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def get_ok(port: int, path: str = "/one.bin") -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    assert response.status == 200
    body = response.read()
    connection.close()
    return body


def test_limit_concurrency(site: Path, launch: type[Served]) -> None:
    server = launch([str(site), "--limit-concurrency", "100"])
    baseline = server.fds()
    held = []
    for _ in range(100):  # each connection proves it is being served, then stays open
        sock = server.connect()
        sock.sendall(b"GET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        held.append(sock)
    for _ in range(20):
        extra = server.connect()
        extra.sendall(b"GET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        response, rest = read_response(extra)  # answered, then closed by the server
        extra.close()
        assert (response.status, response.reason) == (503, "Service Unavailable"), response
        assert response.header("connection") == "close"
        assert response.header("retry-after") == "1"
        assert rest == b""
    silent = [server.connect() for _ in range(200)]  # never read, never write
    for sock in silent:  # the server has taken every one: each is refused at once
        assert sock.recv(65536).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    # the limit, up to 32 refused connections lingering for a second, a few of our own
    assert server.fds() <= baseline + 100 + 32 + 8, "descriptors must stay bounded"
    for sock in silent:
        sock.close()
    held.pop().close()
    assert wait_for(lambda: status(server.port) == 200, 10), "a slot is free again"
    get_ok(server.port)
    for sock in held:
        sock.close()


def test_lingering_close_keeps_the_response_when_the_client_keeps_sending(
    site: Path, launch: type[Served]
) -> None:
    """A request with Connection: close, more requests pipelined behind it, and a client
    still sending: closing at once would reset the connection and destroy the response."""
    server = launch([str(site)])
    expected = (site / "ten-mib.bin").read_bytes()
    for _ in range(3):
        sock = server.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # response in flight long
        pipelined = b"GET /kib.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 50
        sock.sendall(
            b"GET /ten-mib.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + pipelined
        )
        stop = threading.Event()
        sends = [0]

        def keep_sending(
            sock: socket.socket = sock, stop: threading.Event = stop, sends: list[int] = sends
        ) -> None:
            try:
                while not stop.is_set():
                    sock.sendall(b"X" * 4096)
                    sends[0] += 1
                    time.sleep(0.01)
            except OSError:
                pass

        sender = threading.Thread(target=keep_sending)
        sender.start()
        # the response is being sent while our junk arrives
        assert wait_for(lambda sends=sends: sends[0] >= 30, 10), "the server stopped taking junk"
        try:
            response, rest = read_response(sock)
        finally:
            stop.set()
            sender.join()
            sock.close()
        assert (response.status, response.reason) == (200, "OK")
        assert response.header("connection") == "close"
        assert response.body == expected
        assert rest == b""  # none of the 50 pipelined requests is answered


def slow_download(port: int, path: str, received: list[int], done: threading.Event) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        while chunk := sock.recv(65536):
            received[0] += len(chunk)
            time.sleep(0.002)
    except OSError:
        pass
    finally:
        sock.close()
        done.set()


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_sigterm_drains_refuses_new_connections_and_a_second_signal_ends_it(
    tmp_path: Path, launch: type[Served]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with open(root / "big.bin", "wb") as out:
        out.truncate(512 * 1024 * 1024)
    server = launch([str(root), "--timeout-graceful-shutdown", "30"])
    received, done = [0], threading.Event()
    threading.Thread(target=slow_download, args=(server.port, "/big.bin", received, done)).start()
    assert wait_for(lambda: received[0] >= 1024 * 1024, 10), "the download does not start"
    server.proc.send_signal(signal.SIGTERM)
    assert wait_for(lambda: not accepts(server.port), 10), "new connections are refused"
    assert server.proc.poll() is None, "a busy connection keeps the server draining"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    at = received[0]
    # more than the socket buffers hold: the server itself goes on sending, and is running
    assert wait_for(lambda: received[0] > at + 16 * 1024 * 1024, 10), "the download stopped"
    assert server.proc.poll() is None, "a busy connection keeps the server draining"
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(5) == 0
    assert time.monotonic() - started < 3, "a second signal ends the drain at once"
    assert done.wait(5)
    assert received[0] < 512 * 1024 * 1024


def test_graceful_timeout_bounds_the_drain(tmp_path: Path, launch: type[Served]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with open(root / "big.bin", "wb") as out:
        out.truncate(512 * 1024 * 1024)
    server = launch([str(root), "--timeout-graceful-shutdown", "1"])
    sock = server.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")  # then stall: never read again
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert 0.8 < time.monotonic() - started < 4
    sock.close()


def test_slowloris_is_closed_after_the_header_timeout_while_others_are_served(
    site: Path, launch: type[Served]
) -> None:
    server = launch([str(site), "--header-timeout", "2"])
    slow = [server.connect() for _ in range(20)]
    for sock in slow:
        sock.sendall(b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # others are served meanwhile
        for sock in slow:
            try:
                sock.sendall(b"X-a: b\r\n")  # trickle: never completes the head
            except OSError:
                pass
        assert get_ok(server.port) == (site / "one.bin").read_bytes()
        time.sleep(0.25)
    answers: list[bytes | None] = []  # what each got before the server closed; None: open
    deadline = time.monotonic() + 5
    for sock in slow:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:  # a reset (our trickle reached the closed socket) reads as the end too
            answers.append(RawClient(sock).read_until_close())
        except TimeoutError:
            answers.append(None)
        sock.close()
    assert answers == [b""] * len(slow), "each is closed, without a response"
    assert get_ok(server.port) == (site / "one.bin").read_bytes()
