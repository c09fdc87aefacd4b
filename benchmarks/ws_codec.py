"""The micro-measurement behind zerohttp's WebSocket codec: one 1 KiB masked text frame in,
its message out as one unmasked frame, through each sans-IO library, no sockets.

    flock -x /tmp/zh-bench.lock python benchmarks/ws_codec.py [--n 20000] [--repeat 9]

- ``websockets Protocol``: websockets' sans-IO ``ServerProtocol`` (state OPEN):
  ``receive_data`` + ``events_received`` + ``send_text`` + ``data_to_send`` (uvicorn's
  default does this per message);
- ``zerohttp ServerCodec``: the same protocol as zerohttp completes it (message reassembly,
  UTF-8 checked in the parser): ``feed`` + ``send_message`` + ``data_to_send``;
- ``wsproto WSConnection``: after a real handshake, ``receive_data`` + ``events`` +
  ``send(Message)`` (hypercorn's path, and uvicorn's ``--ws wsproto``);
- ``-deflate`` rows: the same with permessage-deflate negotiated (each library's default
  parameters; the frame fed in is compressed without context takeover, so that it can be fed
  again; the server's side keeps its context, so its output is a few bytes after the first).

The frame is made once by websockets' client side (masked, as a browser's) and fed again
every time; every output is checked against the expected frame before timing. Pinned to
CPU 0; per-iteration microseconds, median and best of --repeat runs of --n iterations.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # zerohttp from this tree

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.uri import parse_uri
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request, TextMessage

from zerohttp.websocket.codec import ServerCodec

TEXT = ("the quick brown fox jumps over the lazy dog; " * 30)[:1024]
Step = Callable[[], bytes]


def masked_frame(deflate: bool) -> tuple[bytes, list[object]]:
    """A client's masked frame carrying TEXT, and the client extensions it was made with."""
    client = ClientProtocol(parse_uri("ws://x/"), state=OPEN)
    if deflate:  # no context takeover on the client's side: the same frame can be fed again
        client.extensions = [PerMessageDeflate(False, True, 12, 12)]
    client.send_text(TEXT.encode())
    return b"".join(client.data_to_send()), client.extensions


def server_extensions(deflate: bool) -> list[object]:
    if not deflate:
        return []
    factory = ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
    )
    _, ext = factory.process_request_params([("client_max_window_bits", None)], [])
    return [ext]


def websockets_step(deflate: bool) -> Step:
    frame, _ = masked_frame(deflate)
    server = ServerProtocol(state=OPEN)
    server.extensions = server_extensions(deflate)  # type: ignore[assignment]

    def step() -> bytes:
        server.receive_data(frame)
        (event,) = server.events_received()
        server.send_text(event.data)
        return b"".join(server.data_to_send())

    return step


def zerohttp_step(deflate: bool) -> Step:
    frame, _ = masked_frame(deflate)
    codec = ServerCodec(max_size=16 * 1024 * 1024, extensions=server_extensions(deflate))  # type: ignore[arg-type]

    def step() -> bytes:
        (message,) = codec.feed(frame)
        codec.send_message(message)
        return b"".join(codec.data_to_send())

    return step


def wsproto_step(deflate: bool) -> Step:
    frame, _ = masked_frame(deflate)
    server = WSConnection(ConnectionType.SERVER)
    extensions = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    server.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + (extensions if deflate else b"")
        + b"\r\n"
    )
    (request,) = server.events()
    assert isinstance(request, Request)
    if deflate:
        from wsproto.extensions import PerMessageDeflate

        server.send(AcceptConnection(extensions=[PerMessageDeflate()]))
    else:
        server.send(AcceptConnection())

    def step() -> bytes:
        server.receive_data(frame)
        (event,) = server.events()
        assert isinstance(event, TextMessage)
        return server.send(Message(data=event.data))

    return step


def expected_plain() -> bytes:
    return Frame(Opcode.TEXT, TEXT.encode()).serialize(mask=False)


def measure(step: Step, n: int, repeat: int) -> list[float]:
    for _ in range(1000):
        step()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--cpu", type=int, default=0)
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    import importlib.metadata as md

    rows = []
    for deflate in (False, True):
        for name, make in (("websockets Protocol", websockets_step),
                           ("zerohttp ServerCodec", zerohttp_step),
                           ("wsproto WSConnection", wsproto_step)):  # fmt: skip
            step = make(deflate)
            out = step()
            if not deflate and out != expected_plain():
                sys.exit(f"ws_codec: {name} framed {out[:16]!r}..., not the expected frame")
            if deflate and not out[0] & 0x40:
                sys.exit(f"ws_codec: {name} did not compress (RSV1 clear)")
            rows.append(
                (name + (" -deflate" if deflate else ""), measure(step, args.n, args.repeat))
            )
    versions = ", ".join(f"{p} {md.version(p)}" for p in ("websockets", "wsproto"))
    print(f"```\npython benchmarks/ws_codec.py --n {args.n} --repeat {args.repeat}\n```\n")
    print(f"Python {sys.version.split()[0]}, {versions}, pinned to CPU {args.cpu}\n")
    base = statistics.median(rows[0][1])
    print("| codec (1 KiB text frame in, one out) | µs median | best | / websockets |")
    print("|---|---:|---:|---:|")
    for name, runs in rows:
        med = statistics.median(runs)
        print(f"| {name} | {med:.2f} | {min(runs):.2f} | {med / base:.1f}x |")


if __name__ == "__main__":
    main()
