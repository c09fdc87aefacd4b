"""WebSocket under load (issue 19): zerohttp --app against uvicorn and hypercorn, same run.

    flock -x /tmp/zh-bench.lock python3 benchmarks/ws_bench.py [--rounds 3] [--idle 10000]

One bare ASGI app (benchmarks/apps/ws_app.py) under every server, each pinned to CPU 0:

    zerohttp --app ws_app:app --loop uvloop --log-level warning       (PYTHONPATH = this tree)
    uvicorn ws_app:app --loop uvloop --http httptools --ws auto --no-access-log
            (--ws auto is websockets' sans-IO protocol, uvicorn's default)
    hypercorn ws_app:app --worker-class uvloop --workers 1           (wsproto)

The load is benchmarks/ws_load.c (built here with gcc into /tmp), one epoll thread pinned to
CPU 1; it prints its own CPU share and the script the server's (its process tree, from
/proc), so a run limited by the client shows as a client share near 1.0.

- ``echo``: 64 connections; each sends a 1 KiB text message and sends the next when its
  echo is back (one message in flight per connection); every echo is checked byte for byte.
  Rate = echoes received per second.
- ``broadcast``: 500 connections on /broadcast; connection 0 publishes 1 KiB text messages,
  the app sends each to all 500 (one ``await send`` after another); 4 messages are kept in
  flight. Rate = messages delivered (received by any connection) per second.
- ``-deflate`` variants: the client offers permessage-deflate (``client_max_window_bits``),
  every server accepts it with its own default parameters, and the client compresses what
  it sends (zlib level 1) and inflates what it gets. The plain variants offer nothing.
- ``--idle N``: N idle WebSockets on /idle (opened 256 at a time), server RSS (VmRSS of the
  tree) before and 2 s after the last one opened, zerohttp against uvicorn (and hypercorn);
  with and without deflate offered (browsers offer it, and it costs zlib state).

Rounds interleave the servers (the order rotates each round); tables give medians and
every ratio has the peer's absolute rate beside it. Markdown on stdout, JSON in --out.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
PEERBENCH = Path(os.environ.get("PEERBENCH", REPO.parent / "shared" / "peerbench"))
if not PEERBENCH.is_dir():
    PEERBENCH = Path("/work/shared/peerbench")
sys.path.insert(0, str(PEERBENCH))
import bench as pb  # noqa: E402  (peerbench's /proc helpers: tree, cpu_seconds, stop, Others)

HOST = "127.0.0.1"
SERVERS = ["zerohttp", "uvicorn", "hypercorn"]
# --tree NAME=DIR: more zerohttp servers, each with DIR (a source tree) on PYTHONPATH
TREES: dict[str, Path] = {}
# test -> (client mode, path, connections, deflate offered)
TESTS: dict[str, tuple[str, str, int, bool]] = {
    "echo": ("echo", "/echo", 64, False),
    "echo-deflate": ("echo", "/echo", 64, True),
    "broadcast": ("broadcast", "/broadcast", 500, False),
    "broadcast-deflate": ("broadcast", "/broadcast", 500, True),
}
TARGETS = [  # (test, peer, wanted ratio of zerohttp's rate to the peer's)
    ("echo", "uvicorn", 1.5),
    ("echo", "hypercorn", 1.0),
    ("broadcast", "uvicorn", 1.5),
]


# ----------------------------------------------------------------- the client
def build_client() -> Path:
    """Compile ws_load.c once per source version (under /tmp: nothing built is committed)."""
    source = HERE / "ws_load.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    binary = Path(f"/tmp/zh-ws-load-{digest}")
    if not binary.exists():
        tmp = binary.with_suffix(".tmp")
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(tmp), str(source), "-lz"], check=True)
        tmp.rename(binary)
    return binary


# ----------------------------------------------------------------- servers
def server_argv(server: str, bin_dir: str, port: int) -> list[str]:
    pin = ["taskset", "-c", pb.SERVER_CPU]
    if server == "zerohttp" or server in TREES:
        return [*pin, f"{bin_dir}/python", "-m", "zerohttp", "--app", "ws_app:app",
                "--host", HOST, "--port", str(port), "--loop", "uvloop",
                "--log-level", "warning"]  # fmt: skip
    if server == "uvicorn":
        return [*pin, f"{bin_dir}/uvicorn", "ws_app:app", "--app-dir", str(APPS), "--host", HOST,
                "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--ws", "auto",
                "--no-access-log", "--log-level", "warning"]  # fmt: skip
    return [*pin, f"{bin_dir}/hypercorn", "ws_app:app", "--bind", f"{HOST}:{port}",
            "--worker-class", "uvloop", "--workers", "1", "--log-level", "warning"]  # fmt: skip


class Server:
    def __init__(self, name: str, bin_dir: str, log_dir: Path) -> None:
        self.name = name
        self.port = pb.free_port(18000 + 100 * [*SERVERS, *TREES].index(name))
        env = dict(os.environ, PYTHONPATH=str(TREES.get(name, REPO)))  # zerohttp from a tree
        self.log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115
        # cwd = the apps directory: ws_app imports, and no zerohttp/ directory shadows the tree
        self.proc = subprocess.Popen(
            server_argv(name, bin_dir, self.port), cwd=APPS, env=env, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not pb.http_ok(f"http://{HOST}:{self.port}/", timeout=0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start: see {self.log.name}")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        return list(pb.tree(self.proc.pid))

    def rss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    total += next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
            except (OSError, StopIteration):
                pass
        return total

    def fds(self) -> int:
        return sum(len(os.listdir(f"/proc/{p}/fd")) for p in self.pids())

    def stop(self) -> None:
        pb.stop(self.proc)
        self.log.close()


# ----------------------------------------------------------------- one load run
def run_load(
    client: Path, server: Server, test: str, seconds: float, warmup: float
) -> dict[str, Any]:
    mode, path, conns, deflate = TESTS[test]
    argv = ["taskset", "-c", pb.CLIENT_CPU, str(client), mode, HOST, str(server.port), path,
            "-c", str(conns), "-d", str(seconds), "-w", str(warmup)]  # fmt: skip
    if deflate:
        argv.append("-z")
    pb.wait_quiet(3, ours=server.pids())
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    cpu0 = cpu1 = 0.0
    others: Any = None
    result: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith("MEASURE_START"):
            pids = server.pids()
            cpu0 = pb.cpu_seconds(pids)
            others = pb.Others().start(pids)
        elif line.startswith("MEASURE_END"):
            pids = server.pids()
            cpu1 = pb.cpu_seconds(pids)
        elif line.startswith("{"):
            result = json.loads(line)
    proc.wait()
    if not result:
        raise RuntimeError(f"{test} on {server.name}: no result from the client")
    if others is not None:  # the rest of the box: what the client and the server did not use
        others.stop(server.pids(), result["client_cpu_s"])
    secs = result["seconds"] or 1.0
    result["server_cpu_share"] = round((cpu1 - cpu0) / secs, 3)
    result["server_us_per_msg"] = (
        round((cpu1 - cpu0) / result["messages"] * 1e6, 2) if result["messages"] else None
    )
    result["foreign_cores"] = round(others.other / secs, 2) if others is not None else None
    # a broadcast that misses one connection never completes a message: no deliveries at all
    result["ok"] = (
        result["failed"] == 0
        and result["mismatches"] == 0
        and result["closed_by_server"] == 0
        and result["messages"] > 0
    )
    return result


def run_idle(client: Path, server: Server, count: int, deflate: bool) -> dict[str, Any]:
    argv = ["taskset", "-c", pb.CLIENT_CPU, str(client), "idle", HOST, str(server.port), "/idle",
            "-c", str(count)]  # fmt: skip
    if deflate:
        argv.append("-z")
    time.sleep(1)
    base_rss, base_fds = server.rss_kib(), server.fds()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    ready = proc.stdout.readline().split()
    opened = int(ready[1]) if len(ready) == 3 and ready[0] == "READY" else 0
    open_s = time.monotonic() - t0
    time.sleep(2)
    rss, fds = server.rss_kib(), server.fds()
    proc.stdin.close()
    result: dict[str, Any] = json.loads(proc.stdout.read().strip().splitlines()[-1])
    proc.wait()
    result.update(
        base_rss_kib=base_rss,
        rss_kib=rss,
        kib_per_conn=round((rss - base_rss) / opened, 2) if opened else None,
        fds_per_conn=round((fds - base_fds) / opened, 2) if opened else None,
        open_seconds=round(open_s, 1),
        ok=opened == count and result["alive"] == count,
    )
    return result


# ----------------------------------------------------------------- report
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_tables(rows: list[dict[str, Any]], tests: list[str], servers: list[str]) -> list[str]:
    out: list[str] = []
    for test in tests:
        mode, path, conns, deflate = TESTS[test]
        out += [f"\n### {test}: {mode} {path}, {conns} connections, 1 KiB text, deflate "
                f"{'offered' if deflate else 'not offered'}\n",
                "| server | msg/s (median) | rounds | server CPU share | client CPU share "
                "| server CPU µs/msg | others (cores) | deflate used | all ok |",
                "|---|---:|---|---:|---:|---:|---:|---|---|"]  # fmt: skip
        for server in servers:
            rs = [r for r in rows if r["test"] == test and r["server"] == server]
            if not rs:
                continue
            rates = [r["rate"] for r in rs]
            us = [r["server_us_per_msg"] for r in rs if r["server_us_per_msg"]]
            out.append(
                f"| {server} | {median(rates):,.0f} | {' / '.join(f'{x:,.0f}' for x in rates)} "
                f"| {median([r['server_cpu_share'] for r in rs]):.2f} "
                f"| {median([r['client_cpu_share'] for r in rs]):.2f} | {median(us):.1f} "
                f"| {median([r['foreign_cores'] or 0.0 for r in rs]):.2f} "
                f"| {'yes' if all(r['deflate'] for r in rs) else 'no'} "
                f"| {'yes' if all(r['ok'] for r in rs) else 'NO: ' + rs[0]['first_error']} |"
            )
    return out


def target_table(rows: list[dict[str, Any]]) -> list[str]:
    def rate(test: str, server: str, key: str = "rate") -> float:
        return median([r[key] or 0.0 for r in rows if r["test"] == test and r["server"] == server])

    out = ["\n### Targets\n", "| target | zerohttp msg/s | peer msg/s | ratio "
           "| µs CPU/msg, zerohttp / peer | wanted | met |",
           "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    targets = TARGETS + [(t, p, 0.0) for t in TESTS if t.endswith("deflate") for p in SERVERS[1:]]
    for (test, peer, wanted), ours in itertools.product(targets, ["zerohttp", *TREES]):
        zh, other = rate(test, ours), rate(test, peer)
        if zh != zh or other != other:
            continue
        ratio = zh / other
        met = ("yes" if ratio >= wanted else "**no**") if wanted else "-"
        want = f">= {wanted:.1f}x" if wanted else "(no target)"
        cost = "server_us_per_msg"
        us = f"{rate(test, ours, cost):.1f} / {rate(test, peer, cost):.1f}"
        out.append(
            f"| {test}: {ours} vs {peer} | {zh:,.0f} | {other:,.0f} | {ratio:.2f}x | {us} "
            f"| {want} | {met} |"
        )
    return out


def idle_table(rows: list[dict[str, Any]], count: int) -> list[str]:
    out = [f"\n### {count:,} idle WebSockets: server RSS (VmRSS of the process tree)\n",
           "| server | deflate | opened | RSS before MiB | RSS with them MiB | KiB per WebSocket "
           "| fds per WebSocket | open s | all ok |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    keys = sorted({(r["server"], r["deflate_offered"]) for r in rows}, key=lambda k: (k[1], k[0]))
    for server, deflate in keys:
        rs = [r for r in rows if r["server"] == server and r["deflate_offered"] == deflate]
        used = "offered, used" if rs[0]["deflate"] else "offered" if deflate else "no"
        out.append(
            f"| {server} | {used} "
            f"| {median([r['opened'] for r in rs]):,.0f} "
            f"| {median([r['base_rss_kib'] for r in rs]) / 1024:.1f} "
            f"| {median([r['rss_kib'] for r in rs]) / 1024:.1f} "
            f"| {median([r['kib_per_conn'] or 0 for r in rs]):.1f} "
            f"| {median([r['fds_per_conn'] or 0 for r in rs]):.2f} "
            f"| {median([r['open_seconds'] for r in rs]):.1f} "
            f"| {'yes' if all(r['ok'] for r in rs) else 'NO: ' + rs[0]['first_error']} |"
        )
    zh = [r for r in rows if r["server"] == "zerohttp"]
    for peer in sorted({r["server"] for r in rows} - {"zerohttp"}):
        for deflate in (False, True):
            a = [r["rss_kib"] for r in zh if r["deflate_offered"] == deflate]
            b = [
                r["rss_kib"]
                for r in rows
                if r["server"] == peer and r["deflate_offered"] == deflate
            ]
            if a and b:
                offered = "offered" if deflate else "not offered"
                out.append(f"\nzerohttp / {peer} RSS with {count:,} idle (deflate {offered}): "
                           f"{median(a) / 1024:.1f} / {median(b) / 1024:.1f} MiB = "
                           f"{median(a) / median(b):.2f}x")  # fmt: skip
    return out


def versions(python: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({p: m.version(p) for p in ['uvicorn', 'hypercorn', 'websockets', "
        "'wsproto', 'uvloop', 'httptools']} | {'python': sys.version.split()[0]}))"
    )
    out: dict[str, str] = json.loads(
        subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "zerohttp"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    out["zerohttp tree"] = f"{REPO} @ {head}{' (modified)' if dirty else ''}"
    out["gcc"] = subprocess.run(
        ["gcc", "-dumpversion"], capture_output=True, text=True
    ).stdout.strip()
    return out


# ----------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default="/work/main/.venv", help="where the servers are installed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--tests", default=",".join(TESTS), help="comma-separated, or 'none'")
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--idle", type=int, default=10000, help="idle WebSockets (0: skip)")
    ap.add_argument("--idle-servers", default="zerohttp,uvicorn,hypercorn")
    ap.add_argument("--out", default="/tmp/ws_bench.json")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                    help="another zerohttp, from source tree DIR (a git archive)")  # fmt: skip
    args = ap.parse_args()
    for spec in args.tree:
        name, _, tree = spec.partition("=")
        TREES[name] = Path(tree).resolve()
    bin_dir = f"{args.venv}/bin"
    servers = args.servers.split(",") + [t for t in TREES if t not in args.servers.split(",")]
    tests = [] if args.tests == "none" else args.tests.split(",")
    client = build_client()
    log_dir = Path("/tmp/ws_bench_logs")
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.idle + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by servers and client
    if args.idle and want < args.idle + 100:
        sys.exit(f"ws_bench: RLIMIT_NOFILE hard limit {hard} is below --idle {args.idle}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    info = versions(f"{bin_dir}/python")
    rows: list[dict[str, Any]] = []
    idle_rows: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
        for name in order:
            if not tests:
                break
            server = Server(name, bin_dir, log_dir)
            try:
                for test in tests:
                    r = run_load(client, server, test, args.seconds, args.warmup)
                    r.update(server=name, test=test, round=rnd)
                    rows.append(r)
                    print(f"round {rnd} {name:9} {test:17} {r['rate']:10,.0f} msg/s  server "
                          f"{r['server_cpu_share']:.2f} client {r['client_cpu_share']:.2f} CPU"
                          f"{'' if r['ok'] else '  NOT OK: ' + r['first_error']}",
                          file=sys.stderr)  # fmt: skip
            finally:
                server.stop()
        idle_order = [s for s in order if s in args.idle_servers.split(",")]
        for name in idle_order if args.idle else []:
            for deflate in (False, True):
                server = Server(name, bin_dir, log_dir)
                try:
                    r = run_idle(client, server, args.idle, deflate)
                finally:
                    server.stop()
                r.update(server=name, round=rnd, deflate_offered=deflate)
                idle_rows.append(r)
                print(f"round {rnd} {name:9} idle{'-deflate' if deflate else '':9} "
                      f"{r['opened']} open, RSS {r['base_rss_kib'] / 1024:.1f} -> "
                      f"{r['rss_kib'] / 1024:.1f} MiB", file=sys.stderr)  # fmt: skip
    lines = ["```", "flock -x /tmp/zh-bench.lock python3 benchmarks/ws_bench.py "
             + " ".join(sys.argv[1:]), "```", "",
             "; ".join(f"{k} {v}" for k, v in info.items()),
             f"; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]  # fmt: skip
    if rows:
        lines += target_table(rows) + load_tables(rows, tests, servers)
    if idle_rows:
        lines += idle_table(idle_rows, args.idle)
    print("\n".join(lines))
    Path(args.out).write_text(json.dumps(dict(info=info, load=rows, idle=idle_rows), indent=1))


if __name__ == "__main__":
    main()
