"""Basic auth's two figures, in one run (issue 18 §3):

1. a signed-in client's 1 KiB keep-alive rate against the same file with no auth at all
   (target >= 0.8x): both servers up at once, each pinned to CPU 0, ``wrk -t1 -c64`` on
   CPU 1 in turn, the order flipping each pass; the ratio is taken per pass;
2. while 200 wrong-password requests a second arrive (each password distinct, so no cache
   helps), a signed-in client's p99 latency (target < 50 ms): an open-loop flood from one
   process and a keep-alive client at 100 requests a second from another, both on CPU 1.

Each for htpasswd entries at bcrypt cost 5 (``htpasswd -B``'s default) and 10.

    flock -x /tmp/zh-bench.lock python3 benchmarks/auth_bench.py [--passes 6] [--seconds 5]

Run with the repository's venv (bcrypt is a dependency); the servers run from this tree.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bcrypt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from serverproc import HOST, free_port, start_server, stop_server, zerohttp_command  # noqa: E402

PEERBENCH = Path(os.environ.get("PEERBENCH", HERE.parent.parent / "shared" / "peerbench"))
sys.path.insert(0, str(PEERBENCH))
import bench as pb  # noqa: E402

USER, PASSWORD = "alice", "correct horse battery staple"
PATH = "/kib.html"


def authorization(password: str) -> str:
    return "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()


def request(password: str | None) -> bytes:
    auth = f"Authorization: {authorization(password)}\r\n" if password is not None else ""
    return f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\n{auth}\r\n".encode()


def read_response(sock: socket.socket, buffer: bytearray) -> int:
    """The status of one response with a Content-Length body (what zerohttp sends here)."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    head = bytes(buffer[:end]).decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(buffer) < end + 4 + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    del buffer[: end + 4 + length]
    return int(head.split(" ", 2)[1])


def signed_in_client(port: int, seconds: float, rate: float, out: Any) -> None:
    """One keep-alive connection, a request every 1/rate s; latencies in ms to ``out``."""
    os.sched_setaffinity(0, {int(pb.CLIENT_CPU)})
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    data = request(PASSWORD)
    sock.sendall(data)
    read_response(sock, buffer)  # remembered from here on
    latencies, statuses = [], {}
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        start = time.perf_counter()
        sock.sendall(data)
        status = read_response(sock, buffer)
        latencies.append((time.perf_counter() - start) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    sock.close()
    out.put((latencies, statuses))


def flood(port: int, seconds: float, rate: float, out: Any) -> None:
    """Open loop: ``rate`` wrong-password requests a second, each password new, each on a
    connection of its own (as a credential-stuffing bot), whatever the answers' pace."""
    os.sched_setaffinity(0, {int(pb.CLIENT_CPU)})

    async def one(index: int, statuses: dict[int | str, int]) -> None:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(request(f"guess-{os.getpid()}-{index}"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status: int | str = int(head.split(b" ", 2)[1])
            writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            status = type(exc).__name__
        statuses[status] = statuses.get(status, 0) + 1

    async def main() -> dict[int | str, int]:
        statuses: dict[int | str, int] = {}
        tasks = []
        start = time.monotonic()
        index = 0
        while time.monotonic() - start < seconds:
            tasks.append(asyncio.create_task(one(index, statuses)))
            index += 1
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        await asyncio.gather(*tasks)
        statuses["sent"] = index
        return statuses

    out.put(asyncio.run(main()))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def flood_run(port: int, seconds: float, flood_rate: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    out: Any = ctx.Queue()
    client = ctx.Process(target=signed_in_client, args=(port, seconds, 100.0, out))
    attacker = ctx.Process(target=flood, args=(port, seconds, flood_rate, out)) if flood_rate else None
    client.start()
    if attacker is not None:
        attacker.start()
    results = [out.get(timeout=seconds + 120) for _ in range(2 if attacker else 1)]
    client.join()
    if attacker is not None:
        attacker.join()
    found: dict[str, Any] = {}
    for result in results:
        if isinstance(result, tuple):
            found["latencies"], found["client_statuses"] = result
        else:
            found["flood"] = result
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--flood-seconds", type=float, default=15.0)
    ap.add_argument("--flood-rate", type=float, default=200.0)
    ap.add_argument("--costs", default="5,10")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    tree = str(HERE.parent)
    env_python = ["env", f"PYTHONPATH={tree}", args.python]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        (root / PATH[1:]).write_bytes(b"<!doctype html>" + b"x" * (1024 - 15))
        for cost in [int(c) for c in args.costs.split(",")]:
            users = Path(tmp) / f"users-{cost}"
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(cost)).decode()
            users.write_text(f"{USER}:$2y${hashed[4:]}\n")
            start = time.perf_counter()
            bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
            check_ms = (time.perf_counter() - start) * 1000
            servers: dict[str, tuple[Any, int, list[str]]] = {}
            try:
                for name, options, headers in (
                    ("no auth", [], []),
                    ("auth", ["--basic-auth-file", str(users)], [f"Authorization: {authorization(PASSWORD)}"]),
                ):
                    port = free_port()
                    cmd = zerohttp_command("python", str(root), port, *options)
                    cmd[cmd.index("python") : cmd.index("python") + 1] = env_python
                    servers[name] = (start_server(cmd, port, sys.stderr.fileno()), port, headers)
                    pb.wrk(f"http://{HOST}:{port}{PATH}", 64, 2, headers)  # warm-up
                runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
                names = list(servers)
                for k in range(args.passes):
                    for name in names if k % 2 == 0 else names[::-1]:
                        proc, port, headers = servers[name]
                        with pb.Probe(proc.pid) as probe:
                            r = pb.wrk(f"http://{HOST}:{port}{PATH}", 64, args.seconds, headers)
                        bad = r["non2xx"] + sum(r["socket_errors"].values())
                        runs[name].append(
                            dict(rps=r["rps"], us=probe.cpu / r["requests"] * 1e6, bad=bad,
                                 others=probe.foreign / probe.wall)
                        )  # fmt: skip
                ratios = [a["rps"] / b["rps"] for a, b in zip(runs["auth"], runs["no auth"])]
                print(f"\n## bcrypt cost {cost} (one check: {check_ms:.1f} ms on this box)")
                print(f"\nGET {PATH} (1 KiB), keep-alive, wrk -t1 -c64 on CPU {pb.CLIENT_CPU}, "
                      f"{args.passes} passes x {args.seconds} s, servers on CPU {pb.SERVER_CPU}\n")  # fmt: skip
                print("| server | req/s median | µs CPU/req median | others (cores) | errors |")
                print("|---|---:|---:|---:|---:|")
                for name in names:
                    rows = runs[name]
                    print(
                        f"| {name} | {statistics.median(r['rps'] for r in rows):,.0f} "
                        f"| {statistics.median(r['us'] for r in rows):.1f} "
                        f"| {statistics.median(r['others'] for r in rows):.2f} "
                        f"| {sum(int(r['bad']) for r in rows)} |"
                    )
                print(f"\nauth ÷ no auth, median of passes: {statistics.median(ratios):.3f} "
                      f"(range {min(ratios):.2f}–{max(ratios):.2f})")  # fmt: skip
                _, port, _ = servers["auth"]
                print(f"\nSigned-in client at 100 req/s on one keep-alive connection, "
                      f"{args.flood_seconds:g} s:\n")  # fmt: skip
                print("| flood | client p50 ms | p99 ms | max ms | client statuses | flood answers |")
                print("|---|---:|---:|---:|---|---|")
                for rate in (0.0, args.flood_rate):
                    found = flood_run(port, args.flood_seconds, rate)
                    lat = found["latencies"]
                    flood_answers = found.get("flood", {})
                    print(
                        f"| {rate:g} wrong passwords/s | {percentile(lat, 50):.2f} "
                        f"| {percentile(lat, 99):.2f} | {max(lat):.2f} "
                        f"| {found['client_statuses']} | {flood_answers or '-'} |"
                    )
            finally:
                for proc, _, _ in servers.values():
                    stop_server(proc)


if __name__ == "__main__":
    main()
