"""What each stage of one echoed WebSocket message costs zerohttp, in process, no sockets.

    flock -x /tmp/zh-bench.lock python3 benchmarks/ws_stages.py [--n 20000] [--cpu 0]

The driver (``websocket/driver.py``) over a transport that counts writes, the ASGI session
(``asgi/websocket.py``) and the echo app of benchmarks/apps/ws_app.py, on uvloop. Per
message, µs (median of 7 batches of --n):

- ``codec feed``: ``ServerCodec.feed`` of a 1 KiB masked text frame (websockets' parser,
  C unmasking, UTF-8 decode);
- ``codec send``: ``send_message`` + ``data_to_send`` of the 1 KiB str (encode, framing);
- ``data_received``: the driver's whole ``data_received`` (feed, queue, stats, flush, wake),
  the queue emptied in between;
- ``session receive``: ``await session.receive()`` with a message queued (driver.receive,
  the ``websocket.receive`` dict), no suspension;
- ``session send``: ``await session.send({"type": "websocket.send", ...})`` (dispatch,
  driver.send, codec send, flush into the counting transport);
- ``echo cycle``: ``data_received`` of a frame, then the echo app's task wakes, receives and
  sends, and the transport is written: a whole message through zerohttp but the kernel's
  read and write (measured with a second task waiting on the write, so it includes one
  extra task switch: ``task switch`` below is that cost);
- ``prototype feed`` / ``prototype send``: NOT zerohttp code: what a fast path for the
  common frame could cost (one complete, unfragmented, masked text frame, no extension:
  header read by hand, ``websockets.speedups.apply_mask``, ``bytes.decode``; and the
  unmasked frame built as header + payload), for the planners to weigh against the two
  ``codec`` rows, which run websockets' generator parser and ``Frame.serialize``;
- ``task switch``: two tasks taking turns, one step each (what the echo cycle has besides
  zerohttp's work); half of it is the floor of waking the app's task once per message.

The sum of the first two plus dict and dispatch work is the codec share; ``echo cycle``
minus ``task switch`` is zerohttp's Python cost per echo; the server's measured CPU per
echo (ws_bench.py) minus that is the kernel's and uvloop's share (two syscalls, epoll).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # zerohttp from this tree
sys.path.insert(0, str(HERE / "apps"))

from websockets.client import ClientProtocol  # noqa: E402
from websockets.protocol import OPEN  # noqa: E402
from websockets.speedups import apply_mask  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402
from ws_app import echo  # noqa: E402

from zerohttp.asgi.websocket import WebSocketSession  # noqa: E402
from zerohttp.message.response import RequestHead  # noqa: E402
from zerohttp.websocket.codec import ServerCodec  # noqa: E402
from zerohttp.websocket.driver import WebSocketDriver, WebSocketSettings  # noqa: E402

TEXT = ("the quick brown fox jumps over the lazy dog; " * 30)[:1024]


def client_frame() -> bytes:
    client = ClientProtocol(parse_uri("ws://x/"), state=OPEN)
    client.send_text(TEXT.encode())
    return b"".join(client.data_to_send())


FRAME = client_frame()


def prototype_feed(data: bytes) -> str | None:
    """One complete masked FIN text frame without extension; None: not that shape."""
    if len(data) < 6 or data[0] != 0x81 or not data[1] & 0x80:
        return None
    size, start = data[1] & 0x7F, 6
    if size == 126:
        size, start = int.from_bytes(data[2:4], "big"), 8
    elif size == 127:
        return None
    if len(data) != start + size:
        return None
    return apply_mask(data[start:], data[start - 4 : start]).decode()


def prototype_send(text: str) -> bytes:
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class CountingTransport(asyncio.Transport):
    """Takes writes and counts them; resolves ``waiter`` on each write if one is set."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.waiter: asyncio.Future[None] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def make_driver(loop: asyncio.AbstractEventLoop) -> tuple[WebSocketDriver, CountingTransport]:
    state: Any = SimpleNamespace(
        loop=loop, log=SimpleNamespace(active=False), connections=set(), stats=None
    )
    settings = WebSocketSettings(ping_interval=0)
    codec = ServerCodec(max_size=settings.max_size)
    request: Any = RequestHead.__new__(RequestHead)  # only the access log reads it
    driver = WebSocketDriver(state, settings, codec, request)
    transport = CountingTransport()
    driver.connection_made(transport)
    return driver, transport


def make_session(driver: WebSocketDriver) -> WebSocketSession:
    host: Any = SimpleNamespace(app=None)
    session = WebSocketSession(host, offer=None, settings=driver.settings)  # type: ignore[arg-type]
    session.driver = driver
    session.connected = True
    return session


def batches(run: Callable[[int], float], n: int, repeat: int = 7) -> float:
    run(max(1, n // 10))  # warm up
    return statistics.median(run(n) / n * 1e6 for _ in range(repeat))


def timed(fn: Callable[[], Any]) -> Callable[[int], float]:
    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - t0

    return run


def timed_async(loop: asyncio.AbstractEventLoop, body: Callable[[int], Awaitable[None]]):  # type: ignore[no-untyped-def]
    def run(n: int) -> float:
        t0 = time.perf_counter()
        loop.run_until_complete(body(n))
        return time.perf_counter() - t0

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--cpu", type=int, default=0)
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    n = args.n
    rows: list[tuple[str, float]] = []

    codec = ServerCodec(max_size=16 * 1024 * 1024)
    rows.append(("codec feed", batches(timed(lambda: codec.feed(FRAME)), n)))

    def codec_send() -> None:
        codec.send_message(TEXT)
        codec.data_to_send()

    rows.append(("codec send", batches(timed(codec_send), n)))
    assert prototype_feed(FRAME) == TEXT and prototype_send(TEXT) == b"".join(
        (codec.send_message(TEXT), codec.data_to_send())[1]
    )
    rows.append(("prototype feed", batches(timed(lambda: prototype_feed(FRAME)), n)))
    rows.append(("prototype send", batches(timed(lambda: prototype_send(TEXT)), n)))

    driver, _transport = make_driver(loop)

    def data_received() -> None:
        driver.data_received(FRAME)
        driver.queue.clear()

    rows.append(("data_received", batches(timed(data_received), n)))

    session = make_session(driver)

    async def receive_loop(count: int) -> None:
        queue, receive = driver.queue, session.receive
        for _ in range(count):
            queue.append(TEXT)
            await receive()

    rows.append(("session receive", batches(timed_async(loop, receive_loop), n)))

    message = {"type": "websocket.send", "text": TEXT}

    async def send_loop(count: int) -> None:
        send = session.send
        for _ in range(count):
            await send(message)

    rows.append(("session send", batches(timed_async(loop, send_loop), n)))

    driver2, transport2 = make_driver(loop)
    session2 = make_session(driver2)
    app = loop.create_task(echo({}, session2.receive, session2.send))  # type: ignore[arg-type]

    async def echo_cycle(count: int) -> None:
        for _ in range(count):
            waiter = transport2.waiter = loop.create_future()
            driver2.data_received(FRAME)
            await waiter

    before = transport2.writes
    rows.append(("echo cycle", batches(timed_async(loop, echo_cycle), n)))
    assert transport2.writes > before, "the echo app wrote nothing"

    async def switch(count: int) -> None:
        box: list[asyncio.Future[None]] = []

        async def other() -> None:
            for _ in range(count):
                fut = loop.create_future()
                box.append(fut)
                await fut

        task = loop.create_task(other())
        for _ in range(count):
            await asyncio.sleep(0)
            box.pop().set_result(None)
        await task

    rows.append(("task switch (floor)", batches(timed_async(loop, switch), n)))
    app.cancel()

    print(f"```\npython3 benchmarks/ws_stages.py --n {n} --cpu {args.cpu}\n```\n")
    print("| stage (one 1 KiB text message) | µs |")
    print("|---|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} |")
    # the cycle has two task steps (the app's and the timing task's); the server needs one
    cycle = dict(rows)["echo cycle"] - dict(rows)["task switch (floor)"] / 2
    print(
        f"\nzerohttp's Python per echo, one task wake included (echo cycle - half the "
        f"task switch): {cycle:.2f} µs"
    )


if __name__ == "__main__":
    main()
