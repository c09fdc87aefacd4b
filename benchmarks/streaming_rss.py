"""Server RSS while 8 clients stream a 4 GiB file (target: flat within 5 MiB).

A static-file server must send a file of any size in constant memory: the body may never be
buffered whole, and neither the number of bytes already sent nor the speed of the clients may
make the process grow. This script creates a 4 GiB sparse file (a few random 64 KiB blocks at
scattered offsets, the rest holes) in a temp dir under /tmp, starts zerohttp pinned to CPU 0
(``taskset -c 0``, uvloop) and lets 8 client threads of this process (pinned to CPU 1) GET it
at the same time, each reading as fast as it can and counting the bytes, which must equal the
Content-Length (and the file size). While the transfers run, the server's VmRSS is sampled
from /proc/PID/status every 0.5 s; the table gives the samples' min, max, spread, first and
last, the VmHWM at the end, and the throughput. Samples 0.5 s apart can miss short peaks, so
VmHWM minus the smallest sample is reported (and judged) too. It runs once per body path:
sendfile (the default) and the read-and-write fallback (``--no-sendfile``). A run that is not
done after 240 s is stopped and reported as such. The file is always removed at the end.

Only the Python standard library is used; the server runs from the zerohttp venv.

    python3 benchmarks/streaming_rss.py [--python /tmp/zv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from serverproc import HOST, free_port, proc_status, start_server, stop_server, zerohttp_command

FILE_NAME = "big.bin"
FILE_SIZE = 4 * 1024**3
CLIENTS = 8
SAMPLE_EVERY = 0.5
TIME_LIMIT = 240.0
TARGET_SPREAD_MIB = 5.0
RANDOM_BLOCK = 64 * 1024
RANDOM_BLOCKS = 16


@dataclass
class Client:
    """One transfer: what the server declared and what arrived."""

    content_length: int = -1
    received: int = 0
    error: str = ""
    done: bool = False
    headers_at: float = 0.0
    finished_at: float = 0.0


@dataclass
class Result:
    body_path: str
    clients: list[Client]
    rss_before_kib: int
    samples_kib: list[int] = field(default_factory=list)
    hwm_kib: int = 0
    seconds: float = 0.0
    timed_out: bool = False
    server_log: str = ""

    @property
    def received(self) -> int:
        return sum(c.received for c in self.clients)

    @property
    def complete(self) -> int:
        return sum(
            1
            for c in self.clients
            if c.done and c.received == c.content_length == FILE_SIZE and not c.error
        )

    @property
    def spread_kib(self) -> int:
        return max(self.samples_kib) - min(self.samples_kib) if self.samples_kib else 0

    @property
    def hwm_spread_kib(self) -> int:
        """VmHWM over the smallest sample: catches peaks that fall between two samples."""
        return self.hwm_kib - min(self.samples_kib) if self.samples_kib else 0

    @property
    def passed_strict(self) -> bool:
        return self.passed and self.hwm_spread_kib <= TARGET_SPREAD_MIB * 1024

    @property
    def passed(self) -> bool:
        return (
            self.complete == len(self.clients)
            and not self.timed_out
            and len(self.samples_kib) >= 2
            and self.spread_kib <= TARGET_SPREAD_MIB * 1024
        )


def make_sparse_file(path: str, size: int) -> None:
    """A sparse file of ``size`` bytes with random blocks at scattered offsets (and its end)."""
    with open(path, "wb") as f:
        f.truncate(size)
        step = size // RANDOM_BLOCKS
        for i in range(RANDOM_BLOCKS):
            offset = i * step + (i * 7919 * 4096) % (step - RANDOM_BLOCK)
            f.seek(offset)
            f.write(os.urandom(RANDOM_BLOCK))
        f.seek(size - RANDOM_BLOCK)
        f.write(os.urandom(RANDOM_BLOCK))
    if os.path.getsize(path) != size:
        raise RuntimeError(f"{path} is not {size} bytes")


def server_command(python: str, root: str, port: int | str, sendfile: bool) -> list[str]:
    body = "--sendfile" if sendfile else "--no-sendfile"
    return zerohttp_command(python, root, port, "--loop", "uvloop", body)


def download(port: int, client: Client, stop: threading.Event) -> None:
    """GET the file and count its body bytes into nothing, until done, error or ``stop``."""
    request = f"GET /{FILE_NAME} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    buf = bytearray(1024 * 1024)
    view = memoryview(buf)
    try:
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.settimeout(1.0)  # short, so that ``stop`` is noticed
            s.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                data = s.recv(65536)
                if not data:
                    raise ConnectionError("closed before the response head")
                head += data
            head, _, body = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            if not lines[0].startswith("HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {lines[0]!r}")
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    client.content_length = int(value)
            client.headers_at = time.monotonic()
            client.received = len(body)
            while client.received < client.content_length and not stop.is_set():
                try:
                    n = s.recv_into(view)
                except TimeoutError:
                    continue
                if not n:
                    break
                client.received += n
            client.finished_at = time.monotonic()
            client.done = client.received == client.content_length
            if not client.done and not stop.is_set():
                client.error = f"connection closed after {client.received} bytes"
    except Exception as exc:
        client.error = f"{type(exc).__name__}: {exc}"


def run_once(python: str, root: str, sendfile: bool) -> Result:
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = start_server(server_command(python, root, port, sendfile), port, log.fileno())
        try:
            time.sleep(0.5)
            clients = [Client() for _ in range(CLIENTS)]
            result = Result(
                body_path="sendfile" if sendfile else "fallback (--no-sendfile)",
                clients=clients,
                rss_before_kib=proc_status(proc.pid)["VmRSS"],
            )
            stop = threading.Event()
            threads = [
                threading.Thread(target=download, args=(port, c, stop), daemon=True)
                for c in clients
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            # Sample once every response is streaming (or failed), until all are done.
            while time.monotonic() - started < 10 and not all(
                c.headers_at or c.error for c in clients
            ):
                time.sleep(0.01)
            next_sample = time.monotonic()
            while any(t.is_alive() for t in threads):
                if time.monotonic() - started > TIME_LIMIT:
                    result.timed_out = True
                    stop.set()
                    break
                if time.monotonic() >= next_sample:
                    result.samples_kib.append(proc_status(proc.pid)["VmRSS"])
                    next_sample += SAMPLE_EVERY
                time.sleep(min(0.05, max(0.0, next_sample - time.monotonic())))
            for t in threads:
                t.join(timeout=5)
            ends = [c.finished_at for c in clients if c.finished_at]
            result.seconds = (max(ends) if ends else time.monotonic()) - started
            result.hwm_kib = proc_status(proc.pid)["VmHWM"]
        finally:
            stop_server(proc)
        log.seek(0)
        result.server_log = log.read().decode(errors="replace").strip()
    return result


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def render(results: list[Result], command: str, notes: list[str]) -> str:
    lines = [
        f"## Streaming RSS: {CLIENTS} clients x {FILE_SIZE / 1024**3:.0f} GiB file, "
        f"target RSS spread <= {TARGET_SPREAD_MIB:.0f} MiB",
        "",
        "```",
        command,
        "```",
        "",
        "| body path | complete | RSS before (MiB) | samples | first (MiB) | last (MiB) "
        "| min (MiB) | max (MiB) | max-min (MiB) | VmHWM (MiB) | VmHWM-min (MiB) "
        "| throughput (GB/s) | total time (s) | max-min <= 5 | VmHWM-min <= 5 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        s = r.samples_kib or [0]
        lines.append(
            f"| {r.body_path} | {r.complete}/{len(r.clients)} | {mib(r.rss_before_kib)} "
            f"| {len(r.samples_kib)} | {mib(s[0])} | {mib(s[-1])} | {mib(min(s))} "
            f"| {mib(max(s))} | {mib(r.spread_kib)} | {mib(r.hwm_kib)} "
            f"| {mib(r.hwm_spread_kib)} "
            f"| {r.received / r.seconds / 1e9 if r.seconds else 0:.2f} | {r.seconds:.1f} "
            f"| {'pass' if r.passed else 'FAIL'} | {'pass' if r.passed_strict else 'FAIL'} |"
        )
    lines.append("")
    lines.extend(f"- {note}" for note in notes)
    for r in results:
        if r.timed_out:
            lines.append(
                f"- {r.body_path}: stopped after {TIME_LIMIT:.0f} s with "
                f"{r.received / 1024**3:.1f} of {CLIENTS * FILE_SIZE / 1024**3:.0f} GiB received"
            )
        for i, c in enumerate(r.clients):
            if c.error or (c.done and c.received != FILE_SIZE):
                lines.append(
                    f"- {r.body_path}, client {i}: {c.error or 'wrong size'} "
                    f"(Content-Length {c.content_length}, received {c.received})"
                )
        if r.server_log:
            tail = r.server_log.splitlines()[-1][:160]
            lines.append(f"- {r.body_path}: server stderr ends with `{tail}`")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/tmp/zv/bin/python", help="interpreter with zerohttp")
    parser.add_argument("--dir", default="/tmp", help="where the temp dir with the file goes")
    args = parser.parse_args()
    try:
        os.sched_setaffinity(0, {1})  # client threads inherit it: off the server's core
        client_cpu = "clients on CPU 1"
    except OSError:
        client_cpu = "clients not pinned"

    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="zerohttp-stream-", dir=args.dir)
    results: list[Result] = []
    try:
        path = os.path.join(root, FILE_NAME)
        make_sparse_file(path, FILE_SIZE)
        allocated = os.stat(path).st_blocks * 512
        for sendfile in (True, False):
            results.append(run_once(args.python, root, sendfile))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    server = shlex.join(server_command(args.python, "ROOT", "PORT", True))
    notes = [
        f"server: `{server}` (or `--no-sendfile`)",
        f"file: {FILE_SIZE:,} bytes, sparse ({allocated // 1024} KiB allocated: "
        f"{RANDOM_BLOCKS + 1} random {RANDOM_BLOCK // 1024} KiB blocks), in {args.dir}",
        f"{CLIENTS} client threads, `Connection: close`, 1 MiB recv_into; {client_cpu}; "
        f"VmRSS sampled every {SAMPLE_EVERY} s from when all {CLIENTS} response heads arrived "
        f"until the last transfer ended; VmHWM read at the end (it also catches peaks "
        f"between samples); throughput = all body bytes / total time",
        f"total run time {time.monotonic() - started:.0f} s",
    ]
    command = shlex.join(["python3", "benchmarks/streaming_rss.py", *sys.argv[1:]])
    print(render(results, command, notes), end="")


if __name__ == "__main__":
    main()
