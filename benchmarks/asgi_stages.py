"""What each stage of a zerohttp --app request costs, in process, on a real uvloop transport.

    PYTHONPATH=. python3 benchmarks/asgi_stages.py [--app raw|json|small] [--n 20000]

A connected loopback TCP pair: the server side is a real uvloop transport whose protocol is
zerohttp's HTTPConnection over an ASGIHost; the client side is read and dropped. Timed, each
in µs per call (median of 5 batches of --n; a batch of responses must fit the socket buffers):

- ``request``: a whole request, from ``data_received`` of a simple GET until the app's task
  has finished and its response is written (uvloop runs its callbacks; this is the host's
  cost plus the app's, without the kernel's receive path and the read event)
- the stages, each on its own over a prepared exchange: ``scope`` (``ASGIHost.scope``),
  ``receive`` (the bodiless request's ``http.request``), ``send start``
  (``http.response.start``: header checks and head rendering), ``send body`` (the
  ``http.response.body`` that writes head+body and completes the exchange), ``render head``
  (``render_app_head`` alone), ``task`` (create a Task for a coroutine that returns at once
  and run it to completion), ``pathsend`` (``http.response.pathsend`` of the 1 KiB file)

The stages overlap ``request`` (they are parts of it); what ``request`` has beyond their sum
is the connection's glue (request checks, dispatch, next cycle) and the loop's turns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from zerohttp.asgi.host import ASGIHost
from zerohttp.config import Config
from zerohttp.http.connection import HTTPConnection, ServerState
from zerohttp.http.exchange import Exchange
from zerohttp.http.http11 import app_response_framing, render_app_head
from zerohttp.message.response import RequestHead

REQUEST = b"GET /json HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: wrk\r\n\r\n"
JSON_BYTES = b'{"message":"Hello, World!","id":42,"ok":true,"tags":["a","b"]}'
HEADERS = [(b"content-length", b"62"), (b"content-type", b"application/json")]


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": JSON_BYTES})


def per_call(fn: Callable[[], Any], n: int, between: Callable[[], Any] = lambda: None) -> float:
    runs = []
    for _ in range(5):
        between()  # outside the timing: the client reads what the batch wrote
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


async def aper_call(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            await fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


def run_sync(coro: Any) -> Any:
    """Drive a coroutine that never suspends."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("suspended")


async def main(args: argparse.Namespace) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    app: Any = raw_app
    if args.app != "raw":
        import bench_app

        app = bench_app.app
    host = ASGIHost(app)
    config = Config(root=".", app="x:y")
    state = ServerState(config, host, zero_copy=True)  # type: ignore[arg-type]
    lsock = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(lsock.getsockname())
    server_sock, _ = lsock.accept()
    client.setblocking(False)
    for sock in (client, server_sock):  # a batch of responses fits without a read between
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    _, conn = await loop.connect_accepted_socket(lambda: HTTPConnection(state), server_sock)
    assert isinstance(conn, HTTPConnection)
    path = b"/json" if args.app != "small" else b"/small"
    request = REQUEST.replace(b"/json", path)

    def drop() -> None:
        try:
            while client.recv(1 << 20):
                pass
        except BlockingIOError:
            pass

    loop.add_reader(client.fileno(), drop)
    out: dict[str, float] = {}

    # whole requests: feed one, wait until the connection is ready for the next
    async def one() -> None:
        conn.data_received(request)
        while conn.busy:
            await asyncio.sleep(0)

    for _ in range(2000):
        await one()
    out["request"] = await aper_call(one, args.n)

    head = RequestHead(
        b"GET", path, b"1.1", [(b"host", b"localhost:8000"), (b"user-agent", b"wrk")]
    )

    def fresh() -> Exchange:
        return Exchange(conn, head, body_pending=False, keep_alive=True)

    ex = fresh()
    out["scope"] = per_call(lambda: host.scope(ex), args.n)

    def receive_once() -> None:
        run_sync(fresh().receive_body())

    out["receive (incl. a fresh Exchange)"] = per_call(receive_once, args.n)
    out["fresh Exchange"] = per_call(fresh, args.n)
    start = {"type": "http.response.start", "status": 200, "headers": HEADERS}
    body = {"type": "http.response.body", "body": JSON_BYTES}
    exchanges = [fresh() for _ in range(args.n * 5)]
    it = iter(exchanges)
    out["send start"] = per_call(lambda: run_sync(host._send(next(it), start)), args.n)
    # the body completes the exchange: it must be the connection's current one
    it = iter(exchanges)

    def send_body() -> None:
        ex = next(it)
        conn.exchange = ex
        conn.busy = True
        run_sync(host._send(ex, body))

    out["send body (+ exchange_done)"] = per_call(send_body, args.n, drop)
    framing = app_response_framing(b"GET", b"1.1", 200, HEADERS, keep_alive=True)
    out["render head"] = per_call(
        lambda: render_app_head(200, HEADERS, conn.date_line(), framing, http10=False), args.n
    )
    out["framing"] = per_call(
        lambda: app_response_framing(b"GET", b"1.1", 200, HEADERS, keep_alive=True), args.n
    )

    async def noop() -> None:
        return None

    async def task_cycle() -> None:
        task = loop.create_task(noop())
        await task

    out["task create+run"] = await aper_call(task_cycle, args.n)
    small = Path(os.environ.get("ASGI_BENCH_ROOT", "/tmp/asgi-bench-root")) / "small.html"
    if small.is_file():
        sheaders = [(b"content-length", str(small.stat().st_size).encode())]
        pathsend = {"type": "http.response.pathsend", "path": str(small)}
        sstart = {"type": "http.response.start", "status": 200, "headers": sheaders}

        async def pathsend_cycle() -> None:
            ex = fresh()
            conn.exchange = ex
            conn.busy = True
            await host._send(ex, sstart)
            await host._send(ex, pathsend)

        out["start + pathsend 1 KiB (+ exchange_done)"] = await aper_call(pathsend_cycle, args.n)
    loop.remove_reader(client.fileno())
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--app", choices=["raw", "json", "small"], default="raw")
    ap.add_argument("--n", type=int, default=10000)
    args = ap.parse_args()
    os.sched_setaffinity(0, {0})
    res = uvloop.run(main(args))
    print(f"| stage ({args.app}) | µs |\n|---|---:|")
    for k, v in res.items():
        print(f"| {k} | {v:.2f} |")
