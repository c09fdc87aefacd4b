"""Where the µs of one small keep-alive GET go: each stage of zerohttp's hot path timed on
its own, in-process (no event loop, no TCP), for a 1 KiB file already in the open-file cache.

Run pinned to one core: ``taskset -c 0 python benchmarks/profile_request.py``. Stages are
measured separately, so their sum is close to but not exactly the full path.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
import timeit
from collections.abc import Callable
from typing import Any

import h11

from zerohttp.body.zerocopy import FileTransfer
from zerohttp.config import Config
from zerohttp.http.connection import HTTPConnection, ServerState
from zerohttp.http.http11 import render_head
from zerohttp.http.reader import head_of_h11, header_pairs
from zerohttp.http.simple_head import read_simple_head
from zerohttp.message.dates import DateHeader
from zerohttp.message.response import ByteRange, RequestHead
from zerohttp.static.handler import StaticHandler

REQUEST = b"GET /small.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
N = 20000


def per_call(func: Callable[[], Any]) -> float:
    return min(timeit.repeat(func, number=N, repeat=3)) / N * 1e6


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def set_write_buffer_limits(self, high: int = 0, low: int = 0) -> None: ...
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


def small_file_setup() -> tuple[Config, str, socket.socket, Callable[[], None]]:
    """A root with one cached-looking 1 KiB file, its config, and a socketpair: the
    sending end for the connection and a drain for what it sent."""
    root = tempfile.mkdtemp()
    path = os.path.join(root, "small.html")
    with open(path, "wb") as f:
        f.write(os.urandom(1024))
    past = time.time() - 60
    os.utime(path, (past, past))
    sender, receiver = socket.socketpair()
    sender.setblocking(False)
    receiver.setblocking(False)

    def drain() -> None:
        try:
            while receiver.recv(65536):
                pass
        except BlockingIOError:
            pass

    return Config(root=root), path, sender, drain


def main() -> None:
    config, path, sender, drain = small_file_setup()
    app = StaticHandler(config)

    def parse() -> h11.Request:
        parser = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
        parser.receive_data(REQUEST)
        return parser.next_event()  # type: ignore[return-value]

    event = parse()
    head = RequestHead(event.method, event.target, event.http_version, header_pairs(event))

    def checks() -> None:
        head_of_h11(event, 16384)

    def handle() -> None:
        app.handle(head).release()

    response = app.handle(head)
    response.release()
    date = DateHeader()
    rendered = render_head(response, date.line(), keep_alive=True, http10=False)
    fd = os.open(path, os.O_RDONLY)

    def send() -> None:
        FileTransfer(sender, fd, [rendered, ByteRange(0, 1023)]).pump()
        drain()

    def stat() -> None:
        os.stat(path)

    def full_path() -> float:
        async def run() -> float:
            state = ServerState(config, app, zero_copy=True)
            connection = HTTPConnection(state)
            connection.connection_made(_Transport(sender))  # type: ignore[arg-type]

            def one() -> None:
                connection.data_received(REQUEST)
                drain()

            return per_call(one)

        return asyncio.run(run())

    stages = [
        (
            "simple reader: read_simple_head -> RequestHead (the path taken)",
            per_call(lambda: read_simple_head(REQUEST, 16384)),
        ),
        ("h11 instead (heads outside the simple shape): new parser -> Request", per_call(parse)),
        ("h11 heads only: header pairs + one pass for size, framing, keep-alive (reader.head_of_h11)", per_call(checks)),
        ("StaticHandler.handle, cache hit (of which os.stat below)", per_call(handle)),
        ("  os.stat revalidation", per_call(stat)),
        (
            "render status line + Date + fields",
            per_call(lambda: render_head(response, date.line(), keep_alive=True, http10=False)),
        ),
        ("send(head, MSG_MORE) + sendfile 1 KiB (+ reader drain)", per_call(send)),
    ]
    total = full_path()
    print("## Profile: one small GET (1 KiB, cached), µs per stage\n")
    print(
        f"`taskset -c 0 python benchmarks/profile_request.py`, {N} iterations, best of 3, "
        "in-process over an AF_UNIX socketpair (no event loop, no TCP).\n"
    )
    print("| stage | µs |")
    print("|---|---:|")
    for label, micros in stages:
        print(f"| {label} | {micros:.1f} |")
    print(
        f"| **whole `data_received` path (parse → response sent → next cycle)** | **{total:.1f}** |"
    )
    os.close(fd)


if __name__ == "__main__":
    main()
