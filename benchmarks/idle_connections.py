"""Server memory held by 10,000 idle keep-alive connections (target: RSS <= 64 MiB).

Each idle connection costs the server a socket, a transport, a protocol object and its HTTP
parser state for as long as the client keeps it open; a static-file server facing many
browsers (or a proxy's connection pool) spends most of its memory there, not on requests in
flight. This script starts zerohttp pinned to CPU 0 (``taskset -c 0``) with keep-alive and
header timeouts of 600 s so nothing is closed by the server during the test, records its
VmRSS after start and after one request, then opens N connections from this process (pinned
to CPU 1), sends one ``GET /small.html`` on each, reads the whole response and keeps the
connection open. Every connection has therefore been through a request and sits in the
keep-alive state. After 2 s it reads the server's VmRSS and VmHWM from /proc, counts the
server's open descriptors, and checks that a new connection and two of the idle ones still
get answers. It runs once per event loop (uvloop, asyncio).

Both processes need RLIMIT_NOFILE above the connection count; it is raised towards 30,000 as
far as the hard limit allows. The "fds per conn" column shows what each connection costs the
server in descriptors (1 since zerohttp stopped keeping a dup of each connection's socket;
it was 2 before), i.e. how far the server's limit has to exceed the connection count.
If the server stops answering, the script stops opening connections and reports how many it
holds, with the server's error lines.

Only the Python standard library is used; the server runs from the zerohttp venv.

    python3 benchmarks/idle_connections.py [--python /tmp/zv/bin/python] [-n 10000]
"""

from __future__ import annotations

import argparse
import errno
import os
import resource
import selectors
import shlex
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass

from serverproc import HOST, free_port, proc_status, start_server, stop_server, zerohttp_command

REQUEST = b"GET /small.html HTTP/1.1\r\nHost: x\r\n\r\n"
TARGET_MIB = 64.0
WANTED_NOFILE = 30000
BATCH = 256  # connections in flight at once while opening (listen backlog is 1024)
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


@dataclass
class Result:
    loop: str
    wanted: int
    connections: int  # held open after a full response
    closed: int
    unanswered: int
    first_error: str
    server_log: list[str]
    rss_start_kib: int
    rss_base_kib: int
    rss_idle_kib: int
    hwm_kib: int
    base_fds: int
    server_fds: int
    open_seconds: float
    new_request_ok: bool
    idle_reuse_ok: bool

    @property
    def delta_kib(self) -> int:
        return self.rss_idle_kib - self.rss_base_kib

    @property
    def per_conn_kib(self) -> float:
        return self.delta_kib / self.connections if self.connections else float("nan")

    @property
    def fds_per_conn(self) -> float:
        return (self.server_fds - self.base_fds) / self.connections if self.connections else 0.0

    @property
    def extrapolated_kib(self) -> float:
        """RSS the server would have with all ``wanted`` connections, at the measured slope."""
        return self.rss_base_kib + self.per_conn_kib * self.wanted

    @property
    def passed(self) -> bool:
        return (
            self.connections == self.wanted
            and self.rss_idle_kib <= TARGET_MIB * 1024
            and self.new_request_ok
            and self.idle_reuse_ok
        )


def raise_nofile(wanted: int) -> tuple[int, int, str]:
    """Raise our RLIMIT_NOFILE (inherited by the server) as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    note = ""
    if target < wanted:
        note = f"hard limit {hard} < {wanted}: soft limit raised to {target} only"
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard, note


def server_command(python: str, root: str, port: int | str, loop: str) -> list[str]:
    return zerohttp_command(
        python, root, port, "--loop", loop, "--keepalive-timeout", "600", "--header-timeout", "600"
    )


def response_complete(buf: bytes) -> bool:
    """True once ``buf`` holds a whole 200 response with a Content-Length body."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].decode("latin-1").split("\r\n")
    if not head[0].startswith("HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[0]!r}")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return len(buf) >= end + 4 + length


def one_request(sock: socket.socket) -> bool:
    """Send REQUEST on a blocking socket and read one whole response."""
    sock.settimeout(10)
    try:
        sock.sendall(REQUEST)
        buf = b""
        while not response_complete(buf):
            data = sock.recv(65536)
            if not data:
                return False
            buf += data
        return True
    except (OSError, RuntimeError):
        return False


def new_request(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=10) as s:
            return one_request(s)
    except OSError:
        return False


@dataclass
class Opened:
    conns: list[socket.socket]
    closed: int = 0  # connections the server closed or reset before answering
    unanswered: int = 0  # connections still without a response when setup gave up
    first_error: str = ""


def open_idle(port: int, n: int, deadline: float, stall: float = 5.0) -> Opened:
    """Open n connections, one request and one full response on each; return them open.

    Stops early (and says so) once the server stops answering: a batch with no progress for
    ``stall`` seconds, more than 100 refused or closed connections, or the overall deadline.
    """
    out = Opened(conns=[])
    sel = selectors.DefaultSelector()
    source = 1  # client source address 127.0.0.<source>; moved on only if ports run out

    def fail(s: socket.socket, why: str) -> None:
        out.closed += 1
        out.first_error = out.first_error or why
        sel.unregister(s)
        del pending[s]
        s.close()

    pending: dict[socket.socket, bytearray] = {}
    try:
        while len(out.conns) < n and out.closed <= 100 and not out.unanswered:
            for _ in range(min(BATCH, n - len(out.conns))):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                if source > 1:
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind((f"127.0.0.{source}", 0))
                err = s.connect_ex((HOST, port))
                if err == errno.EADDRNOTAVAIL and source < 250:
                    s.close()
                    source += 1
                    continue
                if err not in (0, errno.EINPROGRESS):
                    s.close()
                    out.closed += 1
                    out.first_error = out.first_error or f"connect: {os.strerror(err)}"
                    continue
                pending[s] = bytearray()
                sel.register(s, selectors.EVENT_WRITE)
            last_progress = time.monotonic()
            while pending:
                now = time.monotonic()
                if now > deadline or now - last_progress > stall:
                    out.unanswered = len(pending)
                    out.first_error = out.first_error or (
                        f"{len(pending)} connections got no response within {stall:.0f} s"
                    )
                    for s in list(pending):
                        sel.unregister(s)
                        s.close()
                    pending.clear()
                    break
                for key, mask in sel.select(timeout=0.5):
                    s = key.fileobj
                    assert isinstance(s, socket.socket)
                    last_progress = time.monotonic()
                    if mask & selectors.EVENT_WRITE:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            fail(s, f"connect: {os.strerror(err)}")
                            continue
                        s.send(REQUEST)  # 37 bytes into an empty send buffer
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    try:
                        data = s.recv(65536)
                    except OSError as exc:
                        fail(s, f"recv: {exc}")
                        continue
                    if not data:
                        fail(s, "server closed the connection before answering")
                        continue
                    pending[s] += data
                    if response_complete(bytes(pending[s])):
                        sel.unregister(s)
                        del pending[s]
                        out.conns.append(s)
    except BaseException:
        for s in [*out.conns, *pending]:
            s.close()
        raise
    finally:
        sel.close()
    return out


def summarize_log(text: str, limit: int = 3) -> list[str]:
    """The most frequent error lines the server wrote to stderr, with counts."""
    lines = [ln.strip() for ln in text.splitlines() if "rror" in ln or "Too many" in ln]
    return [f"{count}x {line[:160]}" for line, count in Counter(lines).most_common(limit)]


def measure(python: str, root: str, loop: str, n: int, deadline: float) -> Result:
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = start_server(server_command(python, root, port, loop), port, log)
        opened = Opened(conns=[])
        try:
            time.sleep(0.5)
            rss_start = proc_status(proc.pid)["VmRSS"]
            if not new_request(port):
                raise RuntimeError("first request failed")
            time.sleep(0.2)
            rss_base = proc_status(proc.pid)["VmRSS"]
            base_fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
            started = time.monotonic()
            opened = open_idle(port, n, deadline)
            open_seconds = time.monotonic() - started
            time.sleep(2.0)
            status = proc_status(proc.pid)
            fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
            ok_new = new_request(port)
            # Two of the idle connections still serve a second request (kept, not dropped).
            conns = opened.conns
            ok_idle = bool(conns) and all(one_request(s) for s in (conns[0], conns[-1]))
        finally:
            for s in opened.conns:
                s.close()
            stop_server(proc)
        log.seek(0)
        server_log = summarize_log(log.read().decode(errors="replace"))
    return Result(
        loop=loop,
        wanted=n,
        connections=len(opened.conns),
        closed=opened.closed,
        unanswered=opened.unanswered,
        first_error=opened.first_error,
        server_log=server_log,
        rss_start_kib=rss_start,
        rss_base_kib=rss_base,
        rss_idle_kib=status["VmRSS"],
        hwm_kib=status["VmHWM"],
        base_fds=base_fds,
        server_fds=fds,
        open_seconds=open_seconds,
        new_request_ok=ok_new,
        idle_reuse_ok=ok_idle,
    )


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def render(results: list[Result], command: str, n: int, notes: list[str]) -> str:
    lines = [
        f"## Idle keep-alive connections: {n:,} per server, target RSS <= {TARGET_MIB:.0f} MiB",
        "",
        "```",
        command,
        "```",
        "",
        "| loop | idle conns held | RSS at start (MiB) | after 1 request (MiB) "
        "| with idle conns (MiB) | VmHWM (MiB) | delta (MiB) | per conn (KiB) | server fds "
        "| fds per conn | open time (s) | new req | idle reuse | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.loop} | {r.connections:,} | {mib(r.rss_start_kib)} | {mib(r.rss_base_kib)} "
            f"| {mib(r.rss_idle_kib)} | {mib(r.hwm_kib)} | {mib(r.delta_kib)} "
            f"| {r.per_conn_kib:.2f} | {r.server_fds:,} | {r.fds_per_conn:.2f} "
            f"| {r.open_seconds:.1f} "
            f"| {'ok' if r.new_request_ok else 'FAILED'} "
            f"| {'ok' if r.idle_reuse_ok else 'FAILED'} | {'pass' if r.passed else 'FAIL'} |"
        )
    lines.append("")
    lines.extend(f"- {note}" for note in notes)
    for r in results:
        if r.connections < r.wanted:
            lines.append(
                f"- {r.loop}: only {r.connections:,} of {r.wanted:,} connections held "
                f"({r.closed} closed by the server, {r.unanswered} unanswered; "
                f"first: {r.first_error}); at the measured {r.per_conn_kib:.2f} KiB per "
                f"connection, {r.wanted:,} would be ~{mib(r.extrapolated_kib)} MiB RSS"
            )
        lines.extend(f"- {r.loop} server stderr: `{line}`" for line in r.server_log)
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/tmp/zv/bin/python", help="interpreter with zerohttp")
    parser.add_argument("-n", "--connections", type=int, default=10_000)
    parser.add_argument("--loops", default="uvloop,asyncio", help="comma-separated loops")
    args = parser.parse_args()
    n: int = args.connections

    notes: list[str] = []
    soft, hard, note = raise_nofile(WANTED_NOFILE)
    if note:
        notes.append(f"RLIMIT_NOFILE: {note}")
    if soft < n + 100:
        sys.exit(f"RLIMIT_NOFILE soft limit {soft} is too low for {n} connections")
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(x) for x in f.read().split())
    if high - low + 1 < n:
        notes.append(f"ephemeral ports {low}-{high} < {n}: extra 127.0.0.x sources used")
    try:
        os.sched_setaffinity(0, {1})  # the client stays off the server's core
        client_cpu = "client on CPU 1"
    except OSError:
        client_cpu = "client not pinned"

    started = time.monotonic()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="zerohttp-idle-") as root:
        with open(os.path.join(root, "small.html"), "wb") as f:
            f.write(os.urandom(1024))
        for loop in args.loops.split(","):
            results.append(measure(args.python, root, loop, n, time.monotonic() + 60))

    server = shlex.join(server_command(args.python, "ROOT", "PORT", "LOOP"))
    notes = [
        f"server: `{server}`",
        f"RLIMIT_NOFILE {soft}/{hard} (soft/hard, inherited by the server); "
        f"ephemeral ports {low}-{high}; {client_cpu}; {os.cpu_count()} CPUs",
        "baseline for the delta is the RSS after one request; RSS with idle connections "
        "read 2 s after the last one was opened; server fds counted in /proc/PID/fd",
        *notes,
        f"total run time {time.monotonic() - started:.0f} s",
    ]
    command = shlex.join(["python3", "benchmarks/idle_connections.py", *sys.argv[1:]])
    print(render(results, command, n, notes), end="")


if __name__ == "__main__":
    main()
