"""WebSocket errors on the wire, end to end over real sockets on both event loops.

Normal traffic goes through the ``websockets`` client library; a client that misbehaves
(bad frames, invalid UTF-8) is ``RawWebSocket``, a raw socket that sends any frame and
reads the server's frames as they are. What is checked is what the peer sees on the wire
(close codes: 1011 for an application error, never 1006; 1002, 1007, 1009) and what the
application is told (``websocket.disconnect`` codes, ``ClientDisconnected`` on a late send).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LOOPS, RunningServer, start_server
from helpers import wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.utils import apply_mask

from zerohttp.http.exchange import ClientDisconnected

TIMEOUT = 10.0  # generous: the box is shared and noisy
MAX_SIZE = 256 * 1024

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class RawWebSocket:
    """A WebSocket client on a raw socket: it sends any frame, well formed or not."""

    def __init__(
        self,
        port: int,
        path: str = "/",
        *,
        rcvbuf: int = 0,
        sndbuf: int = 0,
        context: ssl.SSLContext | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool = True,
    ) -> None:
        self.sock.sendall(frame(opcode, payload, fin=fin, rsv=rsv, mask=mask))

    def read_frame(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload); EOFError at the end."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        assert not second & 0x80, "a server's frames are never masked"
        return first & 0x0F, self._take(length)

    def read_close(self) -> tuple[int, str]:
        """Read up to the server's close frame (skipping data and pings): its code and reason."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == CLOSE:
                if not payload:
                    return 1005, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def at_eof(self) -> bool:
        """The server has closed the TCP connection (after whatever it sent)."""
        try:
            while True:
                self._fill()
        except EOFError:
            return True
        except (TimeoutError, ConnectionResetError):
            return False


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One frame, as a client sends it (masked, unless ``mask`` is False to break the rules)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def ws_connect(port: int, path: str = "/", **kwargs: Any) -> ClientConnection:
    """The ``websockets`` client, with no proxy from the environment and our timeouts."""
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", TIMEOUT)
    return connect(f"ws://127.0.0.1:{port}{path}", proxy=None, **kwargs)


# --- the application --------------------------------------------------------------------


class Recorder:
    """What the application saw, for the test thread to read (the server runs in-process)."""

    def __init__(self) -> None:
        self.disconnects: dict[str, dict[str, Any]] = {}
        self.late_send: dict[str, BaseException | None] = {}


def error_app(seen: Recorder) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        path = scope["path"]
        await receive()  # websocket.connect
        if path == "/late-accept":
            await asyncio.sleep(0.2)  # frames sent meanwhile wait in the HTTP driver
        await send({"type": "websocket.accept"})
        if path == "/raise-at-once":
            raise RuntimeError("the application fails before any message")
        if path == "/close-then-send":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            try:
                await send({"type": "websocket.send", "text": "too late"})
            except BaseException as exc:
                seen.late_send[path] = exc
                raise
            seen.late_send[path] = None
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                seen.disconnects[path] = message
                if path == "/send-after-disconnect":
                    try:
                        await send({"type": "websocket.send", "text": "too late"})
                    except BaseException as exc:
                        seen.late_send[path] = exc
                        raise
                    seen.late_send[path] = None
                return
            if path == "/raise":
                raise RuntimeError("the application fails on a message")
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


@pytest.fixture(scope="module", params=LOOPS)
def ws_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, Recorder]]:
    seen = Recorder()
    root = tmp_path_factory.mktemp("ws-e2e")
    with start_server(root, request.param, app=error_app(seen), ws_max_size=MAX_SIZE) as running:
        yield running, seen


# --- tests --------------------------------------------------------------------------------


def test_echo_text_binary_and_a_large_message(ws_server: tuple[RunningServer, Recorder]) -> None:
    server, seen = ws_server
    big = os.urandom(MAX_SIZE // 2)
    with ws_connect(server.port, "/echo-a") as ws:
        ws.send("hello")
        assert ws.recv(TIMEOUT) == "hello"
        ws.send(b"\x00\xff")
        assert ws.recv(TIMEOUT) == b"\x00\xff"
        ws.send(big)
        assert ws.recv(TIMEOUT) == big
    assert wait_for(lambda: "/echo-a" in seen.disconnects, TIMEOUT)
    assert seen.disconnects["/echo-a"]["code"] == 1000


def test_a_message_of_exactly_the_limit_passes_with_deflate(
    ws_server: tuple[RunningServer, Recorder],
) -> None:
    server, _ = ws_server
    big = os.urandom(MAX_SIZE)
    with ws_connect(server.port, "/echo-limit") as ws:
        ws.send(big)
        assert ws.recv(TIMEOUT) == big


@pytest.mark.parametrize("path", ["/raise", "/raise-at-once"])
def test_an_application_exception_closes_with_1011(
    ws_server: tuple[RunningServer, Recorder], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = ws_server
    with RawWebSocket(server.port, path) as ws:
        assert ws.status == 101
        if path == "/raise":
            ws.send_frame(TEXT, b"go")
        assert ws.read_close() == (1011, "")  # 1006 is never on the wire
        assert ws.at_eof()


def test_a_client_protocol_error_closes_with_1002(
    ws_server: tuple[RunningServer, Recorder],
) -> None:
    server, seen = ws_server
    for path, bad in [
        ("/unmasked", frame(TEXT, b"x", mask=False)),
        ("/reserved-bit", frame(TEXT, b"x", rsv=0b100)),
        ("/stray-continuation", frame(0x0, b"x")),
        ("/unknown-opcode", frame(0x3, b"x")),
    ]:
        with RawWebSocket(server.port, path) as ws:
            ws.sock.sendall(bad)
            code, _ = ws.read_close()
            assert code == 1002, path
            assert ws.at_eof()
        assert wait_for(lambda p=path: p in seen.disconnects, TIMEOUT), path  # type: ignore[misc]
        assert seen.disconnects[path]["code"] == 1002


def test_invalid_utf8_closes_with_1007(ws_server: tuple[RunningServer, Recorder]) -> None:
    server, seen = ws_server
    with RawWebSocket(server.port, "/utf8-whole") as ws:
        ws.send_frame(TEXT, b"caf\xc3")
        assert ws.read_close()[0] == 1007
    with RawWebSocket(server.port, "/utf8-split") as ws:
        ws.send_frame(TEXT, b"caf", fin=False)
        ws.send_frame(0x0, b"\xff", fin=False)  # fail fast: before the message ends
        assert ws.read_close()[0] == 1007
        assert ws.at_eof()
    assert wait_for(lambda: "/utf8-split" in seen.disconnects, TIMEOUT)
    assert seen.disconnects["/utf8-whole"]["code"] == 1007
    assert seen.disconnects["/utf8-split"]["code"] == 1007


def test_a_message_over_the_limit_closes_with_1009(
    ws_server: tuple[RunningServer, Recorder],
) -> None:
    server, seen = ws_server
    with ws_connect(server.port, "/too-big", max_size=None) as ws:
        ws.send(b"x" * (MAX_SIZE + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    with RawWebSocket(server.port, "/too-big-in-fragments") as ws:
        half = b"x" * (MAX_SIZE // 2 + 1)
        ws.send_frame(BINARY, half, fin=False)
        ws.send_frame(0x0, half, fin=True)
        assert ws.read_close()[0] == 1009
    assert wait_for(lambda: "/too-big-in-fragments" in seen.disconnects, TIMEOUT)
    assert seen.disconnects["/too-big"]["code"] == 1009


def test_send_after_the_close_raises_client_disconnected(
    ws_server: tuple[RunningServer, Recorder],
) -> None:
    server, seen = ws_server
    with ws_connect(server.port, "/close-then-send") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(TIMEOUT)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")
    with ws_connect(server.port, "/send-after-disconnect") as ws:
        ws.close(4002, "leaving")
    assert wait_for(lambda: len(seen.late_send) == 2, TIMEOUT)
    for path in ("/close-then-send", "/send-after-disconnect"):
        exc = seen.late_send[path]
        assert isinstance(exc, ClientDisconnected) and isinstance(exc, OSError), (path, exc)
    assert seen.disconnects["/send-after-disconnect"] == {
        "type": "websocket.disconnect",
        "code": 4002,
        "reason": "leaving",
    }


def test_frames_sent_with_the_head_and_before_the_101_arrive_in_order(
    ws_server: tuple[RunningServer, Recorder],
) -> None:
    server, _ = ws_server
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            f"GET /late-accept HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            + frame(TEXT, b"one")
        )
        time.sleep(0.05)
        sock.sendall(frame(TEXT, b"two"))
        data = b""
        while b"two" not in data:
            more = sock.recv(4096)
            assert more, data
            data += more
    head, _, frames = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert frames == b"\x81\x03one\x81\x03two"


def test_a_client_that_vanishes_is_a_1006_for_the_app_only(
    ws_server: tuple[RunningServer, Recorder],
) -> None:
    server, seen = ws_server
    ws = RawWebSocket(server.port, "/vanish")
    ws.send_frame(TEXT, b"ping?")
    assert ws.read_frame() == (TEXT, b"ping?")
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.sock.close()  # a reset, no close frame
    assert wait_for(lambda: "/vanish" in seen.disconnects, TIMEOUT)
    assert seen.disconnects["/vanish"]["code"] == 1006
    assert wait_for(lambda: server.call(lambda: len(server.server.state.connections)) == 0, TIMEOUT)


def test_no_descriptor_or_task_is_left_behind(ws_server: tuple[RunningServer, Recorder]) -> None:
    server, _ = ws_server
    for _ in range(5):
        with ws_connect(server.port, "/leak") as ws:
            ws.send("x")
            ws.recv(TIMEOUT)
    state = server.server.state
    assert wait_for(
        lambda: server.call(lambda: len(state.connections) + len(state.responders)) == 0, TIMEOUT
    )
