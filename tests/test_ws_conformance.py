"""WebSocket conformance battery, after the Autobahn testsuite's fuzzingclient categories.

Autobahn is Python 2 only, so this battery rebuilds its case categories (1 framing, 2
ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 limits, 12/13
permessage-deflate) over the raw-socket client in ``wsframes.py``, with Autobahn's verdicts:

- OK: what the case expects, exactly;
- NON-STRICT: allowed, not the best behaviour (a SHOULD missed: e.g. invalid UTF-8 found
  only at the end of the frame or message instead of at the first bad byte);
- INFORMATIONAL: the RFC does not say; the outcome is recorded, not judged;
- FAILED: a MUST broken (wrong close code, a message echoed that should have failed the
  connection, no close at all).

Ids follow Autobahn's numbering where the case is Autobahn's (``1.1.1``...); cases of our
own carry an ``x`` (``x1.1``). Every case runs against ``zerohttp --app wsframes:echo_app``
and against uvicorn (``--ws websockets-sansio``, its default) with the same app. zerohttp
must meet each case's verdict exactly; uvicorn's known differences are listed in
``UVICORN`` (asserted, then shown as xfail), the rest must match too. Who is right where
they differ: benchmarks/RESULTS.md, "Issue 19 — conformance against uvicorn".
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serverprocs import free_port, server_process
from wsframes import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Closed,
    FrameError,
    Message,
    WSClient,
    close_payload,
    encode_frame,
    parse_close,
    parse_handshake,
)

TESTS = Path(__file__).resolve().parent
MIB = 1 << 20
MAX_SIZE = 16 * MIB  # both servers' default --ws-max-size
FAST = 0.5  # seconds a fail-fast case waits for the close before it sends the rest
OK, NON_STRICT, INFORMATIONAL, FAILED = "OK", "NON-STRICT", "INFORMATIONAL", "FAILED"

# uvicorn's outcomes where they differ from the case's verdict (why: RESULTS.md)
UVICORN: dict[str, str] = {}
# zerohttp's known failures, in files the conformance helper does not own: strict xfail
ZEROHTTP_BUGS: dict[str, str] = {}

# --- the servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def launch(name: str, *flags: str) -> Iterator[tuple[str, int]]:
    """``echo_app`` under ``name`` (zerohttp or uvicorn) with ``flags``, on a free port."""
    if name == "zerohttp":
        args = ["-m", "zerohttp", "--app", "wsframes:echo_app", "--port", "0"]
        args += ["--access-log", "off", "--lifespan", "off", *flags]
        port = None
    else:
        port = free_port()
        args = ["-m", "uvicorn", "wsframes:echo_app", "--port", str(port)]
        args += ["--ws", "websockets-sansio", "--no-access-log", "--lifespan", "off"]
        args += ["--log-level", "warning", *flags]
    env = {"PYTHONPATH": str(TESTS.parent)}  # this tree's zerohttp; wsframes from cwd
    with server_process(args, port=port, cwd=TESTS, env=env) as proc:
        yield name, proc.port
        if name == "zerohttp":  # uvicorn logs a traceback for each invalid UTF-8 message
            log = proc.output()
            assert log.count("Traceback") == log.count("DeliberateFailure: deliberate"), log


@pytest.fixture(scope="module", params=["zerohttp", "uvicorn"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    with launch(str(request.param)) as running:
        yield running


# --- what a case is ----------------------------------------------------------------------------

Step = bytes | float | tuple[bytes, int] | str  # frames; a pause; frames in chops; AWAIT
AWAIT = "await"  # a step: wait for the server's next message
Event = tuple[str, bytes]  # ("text" | "binary" | "pong", payload)


@dataclass
class Outcome:
    verdict: str
    detail: str


@dataclass
class Case:
    id: str
    run: Callable[[int], Outcome]
    verdict: str = OK  # what zerohttp must get
    extensions: str | None = None

    def __repr__(self) -> str:
        return self.id


def f(opcode: int, payload: bytes | str = b"", **options: object) -> bytes:
    raw = payload.encode() if isinstance(payload, str) else payload
    return encode_frame(opcode, raw, **options)  # type: ignore[arg-type]


def send_steps(client: WSClient, steps: list[Step]) -> list[Event]:
    """Run ``steps``; the events read at each AWAIT (instead of a pause that a loaded box
    may outrun: the server's answer to what came before, then the rest)."""
    events: list[Event] = []
    for step in steps:
        if step == AWAIT:
            events += read_events(client, 1, 5.0)
        elif isinstance(step, float):
            time.sleep(step)
        elif isinstance(step, tuple):
            client.send_raw(step[0], chop=step[1])
        elif isinstance(step, bytes):
            client.send_raw(step)
    return events


def as_event(message: Message) -> Event:
    return message.kind, message.data


def read_events(client: WSClient, count: int, timeout: float) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        message = client.recv_message(max(0.01, deadline - time.monotonic()))
        if message.kind == "ping":
            continue
        events.append(as_event(message))
        if message.kind == "close":
            break
    return events


def until_close(client: WSClient, timeout: float) -> tuple[list[Event], bytes | None, bool]:
    """Events up to the server's close frame, its payload (None: none came) and whether
    the server then closed TCP within ``timeout``."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            message = client.recv_message(max(0.01, deadline - time.monotonic()))
            if message.kind == "close":
                return events, message.data, client.wait_eof(deadline - time.monotonic())
            if message.kind != "ping":
                events.append(as_event(message))
    except Closed:
        return events, None, True
    except TimeoutError:
        return events, None, False


def short(events: list[Event]) -> str:
    return repr([(kind, data[:40] + (b"..." if len(data) > 40 else b"")) for kind, data in events])


def clean_close(client: WSClient, timeout: float = 5.0) -> str | None:
    """Our close 1000; the echo must be 1000 and the server must close TCP. The problem
    if not, else None."""
    client.send_close(1000)
    events, payload, eof = until_close(client, timeout)
    if events:
        return f"after our close: {short(events)}"
    if payload is None or parse_close(payload)[0] != 1000:
        return f"close echo {payload!r}"
    return None if eof else "TCP left open after the closing handshake"


def echo(
    steps: list[Step], expect: list[Event], *, timeout: float = 10.0, extensions: str | None = None
) -> Callable[[int], Outcome]:
    """Send ``steps``; the server answers exactly ``expect`` and closes cleanly."""

    def run(port: int) -> Outcome:
        with WSClient.connect(port, extensions=extensions) as client:
            send_steps(client, steps)
            try:
                events = read_events(client, len(expect), timeout)
            except (Closed, TimeoutError, FrameError) as exc:
                return Outcome(FAILED, f"{exc!r} waiting for {short(expect)}")
            if events != expect:
                return Outcome(FAILED, f"got {short(events)}, expected {short(expect)}")
            problem = clean_close(client)
            return Outcome(FAILED, problem) if problem else Outcome(OK, "echoed")

    return run


def fails(
    steps: list[Step],
    codes: tuple[int, ...] = (1002,),
    ok: list[Event] | None = None,
    non_strict: list[Event] | None = None,
    *,
    extensions: str | None = None,
    timeout: float = 5.0,
) -> Callable[[int], Outcome]:
    """Send ``steps``; the server must fail the connection with one of ``codes`` after
    answering ``ok`` (OK) or ``non_strict`` (NON-STRICT)."""
    ok_events = ok or []

    def run(port: int) -> Outcome:
        with WSClient.connect(port, extensions=extensions) as client:
            before: list[Event] = []
            try:
                before = send_steps(client, steps)
            except OSError:
                pass  # the server may fail the connection before it has read everything
            try:
                events, payload, eof = until_close(client, timeout)
            except FrameError as exc:
                return Outcome(FAILED, f"bad frame from the server: {exc}")
            events = before + events
            return judge_close(events, payload, eof, codes, ok_events, non_strict)

    return run


def judge_close(
    events: list[Event],
    payload: bytes | None,
    eof: bool,
    codes: tuple[int, ...],
    ok: list[Event],
    non_strict: list[Event] | None,
) -> Outcome:
    if not eof:
        return Outcome(FAILED, f"connection still open after {short(events)}")
    verdict = OK
    if events != ok:
        if non_strict is None or events != non_strict:
            return Outcome(FAILED, f"got {short(events)} before the close, expected {short(ok)}")
        verdict = NON_STRICT
    if payload is None:  # §7.1.7: SHOULD send a close frame before dropping TCP
        return Outcome(NON_STRICT, "TCP closed without a close frame")
    code = parse_close(payload)[0]
    if code not in codes:
        return Outcome(FAILED, f"close code {code}, expected one of {codes}")
    return Outcome(verdict, f"closed with {code}")


def fail_fast(before: list[Step], after: list[Step], code: int = 1007) -> Callable[[int], Outcome]:
    """OK if the server fails with ``code`` once ``before`` is sent (the first bad byte it
    could judge); NON-STRICT if only once ``after`` completes the frame or message."""

    def run(port: int) -> Outcome:
        with WSClient.connect(port) as client:
            send_steps(client, before)
            events, payload, eof = until_close(client, FAST)
            if payload is not None or eof:
                return judge_close(events, payload, eof, (code,), [], None)
            send_steps(client, after)
            events, payload, eof = until_close(client, 5.0)
            outcome = judge_close(events, payload, eof, (code,), [], None)
            if outcome.verdict == OK:
                return Outcome(NON_STRICT, f"{outcome.detail}, but only at the end")
            return outcome

    return run


def informational(steps: list[Step]) -> Callable[[int], Outcome]:
    """Record how the server ends the connection."""

    def run(port: int) -> Outcome:
        with WSClient.connect(port) as client:
            try:
                send_steps(client, steps)
            except OSError:
                pass
            events, payload, eof = until_close(client, 5.0)
            code = None if payload is None else parse_close(payload)[0]
            return Outcome(INFORMATIONAL, f"events {short(events)}, close {code}, eof {eof}")

    return run


def recorded(run: Callable[[int], Outcome]) -> Callable[[int], Outcome]:
    """The RFC leaves it open: record what happened, as INFORMATIONAL."""

    def record(port: int) -> Outcome:
        outcome = run(port)
        return Outcome(INFORMATIONAL, f"{outcome.verdict}: {outcome.detail}")

    return record


CASES: list[Case] = []


def case(
    id: str,
    run: Callable[[int], Outcome],
    verdict: str = OK,
    uvicorn: str | None = None,
    zerohttp_bug: str | None = None,
) -> None:
    CASES.append(Case(id, run, verdict))
    if uvicorn is not None:
        UVICORN[id] = uvicorn
    if zerohttp_bug is not None:
        ZEROHTTP_BUGS[id] = zerohttp_bug


# --- 0 the opening handshake (ours: RFC 6455 §4.2) -------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key


def request_head(*lines: str, first: str = "GET / HTTP/1.1") -> bytes:
    return ("\r\n".join([first, *lines]) + "\r\n\r\n").encode()


GOOD = ["Host: x", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}"]
V13 = "Sec-WebSocket-Version: 13"


def handshake(
    raw: bytes, statuses: tuple[int, ...], *, has: str | None = None, lacks: str | None = None
) -> Callable[[int], Outcome]:
    """Send ``raw``; the response status must be one of ``statuses``, carrying the field
    ``has`` and not ``lacks``."""

    def run(port: int) -> Outcome:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(raw)
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return Outcome(FAILED, f"closed without a response: {buffer!r}")
                buffer += chunk
        answer = parse_handshake(buffer.partition(b"\r\n\r\n")[0])
        if answer.status not in statuses:
            return Outcome(FAILED, f"status {answer.status}, expected {statuses}")
        if has is not None and answer.get(has) is None:
            return Outcome(FAILED, f"{answer.status} without {has}")
        if lacks is not None and answer.get(lacks) is not None:
            return Outcome(FAILED, f"{answer.status} with {lacks}: {answer.get(lacks)}")
        return Outcome(OK, str(answer.status))

    return run


case("x0.1", handshake(request_head(*GOOD, V13), (101,), has="sec-websocket-accept"))
# §4.2.2: "an appropriate HTTP error code (such as 426 ...)" and, a MUST, the versions we speak
case(
    "x0.2",
    handshake(
        request_head(*GOOD, "Sec-WebSocket-Version: 8"), (400, 426), has="sec-websocket-version"
    ),
    uvicorn=FAILED,
)
case("x0.3", handshake(request_head(*GOOD[:3], V13), (400,)))  # no key
case(
    "x0.4",
    handshake(request_head(*GOOD[:3], "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA", V13), (400,)),
)
case("x0.5", handshake(request_head(*GOOD, V13, first="POST / HTTP/1.1"), (400, 405)))
case("x0.6", handshake(request_head(*GOOD[:2], GOOD[3], V13), (400, 404, 426)))  # no Connection
case(
    "x0.7",
    handshake(
        request_head(*GOOD, V13, "Sec-WebSocket-Protocol: chat"),
        (101,),
        lacks="sec-websocket-protocol",
    ),
)
case("x0.8", handshake(request_head(*GOOD, GOOD[3], V13), (400,)))  # two keys
case(
    "x0.9",
    handshake(
        request_head(*GOOD, V13, "Sec-WebSocket-Extensions: x-foo"),
        (101,),
        lacks="sec-websocket-extensions",
    ),
)
case(
    "x0.10",
    handshake(request_head(*GOOD[:2], "Connection: keep-alive, Upgrade", GOOD[3], V13), (101,)),
)
case("x0.11", handshake(request_head(GOOD[0], "Upgrade: WebSocket", *GOOD[2:], V13), (101,)))
case(
    "x0.12", handshake(request_head(*GOOD[1:], V13), (400,)), uvicorn=FAILED
)  # no Host: RFC 9112 §3.2
# RFC 9110 §7.8: "A server MUST ignore an Upgrade header field ... in an HTTP/1.0 request"
case(
    "x0.13",
    handshake(request_head(*GOOD, V13, first="GET / HTTP/1.0"), (404,)),
    uvicorn=FAILED,
)
case(
    "x0.14",
    recorded(
        handshake(
            request_head(*GOOD, V13, "Sec-WebSocket-Extensions: permessage-deflate; ="), (101,)
        )
    ),
    INFORMATIONAL,
)

# --- 1 framing ---------------------------------------------------------------------------------

SIZES = [0, 125, 126, 127, 128, 65535, 65536]
for n, size in enumerate(SIZES, 1):
    case(f"1.1.{n}", echo([f(TEXT, b"*" * size)], [("text", b"*" * size)]))
    case(f"1.2.{n}", echo([f(BINARY, b"\xfe" * size)], [("binary", b"\xfe" * size)]))
case("1.1.8", echo([(f(TEXT, b"*" * 65536), 997)], [("text", b"*" * 65536)]))
case("1.2.8", echo([(f(BINARY, b"\xfe" * 65536), 997)], [("binary", b"\xfe" * 65536)]))
# ours: the rules a client's frames must keep (RFC 6455 §5.1, §5.2)
case("x1.1", fails([f(TEXT, "unmasked", mask=None)]))  # §5.1: MUST close (1002)
case("x1.2", echo([(f(TEXT, b"split"), 1)], [("text", b"split")]))  # byte by byte
# §5.2: "the minimal number of bytes MUST be used" binds the sender; the receiver may accept
case(
    "x1.3", recorded(echo([f(TEXT, b"x" * 5, length_bytes=8)], [("text", b"x" * 5)])), INFORMATIONAL
)
case("x1.4", fails([f(BINARY, length=1 << 63, length_bytes=8)], (1002, 1009)))  # MSB set
case("x1.5", fails([f(BINARY, length=(1 << 63) - 1, length_bytes=8)], (1009,)))

# --- 2 pings and pongs -------------------------------------------------------------------------

BIN = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
case("2.1", echo([f(PING)], [("pong", b"")]))
case("2.2", echo([f(PING, "Hello, world!")], [("pong", b"Hello, world!")]))
case("2.3", echo([f(PING, BIN)], [("pong", BIN)]))
case("2.4", echo([f(PING, b"\xfe" * 125)], [("pong", b"\xfe" * 125)]))
case("2.5", fails([f(PING, b"\xfe" * 126)]))
case("2.6", echo([(f(PING, b"\xfe" * 125), 1)], [("pong", b"\xfe" * 125)]))
case("2.7", echo([f(PONG)], []))
case("2.8", echo([f(PONG, "unsolicited pong payload")], []))
case("2.9", echo([f(PONG, "unsolicited"), f(PING, "ping")], [("pong", b"ping")]))
TEN = [f"payload-{i}".encode() for i in range(10)]
case("2.10", echo([f(PING, p) for p in TEN], [("pong", p) for p in TEN]))
case("2.11", echo([(f(PING, p), 1) for p in TEN], [("pong", p) for p in TEN]))

# --- 3 reserved bits ---------------------------------------------------------------------------

HELLO = [("text", b"Hello, world!")]
case("3.1", fails([f(TEXT, "Hello, world!", rsv=1)]))
# Sent in one write, a valid message and a bad frame reach the server together: it fails
# the connection before the application's echo is back (RFC 6455 §7.1.7 forbids sending it
# after). Autobahn lists that outcome as NON-STRICT; with a pause between them (3.4), OK.
ONE_WRITE = NON_STRICT
case(
    "3.2",
    fails([f(TEXT, "Hello, world!") + f(TEXT, "x", rsv=2) + f(PING)], ok=HELLO, non_strict=[]),
    ONE_WRITE,
)
case(
    "3.3",
    fails([f(TEXT, "Hello, world!") + f(TEXT, "x", rsv=3) + f(PING)], ok=HELLO, non_strict=[]),
    ONE_WRITE,
)
case(
    "3.4",
    fails([f(TEXT, "Hello, world!"), AWAIT, f(TEXT, "x", rsv=4), 0.05, f(PING)], ok=HELLO),
)
case("3.5", fails([f(BINARY, BIN, rsv=5)]))
case("3.6", fails([f(PING, "Hello, world!", rsv=6)]))
case("3.7", fails([f(CLOSE, close_payload(1000), rsv=7)]))

# --- 4 opcodes ---------------------------------------------------------------------------------

for group, opcodes in (("4.1", [3, 4, 5, 6, 7]), ("4.2", [11, 12, 13, 14, 15])):
    for n, opcode in enumerate(opcodes, 1):
        if n <= 2:
            steps = [f(opcode, b"" if n == 1 else b"reserved opcode")]
            case(f"{group}.{n}", fails(steps))
        else:
            steps = [f(TEXT, "Hello, world!") + f(opcode, b"\x00" * n) + f(PING)]
            case(f"{group}.{n}", fails(steps, ok=HELLO, non_strict=[]), ONE_WRITE)
case("x4.1", fails([f(TEXT, "Hello, world!"), AWAIT, f(5), 0.05, f(PING)], ok=HELLO))

# --- 5 fragmentation ---------------------------------------------------------------------------

F1, F2 = "fragment1", "fragment2"
TWO = [f(TEXT, F1, fin=False), f(CONT, F2)]
WITH_PING = [f(TEXT, F1, fin=False), f(PING, "ping"), f(CONT, F2)]
JOINED = [("text", b"fragment1fragment2")]
case("5.1", fails([f(PING, F1, fin=False), f(CONT, F2)]))
case("5.2", fails([f(PONG, F1, fin=False), f(CONT, F2)]))
case("5.3", echo(TWO, JOINED))
case("5.4", echo([(b"".join(TWO), 1)], JOINED))
case("5.5", echo([TWO[0], 0.05, TWO[1]], JOINED))
case("5.6", echo(WITH_PING, [("pong", b"ping"), *JOINED]))
case("5.7", echo([(b"".join(WITH_PING), 1)], [("pong", b"ping"), *JOINED]))
case(
    "5.8",
    echo([WITH_PING[0], 0.05, WITH_PING[1], 0.05, WITH_PING[2]], [("pong", b"ping"), *JOINED]),
)
STRAY = [f(CONT, "non-continuation payload"), f(TEXT, "Hello, world!")]
case("5.9", fails(STRAY))
case("5.10", fails([STRAY[0], 0.05, STRAY[1]]))
case("5.11", fails([(b"".join(STRAY), 1)]))
STRAY_OPEN = [f(CONT, "non-continuation payload", fin=False), f(TEXT, "Hello, world!")]
case("5.12", fails(STRAY_OPEN))
case("5.13", fails([STRAY_OPEN[0], 0.05, STRAY_OPEN[1]]))
case("5.14", fails([(b"".join(STRAY_OPEN), 1)]))
AFTER_END = [f(TEXT, F1, fin=False), f(CONT, F2), f(CONT, "fragment3", fin=False), f(TEXT, "f4")]
case("5.15", fails([b"".join(AFTER_END)], ok=JOINED, non_strict=[]), ONE_WRITE)
NOTHING = [f(CONT, F1, fin=False), f(TEXT, F2, fin=False), f(CONT, "fragment3")]
case("5.16", fails(NOTHING * 2))
case("5.17", fails([f(CONT, F1), f(TEXT, F2, fin=False), f(CONT, "fragment3")] * 2))
case("5.18", fails([f(TEXT, F1, fin=False), f(TEXT, F2)]))
LONG = [
    f(TEXT, "fragment1", fin=False),
    f(CONT, "fragment2", fin=False),
    f(PING, "pongme 1!"),
    0.05,
    f(CONT, "fragment3", fin=False),
    f(CONT, "fragment4", fin=False),
    f(PING, "pongme 2!"),
    0.05,
    f(CONT, "fragment5"),
]
FIVE = ("text", b"fragment1fragment2fragment3fragment4fragment5")
case("5.19", echo(LONG, [("pong", b"pongme 1!"), ("pong", b"pongme 2!"), FIVE]))
case(
    "5.20",
    echo(
        [(s, 1) if isinstance(s, bytes) else s for s in LONG],
        [("pong", b"pongme 1!"), ("pong", b"pongme 2!"), FIVE],
    ),
)

# --- 6 UTF-8 -----------------------------------------------------------------------------------


def text_in_frames(data: bytes, size: int) -> list[Step]:
    """``data`` as one text message in frames of ``size`` bytes (the last one FIN)."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [
        f(TEXT if i == 0 else CONT, piece, fin=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    ]


def utf8_case(id: str, data: bytes, valid: bool, **kwargs: str) -> None:
    """One frame, and one frame per byte (a boundary in every code point)."""
    for suffix, steps in (("", [f(TEXT, data)]), ("/bytes", text_in_frames(data, 1))):
        run = echo(steps, [("text", data)]) if valid else fails(steps, (1007,))
        case(id + suffix, run, **kwargs)


case("6.1.1", echo([f(TEXT)], [("text", b"")]))
case("6.1.2", echo([f(TEXT, fin=False), f(CONT, fin=False), f(CONT)], [("text", b"")]))
case(
    "6.1.3",
    echo([f(TEXT, fin=False), f(CONT, "middle", fin=False), f(CONT)], [("text", b"middle")]),
)
HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!".encode()
case("6.2.1", echo([f(TEXT, HELLO_UTF8)], [("text", HELLO_UTF8)]))
case("6.2.2", echo(text_in_frames(HELLO_UTF8, 8), [("text", HELLO_UTF8)]))  # splits "ß"
case("6.2.3", echo(text_in_frames(HELLO_UTF8, 1), [("text", HELLO_UTF8)]))
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # κόσμε: code points of 2,3,2,2,2
case("6.2.4", echo(text_in_frames(KOSME, 1), [("text", KOSME)]))
BAD = KOSME + b"\xed\xa0\x80" + b"edited"  # a UTF-16 surrogate inside
case("6.3.1", fails([f(TEXT, BAD)], (1007,)))
case("6.3.2", fails(text_in_frames(BAD, 1), (1007,)))
# fail fast (§8.1): the invalid byte ends the connection once a frame carrying it is in
P1, P2, P3 = KOSME, b"\xf4\x90\x80\x80", b"edited"  # P2: 0x110000, beyond Unicode
case(
    "6.4.1",
    fail_fast([f(TEXT, P1, fin=False), 0.05, f(CONT, P2, fin=False)], [f(CONT, P3)]),
    uvicorn=NON_STRICT,
)
case(
    "6.4.2",
    fail_fast(
        [f(TEXT, P1 + b"\xf4", fin=False), 0.05, f(CONT, b"\x90", fin=False)],
        [f(CONT, b"\x80\x80edited")],
    ),
    uvicorn=NON_STRICT,
)
WHOLE = f(TEXT, P1 + P2 + P3)
HEAD = len(WHOLE) - len(P1 + P2 + P3)
# one frame, in pieces: found only when the frame is complete (websockets parses frames)
case(
    "6.4.3",
    fail_fast(
        [WHOLE[: HEAD + len(P1)], 0.05, WHOLE[HEAD + len(P1) : HEAD + len(P1 + P2)]],
        [WHOLE[HEAD + len(P1 + P2) :]],
    ),
    NON_STRICT,
)
case(
    "6.4.4",
    fail_fast(
        [WHOLE[: HEAD + len(P1)], 0.05, WHOLE[HEAD + len(P1) : HEAD + len(P1) + 1]],
        [WHOLE[HEAD + len(P1) + 1 :]],
    ),
    NON_STRICT,
)
case("6.5.1", echo([f(TEXT, KOSME)], [("text", KOSME)]))
# 6.6: every prefix of κόσμε; valid exactly at code point ends (byte lengths 2,3,2,2,2)
ENDS = {2, 5, 7, 9, 11}
for n in range(1, len(KOSME) + 1):
    utf8_case(f"6.6.{n}", KOSME[:n], n in ENDS)

# Markus Kuhn's UTF-8 decoder stress test (Autobahn 6.7-6.23), each with its verdict
# written down here, not computed by a decoder
KUHN: list[tuple[str, bytes, bool]] = [
    ("6.7.1", b"\x00", True),  # first code point of each length
    ("6.7.2", b"\xc2\x80", True),
    ("6.7.3", b"\xe0\xa0\x80", True),
    ("6.7.4", b"\xf0\x90\x80\x80", True),
    ("6.8.1", b"\xf8\x88\x80\x80\x80", False),  # 5 and 6 byte forms
    ("6.8.2", b"\xfc\x84\x80\x80\x80\x80", False),
    ("6.9.1", b"\x7f", True),  # last code point of each length
    ("6.9.2", b"\xdf\xbf", True),
    ("6.9.3", b"\xef\xbf\xbf", True),
    ("6.9.4", b"\xf4\x8f\xbf\xbf", True),
    ("6.10.1", b"\xf7\xbf\xbf\xbf", False),  # beyond U+10FFFF
    ("6.10.2", b"\xfb\xbf\xbf\xbf\xbf", False),
    ("6.10.3", b"\xfd\xbf\xbf\xbf\xbf\xbf", False),
    ("6.11.1", b"\xed\x9f\xbf", True),  # U+D7FF
    ("6.11.2", b"\xee\x80\x80", True),  # U+E000
    ("6.11.3", b"\xef\xbf\xbd", True),  # U+FFFD
    ("6.11.4", b"\xf4\x8f\xbf\xbf", True),  # U+10FFFF
    ("6.11.5", b"\xf4\x90\x80\x80", False),  # U+110000
    ("6.12.1", b"\x80", False),  # unexpected continuation bytes
    ("6.12.2", b"\xbf", False),
    ("6.12.3", b"\x80\xbf", False),
    ("6.12.4", b"\x80\xbf\x80", False),
    ("6.12.5", b"\x80\xbf\x80\xbf", False),
    ("6.12.6", b"\x80\xbf\x80\xbf\x80", False),
    ("6.12.7", b"\x80\xbf\x80\xbf\x80\xbf", False),
    ("6.12.8", bytes(range(0x80, 0xC0)), False),
    ("6.13.1", b"".join(bytes([b, 0x20]) for b in range(0xC0, 0xE0)), False),  # lonely starts
    ("6.13.2", b"".join(bytes([b, 0x20]) for b in range(0xE0, 0xF0)), False),
    ("6.13.3", b"".join(bytes([b, 0x20]) for b in range(0xF0, 0xF8)), False),
    ("6.13.4", b"".join(bytes([b, 0x20]) for b in range(0xF8, 0xFC)), False),
    ("6.13.5", b"".join(bytes([b, 0x20]) for b in range(0xFC, 0xFE)), False),
    ("6.14.1", b"\xc0", False),  # last continuation byte missing
    ("6.14.2", b"\xe0\x80", False),
    ("6.14.3", b"\xf0\x80\x80", False),
    ("6.14.4", b"\xf8\x80\x80\x80", False),
    ("6.14.5", b"\xfc\x80\x80\x80\x80", False),
    ("6.14.6", b"\xdf", False),
    ("6.14.7", b"\xef\xbf", False),
    ("6.14.8", b"\xf7\xbf\xbf", False),
    ("6.14.9", b"\xfb\xbf\xbf\xbf", False),
    ("6.14.10", b"\xfd\xbf\xbf\xbf\xbf", False),
    ("6.15.1", b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80", False),
    ("6.16.1", b"\xfe", False),  # impossible bytes
    ("6.16.2", b"\xff", False),
    ("6.16.3", b"\xfe\xfe\xff\xff", False),
    ("6.17.1", b"\xc0\xaf", False),  # overlong "/"
    ("6.17.2", b"\xe0\x80\xaf", False),
    ("6.17.3", b"\xf0\x80\x80\xaf", False),
    ("6.17.4", b"\xf8\x80\x80\x80\xaf", False),
    ("6.17.5", b"\xfc\x80\x80\x80\x80\xaf", False),
    ("6.18.1", b"\xc1\xbf", False),  # maximum overlong
    ("6.18.2", b"\xe0\x9f\xbf", False),
    ("6.18.3", b"\xf0\x8f\xbf\xbf", False),
    ("6.18.4", b"\xf8\x87\xbf\xbf\xbf", False),
    ("6.18.5", b"\xfc\x83\xbf\xbf\xbf\xbf", False),
    ("6.19.1", b"\xc0\x80", False),  # overlong NUL
    ("6.19.2", b"\xe0\x80\x80", False),
    ("6.19.3", b"\xf0\x80\x80\x80", False),
    ("6.19.4", b"\xf8\x80\x80\x80\x80", False),
    ("6.19.5", b"\xfc\x80\x80\x80\x80\x80", False),
    ("6.20.1", b"\xed\xa0\x80", False),  # single UTF-16 surrogates
    ("6.20.2", b"\xed\xad\xbf", False),
    ("6.20.3", b"\xed\xae\x80", False),
    ("6.20.4", b"\xed\xaf\xbf", False),
    ("6.20.5", b"\xed\xb0\x80", False),
    ("6.20.6", b"\xed\xbe\x80", False),
    ("6.20.7", b"\xed\xbf\xbf", False),
    ("6.21.1", b"\xed\xa0\x80\xed\xb0\x80", False),  # paired surrogates
    ("6.21.2", b"\xed\xa0\x80\xed\xbf\xbf", False),
    ("6.21.3", b"\xed\xad\xbf\xed\xb0\x80", False),
    ("6.21.4", b"\xed\xad\xbf\xed\xbf\xbf", False),
    ("6.21.5", b"\xed\xae\x80\xed\xb0\x80", False),
    ("6.21.6", b"\xed\xae\x80\xed\xbf\xbf", False),
    ("6.21.7", b"\xed\xaf\xbf\xed\xb0\x80", False),
    ("6.21.8", b"\xed\xaf\xbf\xed\xbf\xbf", False),
    ("6.22.1", b"\xef\xbf\xbe", True),  # noncharacters are valid UTF-8
    ("6.22.2", b"\xef\xbf\xbf", True),
    ("6.22.3", b"\xf0\x9f\xbf\xbe", True),
    ("6.22.4", b"\xf0\x9f\xbf\xbf", True),
    ("6.22.5", b"\xf4\x8f\xbf\xbe", True),
    ("6.22.6", b"\xef\xb7\x90", True),  # U+FDD0
    ("6.22.7", b"\xef\xb7\xaf", True),  # U+FDEF
    ("6.23.1", b"\xef\xbf\xbd", True),  # U+FFFD itself
    ("6.23.2", KOSME + b"\xef\xbf\xbd" + KOSME, True),
    ("6.23.3", KOSME + b"\xed\xbf\xbf" + KOSME, False),
]
for kuhn_id, data, valid in KUHN:
    utf8_case(kuhn_id, data, valid)

# --- 7 close -----------------------------------------------------------------------------------


def closes(
    steps: list[Step], codes: tuple[int | None, ...], ok: list[Event] | None = None
) -> Callable[[int], Outcome]:
    """We close (inside ``steps``); the server echoes one of ``codes`` (None: an empty
    close frame) after ``ok`` and closes TCP; nothing after our close is answered."""

    def run(port: int) -> Outcome:
        with WSClient.connect(port) as client:
            before: list[Event] = []
            try:
                before = send_steps(client, steps)
            except OSError:
                pass
            events, payload, eof = until_close(client, 5.0)
            events = before + events
            if events != (ok or []):
                return Outcome(FAILED, f"got {short(events)}")
            if payload is None:
                return Outcome(FAILED, "no close frame")
            code = parse_close(payload)[0]
            if code not in codes:
                return Outcome(FAILED, f"close {code}, expected {codes}")
            if not eof:
                return Outcome(FAILED, "TCP left open")
            return Outcome(OK, f"closed with {code}")

    return run


C1000 = f(CLOSE, close_payload(1000))
# A message and a close in one write: Autobahn wants the echo before the close reply
# (RFC 6455 §5.5.1 lets the reply wait for "its current message", so a server MAY).
case(
    "7.1.1",
    closes([f(TEXT, "Hello World") + C1000], (1000,), [("text", b"Hello World")]),
    uvicorn=FAILED,
)
case("x7.5", closes([f(TEXT, "Hello World"), AWAIT, C1000], (1000,), [("text", b"Hello World")]))
case("7.1.2", closes([C1000, C1000], (1000,)))
case("7.1.3", closes([C1000, f(PING)], (1000,)))
case("7.1.4", closes([C1000, f(TEXT, "after close")], (1000,)))
# §5.4: control frames may come amid a fragmented message; §5.5.1: a close MUST be answered
case("7.1.5", closes([f(TEXT, F1, fin=False), C1000, f(CONT, F2)], (1000,)), uvicorn=FAILED)
case("7.3.1", closes([f(CLOSE)], (None, 1000)))  # no status code: 1005 for the app
case("7.3.2", fails([f(CLOSE, b"\x03")]))  # one byte: no code can be read
case("7.3.3", closes([C1000], (1000,)))
case("7.3.4", closes([f(CLOSE, close_payload(1000, "Hello World!"))], (1000,)))
case("7.3.5", closes([f(CLOSE, close_payload(1000, "*" * 123))], (1000,)))
case("7.3.6", fails([f(CLOSE, close_payload(1000, "*" * 124))]))  # 126 bytes: too long
case("7.5.1", fails([f(CLOSE, close_payload(1000, BAD))], (1002, 1007)))
VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
for n, code in enumerate(VALID_CODES, 1):
    case(f"7.7.{n}", closes([f(CLOSE, close_payload(code))], (code, 1000)))
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
for n, code in enumerate(INVALID_CODES, 1):
    case(f"7.9.{n}", fails([f(CLOSE, close_payload(code))]))
case("7.13.1", informational([f(CLOSE, close_payload(5000))]), INFORMATIONAL)
case("7.13.2", informational([f(CLOSE, close_payload(65535))]), INFORMATIONAL)
# ours: the codes the IANA registry added after RFC 6455 are valid on the wire
for n, code in enumerate([1012, 1013, 1014], 1):
    case(f"x7.{n}", closes([f(CLOSE, close_payload(code))], (code, 1000)))
case("x7.4", fails([f(CLOSE, close_payload(1015))]))  # TLS failure: never on the wire (§7.4.1)

# ours: the closing handshake when the application starts it (echo_app's "!close"), and
# the close an application error ends in (1011, §7.4.1; the requirement)


def app_closes(
    command: str, code: int, reason: bytes | None = None, *, chatter: int = 0
) -> Callable[[int], Outcome]:
    """Ask the app to close; the server's close frame must carry ``code`` (and ``reason``,
    if given) in at most 125 bytes; we send ``chatter`` messages (never answered: the
    server sent its close) and then our close; the server must then close TCP."""

    def run(port: int) -> Outcome:
        with WSClient.connect(port) as client:
            client.send_message(command)
            try:
                message = client.recv_message(5.0)
            except (Closed, TimeoutError, FrameError) as exc:
                return Outcome(FAILED, f"no close frame: {exc!r}")
            if message.kind != "close":
                return Outcome(FAILED, f"got {message.kind} before the close")
            got_code, got_reason = parse_close(message.data)
            if got_code != code:
                return Outcome(FAILED, f"close {got_code}, expected {code}")
            if reason is not None and got_reason != reason:
                return Outcome(
                    FAILED, f"reason {got_reason[:30]!r}..., expected {reason[:30]!r}..."
                )
            try:
                for i in range(chatter):
                    client.send_message(f"late {i}")
                client.send_close(code)
            except OSError:
                return Outcome(NON_STRICT, "TCP closed before our close answer")
            events, payload, eof = until_close(client, 5.0)
            if events or payload is not None:
                return Outcome(FAILED, f"after its close: {short(events)} {payload!r}")
            return Outcome(OK, f"closed with {code}") if eof else Outcome(FAILED, "TCP left open")

    return run


case("x7.6", app_closes("!close 4000 bye", 4000, b"bye"))
case("x7.7", app_closes("!close 1000", 1000, b""))
case("x7.8", app_closes("!close 4001 late", 4001, b"late", chatter=3))
# §5.5: a control frame carries at most 125 bytes; the ASGI reason "can be any string"
case("x7.9", app_closes("!close 4000 *100", 4000, ("é" * 61).encode()), uvicorn=FAILED)
case("x7.10", fails([f(TEXT, "!raise")], (1011,)), uvicorn=NON_STRICT)


# --- 9 limits and performance ------------------------------------------------------------------

for n, size in enumerate([64 << 10, 256 << 10, MIB, 4 * MIB, 8 * MIB, 16 * MIB], 1):
    case(f"9.1.{n}", echo([f(TEXT, b"*" * size)], [("text", b"*" * size)], timeout=30))
    case(f"9.2.{n}", echo([f(BINARY, b"\xfe" * size)], [("binary", b"\xfe" * size)], timeout=30))
FOUR_MIB = b"*" * (4 * MIB)
for n, size in enumerate(
    [64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, MIB, 4 * MIB], 1
):
    if n in (1, 3, 5, 7, 9):
        steps = text_in_frames(FOUR_MIB, size)
        case(f"9.3.{n}", echo([b"".join(steps)], [("text", FOUR_MIB)], timeout=30))
for n, chop in enumerate([64, 128, 256, 512, 1024, 2048], 1):
    if n in (1, 6):
        case(f"9.5.{n}", echo([(f(TEXT, b"*" * MIB), chop)], [("text", b"*" * MIB)]))
        case(f"9.6.{n}", echo([(f(BINARY, b"\xfe" * MIB), chop)], [("binary", b"\xfe" * MIB)]))


def round_trips(count: int, size: int, opcode: int) -> Callable[[int], Outcome]:
    """``count`` messages, each sent once the previous one came back (Autobahn 9.7/9.8)."""
    payload = (b"*" if opcode == TEXT else b"\xfe") * size
    kind = "text" if opcode == TEXT else "binary"

    def run(port: int) -> Outcome:
        frame = f(opcode, payload)
        with WSClient.connect(port) as client:
            started = time.monotonic()
            for _ in range(count):
                client.send_raw(frame)
                message = client.recv_message(10.0)
                if (message.kind, message.data) != (kind, payload):
                    return Outcome(FAILED, f"got {message.kind} {message.data[:40]!r}")
            took = time.monotonic() - started
            problem = clean_close(client)
            return Outcome(FAILED, problem) if problem else Outcome(OK, f"{took:.2f} s")

    return run


for n, size in enumerate([0, 16, 64, 256, 1 << 10, 4 << 10], 1):
    if n in (1, 3, 6):
        case(f"9.7.{n}", round_trips(1000, size, TEXT))
        case(f"9.8.{n}", round_trips(1000, size, BINARY))
# ours: the message limit (--ws-max-size, 16 MiB by default): 1009 (§7.4.1)
case("x9.1", fails([f(BINARY, b"\xfe" * (MAX_SIZE + 1))], (1009,)))
case("x9.2", fails([f(BINARY, b"\xfe" * MAX_SIZE, fin=False), f(CONT, b"\xfe")], (1009,)))
case("x9.3", fails([f(TEXT, length=MAX_SIZE + 1, length_bytes=8)], (1009,)))  # header only

# --- 12/13 permessage-deflate (RFC 7692) -------------------------------------------------------

WORDS = [bytes(random.Random(i).choices(b"abcdefghijklmnopqrstuvwxyz", k=7)) for i in range(64)]


def corpus(size: int, seed: int, opcode: int) -> bytes:
    """Compressible text (words) or binary (words and noise), reproducible."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += rng.choice(WORDS) + b" "
        if opcode == BINARY and rng.random() < 0.2:
            out += rng.randbytes(8)
    return bytes(out[:size])


def answer_problem(offer: str, answer: str) -> str | None:
    """What in ``answer`` RFC 7692 §7.1 forbids for the first offer that it can answer."""
    accepted = answer.split(";")[0].strip()
    if accepted != PMD:
        return f"answered {answer!r}"
    params = {p.split("=")[0].strip() for p in answer.split(";")[1:]}
    for one in offer.split(","):
        offered = {p.split("=")[0].strip() for p in one.split(";")[1:]}
        if "server_max_window_bits=8" in one.replace(" ", ""):
            continue  # the offer zlib cannot serve: declined
        if "server_no_context_takeover" in offered and "server_no_context_takeover" not in params:
            return "server_no_context_takeover offered, not in the answer (§7.1.1.1)"
        if "client_max_window_bits" in params and "client_max_window_bits" not in offered:
            return "client_max_window_bits answered, not offered (§7.1.2.2)"
        return None
    return "no offer it could answer"


def deflated(
    offer: str,
    sizes: list[int],
    *,
    count: int = 10,
    opcode: int = TEXT,
    reset: bool = False,
    require: str | None = "accept",
    window: int | None = None,
) -> Callable[[int], Outcome]:
    """Negotiate with ``offer``; send ``count`` compressed messages of each size (context
    kept across messages unless ``reset``) and read the echoes back compressed, within
    the window and context rules the server agreed to (wsframes.Deflate checks both)."""

    def run(port: int) -> Outcome:
        with WSClient.connect(port, extensions=offer) as client:
            agreed = client.deflate
            if agreed is None:
                if require == "accept":
                    return Outcome(FAILED, f"declined {offer!r}")
                return (
                    Outcome(OK, f"declined {offer!r}")
                    if not clean_close(client)
                    else Outcome(FAILED, "close")
                )
            if window is not None and agreed.server_max_window_bits > window:
                return Outcome(FAILED, f"server window {agreed.server_max_window_bits} > {window}")
            problem = answer_problem(offer, client.handshake.get("sec-websocket-extensions") or "")
            if problem:
                return Outcome(FAILED, problem)
            kind = "text" if opcode == TEXT else "binary"
            for size in sizes:
                for i in range(count):
                    payload = corpus(size, size + i, opcode)
                    client.send_frame(opcode, agreed.compress(payload, reset=reset), rsv=4)
                    try:
                        message = client.recv_message(10.0)
                    except (zlib.error, FrameError, TimeoutError, Closed) as exc:
                        return Outcome(FAILED, f"{size} B #{i}: {exc!r}")
                    if (message.kind, message.data) != (kind, payload):
                        return Outcome(
                            FAILED, f"{size} B #{i}: {message.kind} {message.data[:30]!r}"
                        )
                    if size > 64 and not message.compressed:
                        return Outcome(FAILED, f"{size} B #{i} came back uncompressed")
            problem = clean_close(client)
            return (
                Outcome(FAILED, problem)
                if problem
                else Outcome(OK, client.handshake.get("sec-websocket-extensions") or "")
            )

    return run


PMD = "permessage-deflate"
SIZES_12 = [16, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10]
for n, size in enumerate(SIZES_12, 1):
    case(f"12.1.{n}", deflated(f"{PMD}; client_max_window_bits", [size]))
    case(f"12.2.{n}", deflated(f"{PMD}; client_max_window_bits", [size], opcode=BINARY))
    case(f"12.3.{n}", deflated(PMD, [size], reset=True))
OFFERS_13 = [
    PMD,
    f"{PMD}; server_no_context_takeover",
    f"{PMD}; server_max_window_bits=9",
    f"{PMD}; server_max_window_bits=15",
    f"{PMD}; server_no_context_takeover; server_max_window_bits=9",
    f"{PMD}; client_no_context_takeover; client_max_window_bits=9",
    f"{PMD}; server_max_window_bits=8, {PMD}; server_no_context_takeover, {PMD}",
]
WINDOWS_13 = [None, None, 9, 15, 9, None, None]
for n, (offer, window) in enumerate(zip(OFFERS_13, WINDOWS_13, strict=True), 1):
    case(f"13.{n}.1", deflated(offer, [1 << 10, 16 << 10, 64 << 10], count=4, window=window))
    case(f"13.{n}.2", deflated(offer, [1 << 10, 16 << 10], count=4, reset=True, window=window))
# server_max_window_bits=8 alone: zlib cannot compress within 256 bytes; decline or honour
case("x13.1", deflated(f"{PMD}; server_max_window_bits=8", [4 << 10], require=None, window=8))
# a client window of 8 bits: the server must inflate within 256 bytes (RFC 7692 §7.1.2.2)
case("x13.4", deflated(f"{PMD}; client_max_window_bits=8", [16, 4 << 10], count=4))
case("x13.2", deflated(f"{PMD}; unknown_param", [1 << 10], require=None))  # §5: decline
case("x13.3", deflated(f"{PMD}; server_max_window_bits=16", [1 << 10], require=None))


def deflate_fails(
    steps: Callable[[WSClient], list[Step]], codes: tuple[int, ...]
) -> Callable[[int], Outcome]:
    def run(port: int) -> Outcome:
        with WSClient.connect(port, extensions=f"{PMD}; client_max_window_bits") as client:
            if client.deflate is None:
                return Outcome(FAILED, "deflate declined")
            try:
                send_steps(client, steps(client))
            except OSError:
                pass
            events, payload, eof = until_close(client, 5.0)
            return judge_close(events, payload, eof, codes, [], None)

    return run


def zip_bomb(client: WSClient) -> list[Step]:
    assert client.deflate is not None
    return [f(BINARY, client.deflate.compress(bytes(MAX_SIZE + 1)), rsv=4)]


case("x12.1", deflate_fails(lambda c: [f(BINARY, b"\xff\xff\xff garbage", rsv=4)], (1002, 1007)))
case("x12.2", deflate_fails(lambda c: [f(TEXT, c.deflate.compress(BAD), rsv=4)], (1007,)))  # type: ignore[union-attr]
case(
    "x12.3",
    deflate_fails(
        lambda c: [f(TEXT, c.deflate.compress(b"ab")[:1], rsv=4, fin=False), f(CONT, b"x", rsv=4)],
        (1002,),
    ),
)  # type: ignore[union-attr]
case("x12.4", deflate_fails(lambda c: [f(PING, b"x", rsv=4)], (1002,)))
case("x12.5", deflate_fails(zip_bomb, (1009,)))


def uncompressed_on_deflate(port: int) -> Outcome:
    """A message without RSV1 on a deflate connection is plain (RFC 7692 §6)."""
    return echo([f(TEXT, "plain")], [("text", b"plain")], extensions=PMD)(port)


case("x12.6", uncompressed_on_deflate)

# --- the run -----------------------------------------------------------------------------------


@pytest.mark.parametrize("conformance_case", CASES, ids=[c.id for c in CASES])
def test_case(
    server: tuple[str, int], conformance_case: Case, request: pytest.FixtureRequest
) -> None:
    name, port = server
    if name == "zerohttp" and conformance_case.id in ZEROHTTP_BUGS:
        reason = ZEROHTTP_BUGS[conformance_case.id]
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    outcome = conformance_case.run(port)
    expected = conformance_case.verdict
    report = os.environ.get("WS_CONFORMANCE_REPORT")  # a file to list every outcome in
    if report:
        with open(report, "a") as out:
            out.write(f"{conformance_case.id}\t{name}\t{outcome.verdict}\t{outcome.detail}\n")
    if name == "uvicorn" and conformance_case.id in UVICORN:
        recorded = UVICORN[conformance_case.id]
        assert outcome.verdict == recorded, outcome.detail
        pytest.xfail(f"uvicorn: {outcome.verdict} ({outcome.detail}); {expected} expected")
    assert outcome.verdict == expected, f"{name} {conformance_case.id}: {outcome.detail}"


@pytest.mark.parametrize("name", ["zerohttp", "uvicorn"])
def test_deflate_switched_off(name: str) -> None:
    """--no-ws-per-message-deflate (uvicorn: --ws-per-message-deflate false): the offer is
    declined, so RSV1 is again a protocol error (RFC 6455 §5.2) and plain messages echo."""
    flags = (
        ["--no-ws-per-message-deflate"]
        if name == "zerohttp"
        else ["--ws-per-message-deflate", "false"]
    )
    with launch(name, *flags) as (_, port):
        assert echo([f(TEXT, "plain")], [("text", b"plain")], extensions=PMD)(port).verdict == OK
        with WSClient.connect(port, extensions=PMD) as client:
            assert client.deflate is None
        outcome = fails([f(TEXT, zlib.compress(b"x")[2:-4], rsv=4)], extensions=PMD)(port)
        assert outcome.verdict == OK, outcome.detail
