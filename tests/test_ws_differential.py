"""The ASGI WebSocket messages an application sees, zerohttp against uvicorn.

One recording app (``apps/ws_record.py``) runs under ``zerohttp --app`` and under uvicorn
(``--ws websockets-sansio``, its default), both as subprocesses. Each case gives the app a
script (accept with or without a subprotocol and headers, deny, close, raise, return, send
after the end...) and the client a part (the ``websockets`` client library, or raw frames
where a well-behaved client cannot do it); the test compares what the app saw (the scope,
every message received, every send's outcome) and what the client saw.

zerohttp must match the expected values, which follow asgiref's specs/www.rst (spec
2.4/2.5), docs/extensions.rst (``websocket.http.response``) and RFC 6455. uvicorn must match
them too, except where a case names uvicorn's own values and why they differ;
benchmarks/RESULTS.md ("Issue 19 — ASGI differences from uvicorn") lists them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from serverprocs import ServerProcess, free_port, server_process
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus, InvalidUpgrade
from websockets.sync.client import connect

TESTS = Path(__file__).resolve().parent
APP = "apps.ws_record:app"
TIMEOUT = 10.0
SERVERS = ("zerohttp", "uvicorn")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="

Json = Any
Saw = dict[str, Any]
Client = Callable[[int, str], Saw]


# --- the servers ---------------------------------------------------------------------------


@contextlib.contextmanager
def started(server: str, *flags: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """``server`` serving the recording app from tests/."""
    if server == "zerohttp":
        args = ["-m", "zerohttp", "--app", APP, "--port", "0", "--lifespan", "on", *flags]
        with server_process(args, cwd=TESTS, env=env) as running:
            yield running
    else:
        port = free_port()
        args = ["-m", "uvicorn", APP, "--port", str(port), "--lifespan", "on"]
        args += ["--ws", "websockets-sansio", "--no-access-log", *flags]
        with server_process(args, port=port, cwd=TESTS, env=env) as running:
            yield running


@contextlib.contextmanager
def launch(server: str, *flags: str) -> Iterator[int]:
    """``server`` serving the recording app from tests/; yields its port."""
    with started(server, *flags) as running:
        yield running.port


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    with launch("zerohttp") as zerohttp, launch("uvicorn") as uvicorn:
        yield {"zerohttp": zerohttp, "uvicorn": uvicorn}


def target(script: Sequence[Json], ident: str, path: str = "/ws") -> str:
    query = urllib.parse.urlencode({"id": ident, "script": json.dumps(list(script))})
    return f"{path}?{query}"


def record(port: int, ident: str) -> Json:
    """What the app saw, once its script has ended."""
    deadline = time.monotonic() + TIMEOUT
    url = f"http://127.0.0.1:{port}/record?id={ident}"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def comparable(events: list[Json]) -> list[Json]:
    """The events less what is the server's own words (exception texts); a disconnect's
    missing ``reason`` is the empty string (www.rst: "if missing or None default is empty
    string")."""
    out = []
    for event in events:
        event = {k: v for k, v in event.items() if k != "detail"}
        message = event.get("recv")
        if isinstance(message, dict) and message["type"] == "websocket.disconnect":
            event["recv"] = {**message, "reason": message.get("reason") or ""}
        out.append(event)
    return out


# --- the clients ---------------------------------------------------------------------------


def denial(status: int, headers: Any, body: bytes) -> Saw:
    """A refused handshake as the client saw it: the body only when the app wrote it (403
    and 500 are the server's own, with its own words)."""
    saw: Saw = {"status": status, "x-a": headers.get("x-a")}
    if status not in (403, 500):
        saw["body"] = body.decode("latin-1")
    return saw


def ws_client(
    *,
    send: Sequence[str | bytes] = (),
    replies: int = 0,
    close: tuple[int, str] | None = None,
    subprotocols: Sequence[str] | None = None,
) -> Client:
    """The ``websockets`` client: send ``send``, read ``replies`` messages, then close with
    ``close`` (None: read until the server closes)."""

    def run(port: int, where: str) -> Saw:
        url = f"ws://127.0.0.1:{port}{where}"
        offered = list(subprotocols) if subprotocols else None
        try:
            ws = connect(url, subprotocols=offered, open_timeout=TIMEOUT, close_timeout=TIMEOUT)  # type: ignore[arg-type]
        except InvalidStatus as exc:
            response = exc.response
            return denial(response.status_code, response.headers, bytes(response.body or b""))
        except InvalidMessage:  # the connection ended with no response
            return {"status": "EOF"}
        except InvalidUpgrade:  # a 101 that is no WebSocket handshake
            return {"status": "invalid upgrade"}
        with ws:
            saw: Saw = {
                "status": 101,
                "subprotocol": ws.subprotocol,
                "x-extra": ws.response.headers.get("x-extra"),
            }
            for message in send:
                ws.send(message)
            got: list[Json] = []
            try:
                for _ in range(replies):
                    got.append(plain(ws.recv(timeout=TIMEOUT)))
                if close is not None:
                    ws.close(*close)
                while True:
                    got.append(plain(ws.recv(timeout=TIMEOUT)))
            except ConnectionClosed:
                pass
            saw["messages"] = got
            rcvd = ws.protocol.close_rcvd
            saw["close"] = None if rcvd is None else [int(rcvd.code), rcvd.reason]
        return saw

    return run


def plain(message: str | bytes) -> Json:
    return message if isinstance(message, str) else {"$bytes": message.decode("latin-1")}


def frame(opcode: int, payload: bytes = b"", *, mask: bool = True, fin: bool = True) -> bytes:
    """One client frame, masked unless told otherwise (RFC 6455 §5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_frame(code: int | None = None, reason: str = "") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
    return frame(0x8, payload)


class RawWebSocket:
    """A client that writes exact bytes and reads the server's frames to the end."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def handshake(
        self, where: str, extra: Sequence[tuple[str, str]] = (), then: bytes = b""
    ) -> int:
        """Send the upgrade request (and ``then`` in the same write); the status line's code
        once the head is in (the body of a refusal, if any, stays in the buffer)."""
        lines = [
            f"GET {where} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {KEY}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in extra),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + then)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return int(head.split(b" ", 2)[1])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def frames(self) -> list[Json]:
        """Every frame until the server closes the TCP connection: ``[opcode, text]``, a
        close frame as ``["close", code, reason]`` (answered, as a client must)."""
        out: list[Json] = []
        data = self.buf
        while True:
            while len(data) >= 2:
                opcode, size, start = data[0] & 0x0F, data[1] & 0x7F, 2
                if size == 126:
                    size, start = struct.unpack("!H", data[2:4])[0], 4
                elif size == 127:
                    size, start = struct.unpack("!Q", data[2:10])[0], 10
                if len(data) < start + size:
                    break
                payload, data = data[start : start + size], data[start + size :]
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if payload else None
                    out.append(["close", code, payload[2:].decode()])
                    with contextlib.suppress(OSError):
                        self.sock.sendall(close_frame(code))
                else:
                    out.append([opcode, payload.decode("latin-1")])
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return out
            data += chunk

    def close(self) -> None:
        self.sock.close()


def raw_client(
    *, then: bytes = b"", after: Sequence[bytes] = (), drop: bool = False, leave: bool = False
) -> Client:
    """Raw frames: the handshake (with ``then`` in the same write), ``after`` once the 101
    is in, then the frames the server sends until it closes; ``drop`` closes the TCP
    connection right after ``after`` without a close frame; ``leave`` right after the
    handshake, before any answer."""

    def run(port: int, where: str) -> Saw:
        ws = RawWebSocket(port)
        try:
            if leave:
                ws.send(f"GET {where} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n".encode())
                ws.send(f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n".encode())
                ws.send(b"Sec-WebSocket-Version: 13\r\n\r\n")
                return {"left": True}
            status = ws.handshake(where, then=then)
            for data in after:
                ws.send(data)
            if drop:
                return {"status": status, "dropped": True}
            return {"status": status, "frames": ws.frames()}
        finally:
            ws.close()

    return run


# --- scripts and the events they record ------------------------------------------------------

CONNECT = ["recv"]
UNTIL_DISCONNECT = ["until_disconnect"]
ECHO = ["echo"]
RAISE = ["raise"]


def accept(subprotocol: str | None = None, headers: Sequence[tuple[str, str]] = ()) -> Json:
    message: dict[str, Any] = {"type": "websocket.accept"}
    if subprotocol is not None:
        message["subprotocol"] = subprotocol
    if headers:
        message["headers"] = [list(pair) for pair in headers]
    return ["send", message]


def close(code: int | None = None, reason: str | None = None) -> Json:
    message: dict[str, Any] = {"type": "websocket.close"}
    if code is not None:
        message["code"] = code
    if reason is not None:
        message["reason"] = reason
    return ["send", message]


def send_text(text: str) -> Json:
    return ["send", {"type": "websocket.send", "text": text}]


def http_start(status: int, headers: Sequence[tuple[str, str]] = ()) -> Json:
    return [
        "send",
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [list(p) for p in headers],
        },
    ]


def http_body(body: str, more: bool = False, repeat: int = 1) -> Json:
    content = {"$bytes": body, "repeat": repeat}
    message: dict[str, Any] = {"type": "websocket.http.response.body", "body": content}
    if more:
        message["more_body"] = True
    return ["send", message]


CONNECTED = {"recv": {"type": "websocket.connect"}}


def ok(kind: str) -> Json:
    return {"send": f"websocket.{kind}", "ok": True}


def refused(kind: str, error: str = "ClientDisconnected") -> Json:
    """A send that raised: ``ClientDisconnected`` is an OSError (spec 2.4)."""
    return {"send": f"websocket.{kind}", "error": error, "oserror": error == "ClientDisconnected"}


def disconnect(code: int, reason: str = "") -> Json:
    return {"recv": {"type": "websocket.disconnect", "code": code, "reason": reason}}


def text(value: str) -> Json:
    return {"recv": {"type": "websocket.receive", "text": value}}


def binary(value: str) -> Json:
    return {"recv": {"type": "websocket.receive", "bytes": {"$bytes": value}}}


# --- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Uvicorn:
    """uvicorn's own values where it differs from the expected ones, and why."""

    why: str
    app: list[Json] | None = None
    saw: Saw | None = None
    racy: bool = False  # uvicorn shows these values or the expected ones, by timing


@dataclass(frozen=True)
class Case:
    script: list[Json]
    client: Client
    app: list[Json]  # the events the app records (comparable form)
    saw: Saw  # what the client sees
    raised: str | None = None  # the exception the app ended with
    uvicorn: Uvicorn | None = None
    extra: dict[str, Any] = field(default_factory=dict)


SENT_AFTER_CLOSE = [refused("send"), refused("close")]

CASES: dict[str, Case] = {
    "accept-subprotocol-headers-echo": Case(
        [
            CONNECT,
            accept("chat", [("x-extra", "1")]),
            ECHO,
            ["send", {"type": "websocket.send", "text": "late"}],
        ],
        ws_client(
            send=["héllo", b"\x00\xff", ""],
            replies=3,
            close=(1000, "bye"),
            subprotocols=["x", "chat"],
        ),
        [
            CONNECTED,
            ok("accept"),
            text("héllo"),
            binary("\x00\xff"),
            text(""),
            disconnect(1000, "bye"),
            refused("send"),
        ],
        {
            "status": 101,
            "subprotocol": "chat",
            "x-extra": "1",
            "messages": ["héllo", {"$bytes": "\x00\xff"}, ""],
            "close": [1000, "bye"],
        },
    ),
    "accept-without-subprotocol": Case(
        [CONNECT, accept(), UNTIL_DISCONNECT],
        ws_client(close=(4001, ""), subprotocols=["chat"]),
        [CONNECTED, ok("accept"), disconnect(4001)],
        {"status": 101, "subprotocol": None, "x-extra": None, "messages": [], "close": [4001, ""]},
    ),
    "close-before-accept-is-403": Case(
        [CONNECT, close(), CONNECT, close(), send_text("x"), accept()],
        ws_client(),
        # www.rst: "Close - send event ... before the socket is accepted, the server must
        # close the connection with a HTTP 403 error code"; after that the connection is
        # closed: sends raise ClientDisconnected (spec 2.4)
        [
            CONNECTED,
            ok("close"),
            disconnect(1006),
            refused("close"),
            refused("send"),
            refused("accept"),
        ],
        {"status": 403, "x-a": None},
    ),
    "close-with-code-before-accept-is-403": Case(
        [CONNECT, close(4003, "no")],
        ws_client(),
        [CONNECTED, ok("close")],
        {"status": 403, "x-a": None},
    ),
    "denial-response-streamed": Case(
        [
            CONNECT,
            http_start(418, [("x-a", "1"), ("content-type", "text/plain")]),
            http_body("a", more=True, repeat=70000),
            http_body("", more=True),
            http_body("b", more=True),
            http_body("c"),
            CONNECT,
            http_body("late"),
            close(),
            accept(),
        ],
        ws_client(),
        [
            CONNECTED,
            ok("http.response.start"),
            ok("http.response.body"),
            ok("http.response.body"),
            ok("http.response.body"),
            ok("http.response.body"),
            disconnect(1006),
            refused("http.response.body"),
            refused("close"),
            refused("accept"),
        ],
        {"status": 418, "x-a": "1", "body": "a" * 70000 + "bc"},
    ),
    "close-with-code-and-reason": Case(
        [
            CONNECT,
            accept(),
            send_text("first"),
            close(4000, "custom reason"),
            CONNECT,
            send_text("late"),
            close(),
        ],
        ws_client(),
        [
            CONNECTED,
            ok("accept"),
            ok("send"),
            ok("close"),
            disconnect(4000, "custom reason"),
            *SENT_AFTER_CLOSE,
        ],
        {
            "status": 101,
            "subprotocol": None,
            "x-extra": None,
            "messages": ["first"],
            "close": [4000, "custom reason"],
        },
        uvicorn=Uvicorn(
            "a send after the app's own close raises RuntimeError, not ClientDisconnected, "
            "until the client's close reply has arrived (www.rst: send() on a closed "
            "connection raises an OSError subclass)",
            racy=True,
            app=[
                CONNECTED,
                ok("accept"),
                ok("send"),
                ok("close"),
                disconnect(4000, "custom reason"),
                refused("send", "RuntimeError"),
                refused("close", "RuntimeError"),
            ],
        ),
    ),
    "close-without-code": Case(
        [CONNECT, accept(), close(), CONNECT],
        ws_client(),
        [CONNECTED, ok("accept"), ok("close"), disconnect(1000)],
        {"status": 101, "subprotocol": None, "x-extra": None, "messages": [], "close": [1000, ""]},
    ),
    "raise-before-accept-is-500": Case(
        [CONNECT, RAISE],
        ws_client(),
        [CONNECTED, {"raise": True}],
        {"status": 500, "x-a": None},
        raised="ScriptError",
    ),
    "raise-after-accept-is-1011": Case(
        [CONNECT, accept(), send_text("before"), RAISE],
        ws_client(),
        [CONNECTED, ok("accept"), ok("send"), {"raise": True}],
        {
            "status": 101,
            "subprotocol": None,
            "x-extra": None,
            "messages": ["before"],
            "close": [1011, ""],
        },
        raised="ScriptError",
        uvicorn=Uvicorn(
            "an app exception closes the TCP connection without a close frame (the client "
            "sees 1006); the issue asks 1011 (RFC 6455 §7.4.1: an unexpected condition)",
            saw={
                "status": 101,
                "subprotocol": None,
                "x-extra": None,
                "messages": ["before"],
                "close": None,
            },
        ),
    ),
    "raise-in-denial-response-is-500": Case(
        [CONNECT, http_start(418, [("x-a", "1")]), RAISE],
        ws_client(),
        [CONNECTED, ok("http.response.start"), {"raise": True}],
        {"status": 500, "x-a": None},
        raised="ScriptError",
        uvicorn=Uvicorn(
            "an exception after websocket.http.response.start closes the connection with "
            "no response at all (the client sees EOF); zerohttp answers 500 as for HTTP",
            saw={"status": "EOF"},
        ),
    ),
    "return-without-accepting-is-500": Case(
        [CONNECT],
        ws_client(),
        [CONNECTED],
        {"status": 500, "x-a": None},
    ),
    "return-while-open-is-1000": Case(
        [CONNECT, accept(), send_text("bye")],
        ws_client(),
        [CONNECTED, ok("accept"), ok("send")],
        {
            "status": 101,
            "subprotocol": None,
            "x-extra": None,
            "messages": ["bye"],
            "close": [1000, ""],
        },
        uvicorn=Uvicorn(
            "an app that returns with the connection open gets its TCP connection closed "
            "without a close frame (1006 at the client; RFC 6455 §7.1.1 wants the closing "
            "handshake)",
            saw={
                "status": 101,
                "subprotocol": None,
                "x-extra": None,
                "messages": ["bye"],
                "close": None,
            },
        ),
    ),
    "send-both-or-neither-is-an-error": Case(
        [
            CONNECT,
            accept(),
            ["send", {"type": "websocket.send", "text": "t", "bytes": {"$bytes": "b"}}],
            ["send", {"type": "websocket.send"}],
            ["send", {"type": "websocket.send", "text": None, "bytes": {"$bytes": "ok"}}],
            close(),
        ],
        ws_client(),
        [
            CONNECTED,
            ok("accept"),
            refused("send", "RuntimeError"),
            refused("send", "RuntimeError"),
            ok("send"),
            ok("close"),
        ],
        {
            "status": 101,
            "subprotocol": None,
            "x-extra": None,
            "messages": [{"$bytes": "ok"}],
            "close": [1000, ""],
        },
        uvicorn=Uvicorn(
            "websocket.send with both bytes and text sends the bytes, with neither sends "
            'nothing; www.rst: "Exactly one of bytes or text must be non-None", and asgi.rst: '
            "an invalid event should raise out of send",
            app=[CONNECTED, ok("accept"), ok("send"), ok("send"), ok("send"), ok("close")],
            saw={
                "status": 101,
                "subprotocol": None,
                "x-extra": None,
                "messages": [{"$bytes": "b"}, {"$bytes": "ok"}],
                "close": [1000, ""],
            },
        ),
    ),
    "accept-twice-is-an-error": Case(
        [CONNECT, accept(), accept(), close(1000)],
        ws_client(),
        [CONNECTED, ok("accept"), refused("accept", "RuntimeError"), ok("close")],
        {"status": 101, "subprotocol": None, "x-extra": None, "messages": [], "close": [1000, ""]},
    ),
    "client-closes-then-app-sends": Case(
        [CONNECT, accept(), UNTIL_DISCONNECT, send_text("late"), close()],
        ws_client(send=["x"], close=(4002, "client reason")),
        [CONNECTED, ok("accept"), text("x"), disconnect(4002, "client reason"), *SENT_AFTER_CLOSE],
        {
            "status": 101,
            "subprotocol": None,
            "x-extra": None,
            "messages": [],
            "close": [4002, "client reason"],
        },
    ),
    "receive-after-disconnect": Case(
        [CONNECT, accept(), UNTIL_DISCONNECT, ["sleep", 0.3], ["recv", 1.0]],
        ws_client(close=(1000, "")),
        # www.rst does not say; zerohttp repeats how the connection ended
        [CONNECTED, ok("accept"), disconnect(1000), disconnect(1000)],
        {"status": 101, "subprotocol": None, "x-extra": None, "messages": [], "close": [1000, ""]},
        uvicorn=Uvicorn(
            "a receive after websocket.disconnect gets a second disconnect, with 1005 (from "
            "connection_lost) instead of the client's code; a third would wait forever",
            app=[CONNECTED, ok("accept"), disconnect(1000), disconnect(1005)],
        ),
    ),
    "client-close-frame-without-code-is-1005": Case(
        [CONNECT, accept(), UNTIL_DISCONNECT],
        raw_client(after=[close_frame()]),
        # www.rst: "If no code was received in the frame from the client, the server should
        # set this to 1005"; the server answers with an empty close frame (RFC 6455 §5.5.1)
        [CONNECTED, ok("accept"), disconnect(1005)],
        {"status": 101, "frames": [["close", None, ""]]},
    ),
    "client-drops-tcp-is-1006": Case(
        [CONNECT, accept(), UNTIL_DISCONNECT, send_text("late")],
        raw_client(drop=True),
        # RFC 6455 §7.1.5: no close frame received (the TCP connection was lost): 1006
        [CONNECTED, ok("accept"), disconnect(1006), refused("send")],
        {"status": 101, "dropped": True},
        uvicorn=Uvicorn(
            "a TCP connection lost without a close frame is reported as 1005 (no status "
            "received); RFC 6455 §7.1.5 calls it 1006 (abnormal closure)",
            app=[CONNECTED, ok("accept"), disconnect(1005), refused("send")],
        ),
    ),
    "client-protocol-error-is-1002": Case(
        [CONNECT, accept(), UNTIL_DISCONNECT],
        raw_client(after=[frame(0x1, b"unmasked", mask=False)]),
        # RFC 6455 §5.1: a server MUST close on an unmasked client frame (1002)
        [CONNECTED, ok("accept"), disconnect(1002, "incorrect masking")],
        {"status": 101, "frames": [["close", 1002, "incorrect masking"]]},
    ),
    "client-invalid-utf8-is-1007": Case(
        [CONNECT, accept(), UNTIL_DISCONNECT],
        raw_client(after=[frame(0x1, b"ok \xff")]),
        [CONNECTED, ok("accept"), disconnect(1007, "invalid start byte at position 3")],
        {"status": 101, "frames": [["close", 1007, "invalid start byte at position 3"]]},
        uvicorn=Uvicorn(
            "the close frame and the disconnect for invalid UTF-8 carry no reason",
            app=[CONNECTED, ok("accept"), disconnect(1007)],
            saw={"status": 101, "frames": [["close", 1007, ""]]},
        ),
    ),
    "frame-pipelined-with-the-handshake": Case(
        [CONNECT, accept(), ["recv", 2.0], send_text("got it"), close()],
        raw_client(then=frame(0x1, b"early")),
        [CONNECTED, ok("accept"), text("early"), ok("send"), ok("close")],
        {"status": 101, "frames": [[1, "got it"], ["close", 1000, ""]]},
        uvicorn=Uvicorn(
            "a frame that arrives in the same read as the handshake is lost (the app's "
            "receive never gets it); the client broke RFC 6455 §4.1 (it MUST wait for the "
            "101 before sending), so neither answer is wrong",
            app=[CONNECTED, ok("accept"), {"recv": "timeout"}, ok("send"), ok("close")],
        ),
    ),
}


CASES["denial-with-a-1xx-status-is-an-error"] = Case(
    [CONNECT, http_start(101), http_start(100), http_start(403), http_body("no")],
    ws_client(),
    [
        CONNECTED,
        refused("http.response.start", "RuntimeError"),
        refused("http.response.start", "RuntimeError"),
        ok("http.response.start"),
        ok("http.response.body"),
    ],
    {"status": 403, "x-a": None},
    uvicorn=Uvicorn(
        "a websocket.http.response.start with status 101 is sent as a 101 without "
        "Sec-WebSocket-Accept (the client fails: no upgrade) and the denial goes on; a 1xx "
        "is no final answer (RFC 9110 §15.2), so zerohttp refuses it as an invalid event",
        app=[
            CONNECTED,
            ok("http.response.start"),
            refused("http.response.start", "RuntimeError"),
            refused("http.response.start", "RuntimeError"),
            ok("http.response.body"),
        ],
        saw={"status": "invalid upgrade"},
    ),
)
CASES["invalid-close-code-is-an-error-a-long-reason-is-cut"] = Case(
    # RFC 6455 §7.4.2: 1006 must not be sent (websockets' own error); §5.5: a control
    # frame's payload is at most 125 bytes, so a reason at most 123: a longer one is cut at a
    # character boundary (as wsproto does), since ASGI lets the reason be any string
    [CONNECT, accept(), close(1006), close(4000, "é" * 62)],
    ws_client(),
    [CONNECTED, ok("accept"), refused("close", "ProtocolError"), ok("close")],
    {
        "status": 101,
        "subprotocol": None,
        "x-extra": None,
        "messages": [],
        "close": [4000, "é" * 61],
    },
    uvicorn=Uvicorn(
        "websockets raises 'control frame too long' into the app's close, and uvicorn then "
        "drops TCP without a close frame (conformance case x7.9)",
        app=[
            CONNECTED,
            ok("accept"),
            refused("close", "ProtocolError"),
            refused("close", "ProtocolError"),
        ],
        saw={"status": 101, "subprotocol": None, "x-extra": None, "messages": [], "close": None},
    ),
)
CASES["client-leaves-before-accept"] = Case(
    [CONNECT, CONNECT, accept(), send_text("late")],
    raw_client(leave=True),
    # the second receive waits for the client (www.rst: nothing passes before accept), and
    # reports its going as 1006: the connection ended without a close frame
    [CONNECTED, disconnect(1006), refused("accept"), refused("send")],
    {"left": True},
)


def run_case(case: Case, port: int) -> tuple[Json, Saw]:
    ident = uuid.uuid4().hex
    saw = case.client(port, target(case.script, ident))
    return record(port, ident), saw


@pytest.mark.parametrize("name", list(CASES))
def test_what_the_app_and_the_client_see(name: str, ports: dict[str, int]) -> None:
    case = CASES[name]
    for server in SERVERS:
        seen, saw = run_case(case, ports[server])
        events = comparable(seen["events"])
        differs = case.uvicorn if server == "uvicorn" else None
        if differs is not None and differs.racy and (events, saw) == (case.app, case.saw):
            differs = None  # this time uvicorn's timing gave the expected values
        if differs is None:
            assert events == case.app, server
            assert saw == case.saw, server
        else:
            assert events == (differs.app or case.app), server
            assert saw == (differs.saw or case.saw), server
        assert seen.get("raised") == case.raised, (server, seen.get("traceback"))


# --- the scope -------------------------------------------------------------------------------


def handshake_scope(port: int, path: str, extra: Sequence[tuple[str, str]] = ()) -> Json:
    """The scope of a raw handshake with mixed-case, repeated and list-valued fields."""
    ident = uuid.uuid4().hex
    where = target([CONNECT, close()], ident, path=path)
    ws = RawWebSocket(port)
    try:
        fields = [
            ("X-Custom", "V"),
            ("Sec-WebSocket-Protocol", "a, b"),
            ("sec-websocket-protocol", "c"),
            ("X-Dup", "1"),
            ("X-Dup", "2"),
            *extra,
        ]
        assert ws.handshake(where, fields) == 403
    finally:
        ws.close()
    scope = record(port, ident)["scope"]
    assert scope.pop("query_string") == {"$bytes": where.partition("?")[2]}
    return scope


def field_pair(name: str, value: str) -> Json:
    return [{"$bytes": name}, {"$bytes": value}]


EXPECTED_SCOPE = {
    "type": "websocket",
    "asgi": {"version": "3.0", "spec_version": "2.5"},  # 2.5: disconnect carries a reason
    "http_version": "1.1",
    "scheme": "ws",
    "path": "/ws/café x",
    "raw_path": {"$bytes": "/ws/caf%C3%A9%20x"},
    "root_path": "",
    # lower-cased names, order and duplicates kept (www.rst)
    "headers": [
        field_pair("host", "127.0.0.1:<port>"),
        field_pair("upgrade", "websocket"),
        field_pair("connection", "Upgrade"),
        field_pair("sec-websocket-key", "<key>"),
        field_pair("sec-websocket-version", "13"),
        field_pair("x-custom", "V"),
        field_pair("sec-websocket-protocol", "a, b"),
        field_pair("sec-websocket-protocol", "c"),
        field_pair("x-dup", "1"),
        field_pair("x-dup", "2"),
    ],
    "client": ["127.0.0.1", "<port>"],
    "server": ["127.0.0.1", "<port>"],
    "subprotocols": ["a", "b", "c"],
    "extensions": {"websocket.http.response": {}},
    "state": {"greeting": "hello"},  # lifespan's state, copied per connection
}


def test_scope(ports: dict[str, int]) -> None:
    assert handshake_scope(ports["zerohttp"], "/ws/caf%C3%A9%20x") == EXPECTED_SCOPE
    # uvicorn says spec 2.4, although its disconnect carries the client's reason (2.5)
    uvicorn = {**EXPECTED_SCOPE, "asgi": {"version": "3.0", "spec_version": "2.4"}}
    assert handshake_scope(ports["uvicorn"], "/ws/caf%C3%A9%20x") == uvicorn


def test_scope_under_a_root_path_behind_a_proxy() -> None:
    fields = ("root_path", "path", "raw_path", "scheme", "client")
    forwarded = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")]
    scopes = {}
    for server in SERVERS:
        flags = ["--root-path", "/api", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
        with launch(server, *flags) as port:
            scope = handshake_scope(port, "/ws", forwarded)
            scopes[server] = {name: scope[name] for name in fields}
    expected = {
        # path includes root_path (www.rst, WSGI compatibility: PATH_INFO is path less
        # root_path); raw_path is "unmodified from the bytes that were received"
        "root_path": "/api",
        "path": "/api/ws",
        "raw_path": {"$bytes": "/ws"},
        "scheme": "wss",  # https at the proxy: a secure WebSocket
        "client": ["203.0.113.9", 0],  # X-Forwarded-For names no port (uvicorn: 0 too)
    }
    assert scopes["zerohttp"] == expected
    # uvicorn prefixes raw_path with root_path too, as for HTTP
    uvicorn = {**expected, "raw_path": {"$bytes": "/api/ws"}}
    assert scopes["uvicorn"] == uvicorn


@pytest.mark.parametrize("server", SERVERS)
def test_handshake_after_a_request_on_the_same_connection(
    server: str, ports: dict[str, int]
) -> None:
    """A keep-alive connection that served a request can switch on the next one."""
    port = ports[server]
    ident = uuid.uuid4().hex
    ws = RawWebSocket(port)
    try:
        ws.send(b"GET /record?id=none HTTP/1.1\r\nHost: x\r\n\r\n")
        while b"not yet\n" not in ws.buf:
            chunk = ws.sock.recv(65536)
            assert chunk, ws.buf
            ws.buf += chunk
        assert ws.buf.startswith(b"HTTP/1.1 404 ")
        ws.buf = b""
        assert ws.handshake(target([CONNECT, accept(), send_text("hi"), close()], ident)) == 101
        assert ws.frames() == [[1, "hi"], ["close", 1000, ""]]
    finally:
        ws.close()
    assert comparable(record(port, ident)["events"]) == [
        CONNECTED,
        ok("accept"),
        ok("send"),
        ok("close"),
    ]


def test_shutdown_tells_the_app_and_the_client(tmp_path: Path) -> None:
    """SIGTERM with a WebSocket open: the app is told (websocket.disconnect) and the client
    gets a close frame. zerohttp says 1001 "going away" (RFC 6455 §7.4.1: "a server going
    down"); uvicorn says 1012 "service restart" (IANA registry), which a server told to
    stop cannot promise."""
    codes = {}
    for server in SERVERS:
        ident = uuid.uuid4().hex
        with started(server, env={"WS_RECORD_DIR": str(tmp_path)}) as running:
            script = [CONNECT, accept(), send_text("ready"), UNTIL_DISCONNECT]
            with connect(
                f"ws://127.0.0.1:{running.port}{target(script, ident)}",
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
            ) as conn:
                assert conn.recv(timeout=TIMEOUT) == "ready"
                running.proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    conn.recv(timeout=TIMEOUT)
                rcvd = conn.protocol.close_rcvd
                assert rcvd is not None, server
                saw = [int(rcvd.code), rcvd.reason]
            running.proc.wait(TIMEOUT)
        events = comparable(json.loads((tmp_path / f"{ident}.json").read_text())["events"])
        codes[server] = (events[-1], saw)
    assert codes["zerohttp"] == (
        disconnect(1001, "server shutting down"),
        [1001, "server shutting down"],
    )
    assert codes["uvicorn"] == (disconnect(1012), [1012, ""])


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("how", ["close", "http.response"])
def test_a_denial_ends_the_connection(server: str, how: str, ports: dict[str, int]) -> None:
    """A denied handshake is answered and the TCP connection closed (``Connection:
    close``): the client cannot send anything more on it."""
    ident = uuid.uuid4().hex
    deny = [close()] if how == "close" else [http_start(401), http_body("no")]
    ws = RawWebSocket(ports[server])
    try:
        assert ws.handshake(target([CONNECT, *deny], ident)) in (401, 403)
        rest = ws.buf
        while chunk := ws.sock.recv(65536):
            rest += chunk
    finally:
        ws.close()
    assert b"HTTP/1.1" not in rest  # nothing after the denial's own body


def test_shutdown_tells_an_app_that_has_not_accepted_yet(tmp_path: Path) -> None:
    ident = uuid.uuid4().hex
    env = {"WS_RECORD_DIR": str(tmp_path)}
    with started("zerohttp", "--timeout-graceful-shutdown", "3", env=env) as running:
        ws = RawWebSocket(running.port)
        try:
            where = target([CONNECT, CONNECT, accept()], ident)
            ws.send(
                f"GET {where} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            url = f"http://127.0.0.1:{running.port}/record?id={ident}&partial=1"

            def waiting() -> bool:  # the app has had websocket.connect: it waits in receive
                try:
                    with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
                        return bool(json.load(reply)["events"])
                except urllib.error.HTTPError:
                    return False

            assert wait_for(waiting, TIMEOUT)
            signalled = time.monotonic()
            running.proc.send_signal(signal.SIGTERM)
            running.proc.wait(TIMEOUT)
            took = time.monotonic() - signalled
        finally:
            ws.close()
    record = json.loads((tmp_path / f"{ident}.json").read_text())
    kinds = [event.get("recv", {}).get("type") for event in record["events"]]
    assert kinds[:2] == ["websocket.connect", "websocket.disconnect"], record.get("raised")
    assert record["events"][1]["recv"]["code"] == 1001  # going away
    assert took < 1.5
