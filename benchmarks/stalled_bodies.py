"""Stalled request bodies (--body-timeout): N connections that each send a head declaring a
body and then nothing are answered 408 and closed within the timeout plus one sweep, while
a normal keep-alive client is served meanwhile within its usual latency.

A head with ``Content-Length`` used to escape every deadline (the header timeout stops at
the end of the head, and nothing timed the body), so each such connection was held open for
ever: one extra header line defeated the slowloris guard. This script starts zerohttp
pinned to CPU 0 (``taskset -c 0``) with ``--body-timeout T`` and, from this process (pinned
to CPU 1), does three things per event loop:

1. before: a normal client sends keep-alive ``GET /small.html`` requests one after another
   for ``--baseline`` seconds and records each latency (send to last byte);
2. opens N connections and sends ``GET /small.html`` with ``Content-Length: 10`` and no
   body on each, noting when each head left;
3. during: the same normal client keeps going, and between two of its requests the stalled
   connections are polled; each one's close is timed from its own head, and whether a 408
   arrived first is noted. It ends when all are closed, or at T + 10 s.

Acceptance: every stalled connection gets 408 and is closed within T + 1 s, and the normal
client's median and p99 latency during the stall stay near their values before.

Only the Python standard library is used; the server runs from the interpreter given.

    python3 benchmarks/stalled_bodies.py [--python .venv/bin/python] [-n 500] [--body-timeout 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shlex
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

from serverproc import HOST, free_port, start_server, stop_server, zerohttp_command

NORMAL = b"GET /small.html HTTP/1.1\r\nHost: x\r\n\r\n"
STALLED = b"GET /small.html HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
SMALL = 1024
SLACK = 1.0  # the acceptance bound: closed within --body-timeout + SLACK seconds


@dataclass
class Result:
    loop: str
    timeout: float
    stalled: int
    closed_after: list[float] = field(default_factory=list)  # seconds from each head
    got_408: int = 0
    before_ms: list[float] = field(default_factory=list)
    during_ms: list[float] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            len(self.closed_after) == self.stalled == self.got_408
            and max(self.closed_after) <= self.timeout + SLACK
        )


class NormalClient:
    """One keep-alive connection; ``request`` times one GET to its last byte."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self) -> float:
        started = time.perf_counter()
        self.sock.sendall(NORMAL)
        got = b""
        while len(got) < self._length(got):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the normal client's connection was closed")
            got += chunk
        if not got.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"normal client got {got[:40]!r}")
        return (time.perf_counter() - started) * 1000

    @staticmethod
    def _length(got: bytes) -> int:
        """Bytes of the whole response once its head is in, else more than we have."""
        end = got.find(b"\r\n\r\n")
        return end + 4 + SMALL if end >= 0 else len(got) + 1

    def close(self) -> None:
        self.sock.close()


def raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def server_command(python: str, root: str, port: int | str, loop: str, timeout: float) -> list[str]:
    return zerohttp_command(python, root, port, "--loop", loop, "--body-timeout", str(timeout))


def measure(python: str, root: str, loop: str, n: int, timeout: float, baseline: float) -> Result:
    result = Result(loop, timeout, n)
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = start_server(server_command(python, root, port, loop, timeout), port, log)
        client = NormalClient(port)
        stalled: list[socket.socket] = []
        try:
            for _ in range(200):  # warm up
                client.request()
            until = time.monotonic() + baseline
            while time.monotonic() < until:
                result.before_ms.append(client.request())

            selector = selectors.DefaultSelector()
            for _ in range(n):
                sock = socket.create_connection((HOST, port), timeout=10)
                stalled.append(sock)
                sock.sendall(STALLED)
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ, (time.monotonic(), bytearray()))
            give_up = time.monotonic() + timeout + 10
            while selector.get_map() and time.monotonic() < give_up:
                result.during_ms.append(client.request())
                for key, _ in selector.select(timeout=0):
                    sent, got = key.data
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        chunk = sock.recv(65536)
                    except ConnectionResetError:
                        chunk = b""
                    got.extend(chunk)
                    if not chunk:
                        result.closed_after.append(time.monotonic() - sent)
                        result.got_408 += got.startswith(b"HTTP/1.1 408 ")
                        selector.unregister(sock)
            selector.close()
        finally:
            client.close()
            for sock in stalled:
                sock.close()
            stop_server(proc)
    return result


def ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.2f}"


def render(results: list[Result], command: str, notes: list[str]) -> str:
    n = results[0].stalled if results else 0
    timeout = results[0].timeout if results else 0
    lines = [
        f"## Stalled request bodies: {n} connections, --body-timeout {timeout:g} s, "
        f"target: all closed within {timeout + SLACK:g} s",
        "",
        "```",
        command,
        "```",
        "",
        "| loop | closed | got 408 | close after head: median (s) | max (s) "
        "| normal client before: median / p99 / max (ms) | during: median / p99 / max (ms) "
        "| requests during | result |",
        "|---|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for r in results:
        closed = r.closed_after
        lines.append(
            f"| {r.loop} | {len(closed)}/{r.stalled} | {r.got_408} "
            f"| {statistics.median(closed):.2f} | {max(closed):.2f} "
            f"| {ms(r.before_ms, 0.5)} / {ms(r.before_ms, 0.99)} / {ms(r.before_ms, 1)} "
            f"| {ms(r.during_ms, 0.5)} / {ms(r.during_ms, 0.99)} / {ms(r.during_ms, 1)} "
            f"| {len(r.during_ms):,} | {'pass' if r.passed else 'FAIL'} |"
        )
    lines.append("")
    lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter with zerohttp")
    parser.add_argument("-n", "--connections", type=int, default=500)
    parser.add_argument("--body-timeout", type=float, default=5.0)
    parser.add_argument("--baseline", type=float, default=2.0, help="seconds of 'before'")
    parser.add_argument("--loops", default="uvloop,asyncio", help="comma-separated loops")
    args = parser.parse_args()

    raise_nofile(args.connections + 1024)
    try:
        os.sched_setaffinity(0, {1})  # the client stays off the server's core
        client_cpu = "client on CPU 1"
    except OSError:
        client_cpu = "client not pinned"
    results = []
    with tempfile.TemporaryDirectory(prefix="zerohttp-stalled-") as root:
        with open(os.path.join(root, "small.html"), "wb") as f:
            f.write(os.urandom(SMALL))
        for loop in args.loops.split(","):
            results.append(
                measure(args.python, root, loop, args.connections, args.body_timeout, args.baseline)
            )
    server = shlex.join(server_command(args.python, "ROOT", "PORT", "LOOP", args.body_timeout))
    notes = [
        f"server: `{server}`; {client_cpu}; {os.cpu_count()} CPUs",
        "each close is timed from that connection's own head; the normal client's latency "
        "is one keep-alive GET of 1 KiB, send to last byte, after 200 warm-up requests",
    ]
    command = shlex.join(["python3", "benchmarks/stalled_bodies.py", *sys.argv[1:]])
    print(render(results, command, notes), end="")


if __name__ == "__main__":
    main()
