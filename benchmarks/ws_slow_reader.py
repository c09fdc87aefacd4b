"""Server RSS while 1 GiB crosses one WebSocket to a slow side (target: flat within 5 MiB).

WebSocket backpressure, measured (issue 19): a server must never buffer what its peer is
not taking yet. Two directions, each 1 GiB in 64 KiB binary messages over one connection:

- ``send``: the application sends as fast as ``send`` lets it; the client reads at a
  limited rate (RATE MiB/s, with a 1 s stall every 256 MiB). ``send`` must wait for the
  transport's drain, so the server holds about one message, whatever the client does.
- ``receive``: the client writes as fast as the socket lets it; the application receives
  at RATE MiB/s. Reading must stop at --ws-max-queue messages (32 x 64 KiB = 2 MiB).

The server runs pinned to CPU 0 (``taskset -c 0``), the client is this process pinned to
CPU 1. VmRSS is sampled from /proc/PID/status every 0.25 s from the moment the connection
is open (the baseline: after the handshake, before the first byte of the gigabyte) to its
end; VmHWM at the end catches peaks between samples. Servers: zerohttp on uvloop and on
asyncio, and uvicorn (its default WebSocket, websockets' sans-IO) as the peer, interleaved
per round. This file is also the application (``ws_slow_reader:app``).

    flock -x /tmp/zh-bench.lock python3 benchmarks/ws_slow_reader.py --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from serverproc import HOST, free_port, proc_status, start_server, stop_server  # noqa: E402

TOTAL = 1024**3
CHUNK = 64 * 1024
RATE = 128  # MiB/s: the slow side's pace
STALL_EVERY = 256 * 1024**2  # the slow reader stops for STALL_SECONDS this often
STALL_SECONDS = 1.0
SAMPLE_EVERY = 0.25
TARGET_MIB = 5.0


# --- the application ------------------------------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    if scope["path"] == "/send":
        payload = os.urandom(CHUNK)
        for _ in range(TOTAL // CHUNK):
            await send({"type": "websocket.send", "bytes": payload})
        await send({"type": "websocket.close", "code": 1000})
        return
    got, started = 0, time.monotonic()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        got += len(message.get("bytes") or b"")
        ahead = started + got / (RATE * 1024**2) - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
        if got >= TOTAL:
            await send({"type": "websocket.send", "text": str(got)})


# --- the client ---------------------------------------------------------------------------


def handshake(port: int, path: str) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=60)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing past the head is taken
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_slowly(sock: socket.socket) -> int:
    """Payload bytes received up to the server's close frame, at RATE MiB/s with stalls."""
    payload = 0
    remaining = 0  # payload bytes left in the current frame
    header = bytearray()
    started = time.monotonic()
    stalled = 0.0
    buffer = bytearray(CHUNK)
    while True:
        count = sock.recv_into(buffer)
        if not count:
            raise RuntimeError(f"closed after {payload} bytes")
        view = memoryview(buffer)[:count]
        pos = 0
        while pos < count:
            if remaining:
                take = min(remaining, count - pos)
                remaining -= take
                payload += take
                pos += take
                continue
            header += view[pos : pos + 1]
            pos += 1
            opcode, size = parse_header(header)
            if size < 0:
                continue  # the header is still coming
            header.clear()
            if opcode == 0x8:
                sock.sendall(frame(0x8, struct.pack("!H", 1000)))
                return payload
            remaining = size
        if payload // STALL_EVERY > (payload - count) // STALL_EVERY:
            time.sleep(STALL_SECONDS)
            stalled += STALL_SECONDS
        ahead = started + stalled + payload / (RATE * 1024**2) - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def parse_header(header: bytearray) -> tuple[int, int]:
    """(opcode, payload length) of a server frame's header, or (0, -1) while incomplete."""
    if len(header) < 2:
        return 0, -1
    length = header[1] & 0x7F
    need = 2 + (2 if length == 126 else 8 if length == 127 else 0)
    if len(header) < need:
        return 0, -1
    if length == 126:
        length = struct.unpack("!H", header[2:4])[0]
    elif length == 127:
        length = struct.unpack("!Q", header[2:10])[0]
    return header[0] & 0x0F, length


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (the mask is zeros: the payload goes as it is)."""
    length = len(payload)
    if length < 126:
        head = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", length)
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", length)
    return head + b"\0\0\0\0" + payload


def write_fast(sock: socket.socket) -> int:
    message = frame(0x2, os.urandom(CHUNK))
    for _ in range(TOTAL // CHUNK):
        sock.sendall(message)
    answer = sock.recv(64)  # the app's count, as a text frame
    sock.sendall(frame(0x8, struct.pack("!H", 1000)))
    return int(answer[2:].decode())


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    direction: str
    baseline: float = 0.0  # MiB, once the connection is open
    samples: list[float] = field(default_factory=list)
    hwm: float = 0.0
    seconds: float = 0.0
    moved: int = 0
    error: str = ""

    @property
    def growth(self) -> float:
        return max(self.samples, default=self.baseline) - self.baseline

    @property
    def hwm_growth(self) -> float:
        return self.hwm - self.baseline


SERVERS = {
    "zerohttp uvloop": ["-m", "zerohttp", "--app", "ws_slow_reader:app", "--lifespan", "off",
                        "--loop", "uvloop", "--log-level", "warning", "--ws-ping-interval", "0"],
    "zerohttp asyncio": ["-m", "zerohttp", "--app", "ws_slow_reader:app", "--lifespan", "off",
                         "--loop", "asyncio", "--log-level", "warning", "--ws-ping-interval", "0"],
    "uvicorn": ["-m", "uvicorn", "ws_slow_reader:app", "--lifespan", "off",
                "--log-level", "warning", "--ws-ping-interval", "0"],
}  # fmt: skip


def measure(python: str, server: str, direction: str) -> Result:
    port = free_port()
    cmd = ["taskset", "-c", "0", python, *SERVERS[server], "--host", HOST, "--port", str(port)]
    result = Result(server, direction)
    proc = start_server(cmd, port, subprocess.DEVNULL)
    try:
        sock = handshake(port, f"/{direction}")
        time.sleep(0.5)
        result.baseline = proc_status(proc.pid)["VmRSS"] / 1024
        done: list[int] = []
        started = time.monotonic()
        client = read_slowly if direction == "send" else write_fast

        def run() -> None:
            try:
                done.append(client(sock))
            except Exception as exc:  # reported, not raised: the table says what failed
                result.error = repr(exc)
                done.append(-1)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        while not done:
            result.samples.append(proc_status(proc.pid)["VmRSS"] / 1024)
            thread.join(SAMPLE_EVERY)
        result.seconds = time.monotonic() - started
        result.moved = done[0]
        result.hwm = proc_status(proc.pid)["VmHWM"] / 1024
        sock.close()
    finally:
        stop_server(proc)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", nargs="*", default=list(SERVERS))
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    # the servers import this file as the application, and zerohttp from this tree
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent)])
    results: list[Result] = []
    for round_ in range(args.rounds):
        for direction in ("send", "receive"):
            for server in args.servers:
                result = measure(args.python, server, direction)
                results.append(result)
                print(
                    f"round {round_ + 1} {server:17} {direction:7} "
                    f"baseline {result.baseline:6.1f} MiB  max-baseline {result.growth:5.1f} MiB  "
                    f"VmHWM-baseline {result.hwm_growth:5.1f} MiB  "
                    f"{result.moved / 1024**3:.3f} GiB in {result.seconds:5.1f} s {result.error}",
                    flush=True,
                )
    print()
    print(
        "| server | direction | rounds | RSS at open (MiB) | max RSS - open (MiB) | "
        "VmHWM - open (MiB) | GiB moved | seconds | flat (<= 5 MiB) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for direction in ("send", "receive"):
        for server in args.servers:
            mine = [r for r in results if r.server == server and r.direction == direction]
            ok = [r for r in mine if not r.error and r.moved == TOTAL]
            growth = statistics.median(r.growth for r in mine)
            hwm = statistics.median(r.hwm_growth for r in mine)
            flat = "pass" if max(r.hwm_growth for r in mine) <= TARGET_MIB else "FAIL"
            print(
                f"| {server} | {direction} | {len(ok)}/{len(mine)} | "
                f"{statistics.median(r.baseline for r in mine):.1f} | {growth:.1f} | {hwm:.1f} | "
                f"{statistics.median(r.moved for r in mine) / 1024**3:.3f} | "
                f"{statistics.median(r.seconds for r in mine):.1f} | {flat} |"
            )


if __name__ == "__main__":
    main()
