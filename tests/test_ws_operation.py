"""WebSocket in operation, end to end over real sockets on both event loops: backpressure
both ways, shutdown, TLS, workers, --root-path, lifespan state, the access log, metrics,
--limit-concurrency, --header-timeout and the keepalive.

Bounds are in bytes the kernel may hold on the way (socket buffers, autotuned up to a few
MiB on loopback), so they hold under any CPU load; times are lower bounds with generous
upper ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import select
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import LOOPS, RunningServer, start_server
from helpers import wait_for
from serverprocs import Zerohttp, free_port, zerohttp
from test_ws_e2e import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    TIMEOUT,
    RawWebSocket,
    close_payload,
    frame,
    ws_connect,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from zerohttp.http.exchange import ClientDisconnected
from zerohttp.websocket.driver import WebSocketDriver

REPO = Path(__file__).resolve().parent.parent
CHUNK = 64 * 1024
FLOOD_TOTAL = 64 * 1024 * 1024  # what the app would send, or the client write, unhindered
# what the kernel may hold between the two ends of a loopback connection (tcp_wmem's
# autotuned maximum is 4 MiB, the client's receive buffer is set small): well below a flood
KERNEL_SLACK = 12 * 1024 * 1024
MAX_QUEUE = 4
SENDER_MESSAGES = 100


class Seen:
    """What the in-process application saw, for the test thread."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.received: dict[str, int] = {}
        self.disconnects: dict[str, int] = {}
        self.release: asyncio.Event | None = None


def ops_app(seen: Seen) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["started"] = "yes"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "websocket":
            return
        path = scope["path"].removeprefix(scope["root_path"])
        await receive()
        await send({"type": "websocket.accept"})
        if path.startswith("/flood"):
            payload = os.urandom(CHUNK)
            seen.sent[path] = 0
            try:
                while seen.sent[path] < FLOOD_TOTAL:
                    await send({"type": "websocket.send", "bytes": payload})
                    seen.sent[path] += CHUNK
            except ClientDisconnected:
                pass
            return
        if path == "/two-senders":
            payload = os.urandom(CHUNK)

            async def sender() -> None:
                for _ in range(SENDER_MESSAGES):
                    await send({"type": "websocket.send", "bytes": payload})

            await asyncio.gather(sender(), sender())
            await send({"type": "websocket.close", "code": 1000})
            return
        if path.startswith("/hold"):
            seen.release = release = asyncio.Event()
            await release.wait()
            seen.received[path] = 0
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                seen.disconnects[path] = message["code"]
                return
            if path.startswith("/hold"):
                seen.received[path] += len(message["bytes"])
            elif path == "/scope":
                keys = ("type", "scheme", "path", "root_path", "state")
                reply = json.dumps({key: scope.get(key) for key in keys})
                await send({"type": "websocket.send", "text": reply})
            elif message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})

    return app


@pytest.fixture(scope="module", params=LOOPS)
def ops(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, Seen, Path]]:
    seen = Seen()
    root = tmp_path_factory.mktemp("ws-ops")
    log = root / "access.jsonl"
    with start_server(
        root,
        request.param,
        app=ops_app(seen),
        root_path="/api",
        ws_max_queue=MAX_QUEUE,
        access_log="json",
        access_log_file=str(log),
        metrics_port=0,
    ) as running:
        yield running, seen, log


def drivers(server: RunningServer) -> list[WebSocketDriver]:
    return server.call(
        lambda: [c for c in server.server.state.connections if isinstance(c, WebSocketDriver)]
    )


def driver_for(server: RunningServer, target: bytes) -> WebSocketDriver:
    """The open WebSocket of ``target`` (others' may still be closing)."""
    found = [d for d in drivers(server) if d.request.target == target and d.ended is None]
    assert len(found) == 1, found
    return found[0]


def settled(read: Any, *, quiet: float = 0.3, limit: float = TIMEOUT) -> Any:
    """``read()`` once it has stopped changing for ``quiet`` seconds."""
    value = read()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == value:
            return value
        value = now
    raise AssertionError(f"still changing after {limit} s: {value!r}")


# --- backpressure -------------------------------------------------------------------------


def test_send_waits_for_a_slow_reader(ops: tuple[RunningServer, Seen, Path]) -> None:
    """The app's sends block while the client does not read: what left the app is bounded
    by the kernel's buffers, not by the flood; once the client reads, the app goes on."""
    server, seen, _ = ops
    with RawWebSocket(server.port, "/flood", rcvbuf=CHUNK) as ws:
        assert wait_for(lambda: "/flood" in seen.sent, TIMEOUT)
        stalled = settled(lambda: seen.sent["/flood"])
        assert stalled < KERNEL_SLACK, stalled
        driver = driver_for(server, b"/flood")
        assert server.call(driver.transport.get_write_buffer_size) <= CHUNK + 16  # type: ignore[union-attr]
        got = 0
        while got < stalled + 4 * CHUNK:  # reading lets the app send more
            opcode, payload = ws.read_frame()
            assert opcode == BINARY
            got += len(payload)
        assert seen.sent["/flood"] > stalled
        ws.send_frame(CLOSE, close_payload(1000))


def test_two_tasks_sending_to_one_slow_reader_both_finish(
    ops: tuple[RunningServer, Seen, Path],
) -> None:
    """Two sends waiting for the same drain are both woken when it comes (a waiter that
    only remembers the last would leave the first asleep until --send-timeout)."""
    server, _, _ = ops
    with RawWebSocket(server.port, "/two-senders", rcvbuf=CHUNK) as ws:
        time.sleep(0.5)  # both senders are waiting now
        got = 0
        while True:
            opcode, _ = ws.read_frame()
            if opcode == CLOSE:
                break
            got += 1
        assert got == 2 * SENDER_MESSAGES


def write_until_blocked(
    ws: RawWebSocket, data: bytes, limit: int, blocked: Any
) -> tuple[int, bytes]:
    """Write ``data`` over and over until the socket stays unwritable for a while and
    ``blocked()`` agrees (a server starved of CPU is not a server that stopped reading),
    or ``limit`` bytes went: (whole frames written, the rest of the frame cut short)."""
    sock = ws.sock
    sock.setblocking(False)
    frames = written = 0
    rest = data
    try:
        while written < limit:
            _, writable, _ = select.select([], [sock], [], 0.5)
            if not writable:
                if blocked():
                    return frames, rest
                continue
            try:
                sent = sock.send(rest)
            except BlockingIOError:
                continue
            written += sent
            rest = rest[sent:]
            if not rest:
                frames += 1
                rest = data
        return frames, rest
    finally:
        sock.settimeout(TIMEOUT)


def test_receive_stops_reading_when_the_queue_is_full(
    ops: tuple[RunningServer, Seen, Path],
) -> None:
    """The app does not receive: the server stops reading at --ws-max-queue messages, so
    the client's writes block; every message still arrives once the app reads."""
    server, seen, _ = ops
    message = frame(BINARY, os.urandom(CHUNK))
    with RawWebSocket(server.port, "/hold", sndbuf=CHUNK) as ws:
        assert wait_for(lambda: seen.release is not None, TIMEOUT)
        driver = driver_for(server, b"/hold")
        paused = lambda: server.call(lambda: driver.flow.read_paused)  # noqa: E731
        frames, rest = write_until_blocked(ws, message, FLOOD_TOTAL, paused)
        assert frames * CHUNK < KERNEL_SLACK, frames
        assert paused()
        # one read may bring several messages past the mark, never more
        assert server.call(lambda: len(driver.queue)) <= MAX_QUEUE + 8
        release = seen.release
        assert release is not None
        server.call(release.set)
        ws.sock.sendall(rest)
        ws.send_frame(CLOSE, close_payload(1000))
        assert ws.read_close() == (1000, "")
    assert wait_for(lambda: "/hold" in seen.disconnects, TIMEOUT)
    assert seen.received["/hold"] == (frames + 1) * CHUNK
    seen.release = None


# --- scope, access log, metrics --------------------------------------------------------------


def test_root_path_and_lifespan_state_reach_the_scope(
    ops: tuple[RunningServer, Seen, Path],
) -> None:
    server, _, _ = ops
    with ws_connect(server.port, "/scope?x=1") as ws:
        ws.send("scope?")
        scope = json.loads(ws.recv(TIMEOUT))
    assert scope == {
        "type": "websocket",
        "scheme": "ws",
        "path": "/api/scope",
        "root_path": "/api",
        "state": {"started": "yes"},
    }


def test_one_access_log_line_per_connection_at_its_close(
    ops: tuple[RunningServer, Seen, Path],
) -> None:
    server, _, log = ops
    with RawWebSocket(server.port, "/logged?n=1") as ws:
        ws.send_frame(TEXT, b"x" * 1000)
        assert ws.read_frame() == (TEXT, b"x" * 1000)
        time.sleep(0.3)
        ws.send_frame(CLOSE, close_payload(1000))
        assert ws.read_close() == (1000, "")
        assert ws.at_eof()

    def lines() -> list[dict[str, Any]]:
        text = log.read_text() if log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if "/logged" in line]

    assert wait_for(lambda: lines(), TIMEOUT)
    (line,) = settled(lines)
    assert line["status"] == 101
    assert line["method"] == "GET" and line["path"] == "/logged?n=1"
    assert line["bytes_sent"] == (4 + 1000) + (2 + 2)  # the echo and our close frame
    assert line["duration_ms"] >= 300


def scrape(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def metric_value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in:\n{text}"
    return float(match.group(1))


def scrape_ops(server: RunningServer) -> str:
    port = server.server.metrics_port
    assert port is not None
    return scrape(port)


def metric(server: RunningServer, name: str) -> float:
    return metric_value(scrape_ops(server), name)


def test_metrics_count_open_websockets_and_messages(
    ops: tuple[RunningServer, Seen, Path],
) -> None:
    server, _, _ = ops
    gauge = "zerohttp_websockets"
    incoming = 'zerohttp_websocket_messages_total{direction="in"}'
    outgoing = 'zerohttp_websocket_messages_total{direction="out"}'
    upgrades = 'zerohttp_requests_total{code="101",method="GET"}'
    durations = "zerohttp_request_duration_seconds_count"
    sent = 'zerohttp_response_body_bytes_total{path="websocket"}'
    assert wait_for(lambda: metric(server, gauge) == 0, TIMEOUT)
    before_in, before_out = metric(server, incoming), metric(server, outgoing)
    before_upgrades = metric(server, upgrades) if upgrades in scrape_ops(server) else 0
    before_durations, before_sent = metric(server, durations), metric(server, sent)
    with ws_connect(server.port, "/m1") as one, ws_connect(server.port, "/m2") as two:
        for ws in (one, two, one):
            ws.send("count me")
            assert ws.recv(TIMEOUT) == "count me"
        assert metric(server, gauge) == 2
        assert metric(server, incoming) == before_in + 3
        assert metric(server, outgoing) == before_out + 3
    assert wait_for(lambda: metric(server, gauge) == 0, TIMEOUT)
    assert metric(server, upgrades) == before_upgrades + 2  # counted at their close
    # a WebSocket's lifetime is not a response time: the histogram leaves it out
    assert metric(server, durations) == before_durations
    assert metric(server, sent) > before_sent


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("ws-pki")
    leaf = ca.issue_cert("127.0.0.1")
    paths = {"cert": str(folder / "cert.pem"), "key": str(folder / "key.pem")}
    leaf.cert_chain_pems[0].write_to_path(paths["cert"])
    for blob in leaf.cert_chain_pems[1:]:
        blob.write_to_path(paths["cert"], append=True)
    leaf.private_key_pem.write_to_path(paths["key"])
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    paths["ca"] = str(folder / "ca.pem")
    return paths


@pytest.mark.parametrize("loop", LOOPS)
def test_wss_echo_scope_and_slow_reader(tmp_path: Path, pki: dict[str, str], loop: str) -> None:
    seen = Seen()
    context = ssl.create_default_context(cafile=pki["ca"])
    with start_server(
        tmp_path, loop, app=ops_app(seen), ssl_certfile=pki["cert"], ssl_keyfile=pki["key"]
    ) as server:
        url = f"wss://127.0.0.1:{server.port}"
        big = os.urandom(512 * 1024)
        with _wss(url, context) as ws:
            ws.send(big)
            assert ws.recv(TIMEOUT) == big
            ws.send("x")
            assert ws.recv(TIMEOUT) == "x"
        with _wss(url + "/scope", context) as ws:
            ws.send("scope?")
            assert json.loads(ws.recv(TIMEOUT))["scheme"] == "wss"
        with RawWebSocket(server.port, "/flood", rcvbuf=CHUNK, context=context) as raw:
            assert wait_for(lambda: "/flood" in seen.sent, TIMEOUT)
            stalled = settled(lambda: seen.sent["/flood"])
            assert stalled < KERNEL_SLACK, stalled
            raw.read_frame()


def _wss(url: str, context: ssl.SSLContext) -> ClientConnection:
    return connect(url, ssl=context, proxy=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT)


# --- limits and timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_limit_concurrency_counts_open_websockets(tmp_path: Path, loop: str) -> None:
    with start_server(tmp_path, loop, app=ops_app(Seen()), limit_concurrency=2) as server:
        with ws_connect(server.port, "/a") as one, ws_connect(server.port, "/b") as two:
            for ws in (one, two):
                ws.send("in")
                assert ws.recv(TIMEOUT) == "in"
            # a raw client: the 503 goes out before the request is read, and the websockets
            # client, which reads in a thread of its own, may see it before it has sent its
            # request and then fail with an internal error instead of InvalidStatus
            with RawWebSocket(server.port, "/c") as refused:
                assert refused.status == 503
        assert wait_for(lambda: not drivers(server), TIMEOUT)
        with ws_connect(server.port, "/d") as ws:  # the slots are free again
            ws.send("in")
            assert ws.recv(TIMEOUT) == "in"


@pytest.mark.parametrize("loop", LOOPS)
def test_handshake_head_timeout_keepalive_pings_and_a_silent_client(
    tmp_path: Path, loop: str
) -> None:
    """--header-timeout bounds the handshake's head; once open, a WebSocket outlives
    --keepalive-timeout while pings are answered, and a client that never answers one is
    closed with 1011 after --ws-ping-interval + --ws-ping-timeout. A client whose pong
    we do not read, because its app is slow and its queue full, is not taken for dead."""
    interval, timeout = 0.5, 1.0
    seen = Seen()
    with start_server(
        tmp_path,
        loop,
        app=ops_app(seen),
        header_timeout=1.0,
        keepalive_timeout=1.0,
        ws_ping_interval=interval,
        ws_ping_timeout=timeout,
        ws_max_queue=MAX_QUEUE,
    ) as server:
        half = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        with ws_connect(server.port, "/alive") as alive, ws_connect(server.port, "/hold") as held:
            for _ in range(3 * MAX_QUEUE):
                held.send(b"queued")
            silent = RawWebSocket(server.port, "/silent")
            started = time.monotonic()
            pings = 0
            with silent:
                while True:
                    opcode, payload = silent.read_frame()
                    if opcode == PING:
                        pings += 1
                        assert pings < 5, "no 1011: pings go on for ever"
                        continue
                    assert opcode == CLOSE
                    break
                waited = time.monotonic() - started
                assert payload[:2] == (1011).to_bytes(2, "big")
                assert silent.at_eof()
            assert pings == 1
            assert interval + timeout - 0.3 <= waited <= interval + timeout + 4, waited
            assert half.recv(100) == b""  # closed within the head timeout meanwhile
            time.sleep(max(0.0, 2.5 - (time.monotonic() - started)))  # past keepalive
            alive.send("still here")
            assert alive.recv(TIMEOUT) == "still here"
            assert seen.release is not None
            server.call(seen.release.set)
            assert wait_for(lambda: seen.received.get("/hold") == 3 * MAX_QUEUE * 6, TIMEOUT)
            held.close()
            assert held.close_code == 1000
        half.close()


# --- processes: shutdown and workers -------------------------------------------------------------

PROCESS_APP = """
import asyncio, json, os

async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await asyncio.sleep(0.3)  # cleaning up takes a while: shutdown waits for it
            with open(os.environ["WS_RECORD"], "a") as out:
                out.write(json.dumps([scope["path"], message["code"]]) + "\\n")
            return
        await send({"type": "websocket.send", "text": json.dumps([os.getpid(), message["text"]])})
"""


@pytest.fixture()
def process_app(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ws_process_app.py").write_text(PROCESS_APP)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "WS_RECORD": str(tmp_path / "record.jsonl"),
    }


def recorded(env: dict[str, str]) -> list[list[Any]]:
    path = Path(env["WS_RECORD"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start(env: dict[str, str], *args: str) -> Zerohttp:
    argv = [
        "--app",
        "ws_process_app:app",
        "--port",
        "0",
        "--lifespan",
        "off",
        "--ws-ping-interval",
        "0",
        *args,
    ]
    return Zerohttp(argv, env=env, cwd=REPO)


@pytest.mark.parametrize("loop", LOOPS)
def test_sigterm_closes_websockets_with_1001_and_cuts_a_silent_client_at_the_grace(
    process_app: dict[str, str], loop: str
) -> None:
    grace = 2.0
    server = start(process_app, "--loop", loop, "--timeout-graceful-shutdown", str(grace))
    with contextlib.ExitStack() as stack:
        stack.callback(server.kill)
        polite = stack.enter_context(ws_connect(server.port, "/polite"))
        polite.send("hi")
        polite.recv(TIMEOUT)
        silent = stack.enter_context(RawWebSocket(server.port, "/silent"))
        silent.send_frame(TEXT, b"hi")
        silent.read_frame()
        stopped = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            polite.recv(TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert time.monotonic() - stopped < grace  # at once, not at the grace
        assert silent.read_close()[0] == 1001
        silent.at_eof()  # EOF or reset: cut when the grace ends
        cut = time.monotonic() - stopped
        assert grace - 0.5 <= cut <= grace + 5, cut
        assert server.proc.wait(TIMEOUT) == 0
        assert sorted(recorded(process_app)) == [["/polite", 1001], ["/silent", 1001]]


@pytest.mark.parametrize("loop", LOOPS)
def test_a_second_signal_ends_the_wait_at_once(process_app: dict[str, str], loop: str) -> None:
    server = start(process_app, "--loop", loop, "--timeout-graceful-shutdown", "60")
    try:
        with RawWebSocket(server.port, "/silent") as silent:
            server.proc.send_signal(signal.SIGTERM)
            assert silent.read_close()[0] == 1001
            again = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            server.proc.wait(TIMEOUT)
            assert time.monotonic() - again < 5
    finally:
        server.kill()


def test_two_workers_serve_websockets_count_them_and_close_them_on_sigterm(
    process_app: dict[str, str],
) -> None:
    metrics_port = free_port()
    args = ["--app", "ws_process_app:app", "--port", "0", "--lifespan", "off", "--workers", "2"]
    with zerohttp(
        [*args, "--metrics-port", str(metrics_port)], env=process_app, cwd=REPO
    ) as server:
        stack = contextlib.ExitStack()
        clients = [stack.enter_context(ws_connect(server.port, f"/w{i}")) for i in range(6)]
        pids = set()
        for i, ws in enumerate(clients):
            ws.send(str(i))
            pid, text = json.loads(ws.recv(TIMEOUT))
            assert text == str(i)
            pids.add(pid)
        assert server.proc.pid not in pids

        def scraped() -> tuple[float, float]:
            text = scrape(metrics_port)
            return metric_value(text, "zerohttp_websockets"), metric_value(
                text, 'zerohttp_websocket_messages_total{direction="in"}'
            )

        assert wait_for(lambda: scraped() == (6, 6), TIMEOUT), scraped()
        server.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(TIMEOUT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        stack.close()
        assert server.proc.wait(TIMEOUT) == 0
    assert sorted(code for _, code in recorded(process_app)) == [1001] * 6
