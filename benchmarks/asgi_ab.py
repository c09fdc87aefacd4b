"""A/B of zerohttp trees hosting the bench apps, with uvicorn and Granian in the same run.

    flock -x /tmp/zh-bench.lock python3 benchmarks/asgi_ab.py \\
        --python /tmp/asgiperf-venv/bin/python --tree base=/tmp/asgiperf-base --tree new=. \\
        --tests raw-json,json,small,zh-static-small --procs 2 --rounds 2 --duration 4

Each ``--tree NAME=DIR`` runs ``python -m zerohttp --app`` with PYTHONPATH=DIR (its zerohttp
shadows the environment's); ``--peers`` adds uvicorn and Granian from the same environment
(their argv as in asgi_bench.py). Every round starts ``--procs`` fresh processes per server, in
an order that rotates each round, and loads every test on each (``wrk -t1 -c64``, server on
CPU 0, wrk on CPU 1, peerbench's measuring code). Reported per server and test: the median
req/s and server CPU µs per request over all processes, and each tree's ratio to the first.
The bare variants (raw-*) add one stage each to a bare ASGI app, so differences of CPU per
request between them are per-stage costs on each server (see bench_app.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from asgi_bench import APPS, JSON_BYTES, TESTS, build_root, pb, server_argv  # noqa: E402

EXTRA_TESTS: dict[str, tuple[str, str, str]] = {
    "raw-recv": ("raw_recv_app", "/json", "json"),
    "raw-listen": ("raw_listen_app", "/json", "json"),
    "raw-pathsend": ("raw_pathsend_app", "/small", "small.html"),
}
ALL_TESTS = {**TESTS, **EXTRA_TESTS}


def run_process(name: str, argv: list[str], env: dict[str, str], attr: str,
                tests: list[str], args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    port = pb.free_port(18600)
    argv = [a.replace("{port}", str(port)) for a in argv]
    base = f"http://{pb.HOST}:{port}"
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(["taskset", "-c", pb.SERVER_CPU, *argv], stdout=quiet, stderr=quiet,
                            env=env, cwd=APPS, start_new_session=True)  # fmt: skip
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 30
        first = ALL_TESTS[tests[0]][1]
        while not pb.http_ok(base + first):
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"  !! {name} {attr} did not start", file=sys.stderr)
                return out
            time.sleep(0.2)
        pb.wrk(base + first, args.conns, 1, [])  # warm-up, discarded
        for t in tests:
            pb.wait_quiet(args.quiet_wait, pb.tree(proc.pid))
            with pb.Probe(proc.pid) as pr:
                r = pb.wrk(base + ALL_TESTS[t][1], args.conns, args.duration, [])
            cpu = pr.as_dict()["server_cpu_s"]
            out[t] = dict(rps=r["rps"], us=cpu / r["requests"] * 1e6 if r["requests"] else None,
                          non2xx=r["non2xx"])  # fmt: skip
            print(f"  {name:>10} {t:>16}: {r['rps']:8.0f} req/s {out[t]['us']:6.1f} us/req"
                  f" non2xx {r['non2xx']}", file=sys.stderr)  # fmt: skip
    finally:
        pb.stop(proc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/tmp/asgiperf-venv/bin/python")
    ap.add_argument("--tree", action="append", default=[], help="NAME=DIR, repeatable")
    ap.add_argument("--peers", default="", help="comma-separated: uvicorn,granian")
    ap.add_argument("--tests", default="raw-json,json,small,zh-static-small")
    ap.add_argument("--procs", type=int, default=2, help="processes per server per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--quiet-wait", type=float, default=3)
    ap.add_argument("--root", type=Path, default=Path("/tmp/asgi-bench-root"))
    ap.add_argument("--out", type=Path, default=None, help="JSON of every sample")
    args = ap.parse_args()
    build_root(args.root)
    tests = [t for t in args.tests.split(",") if t]
    bin_dir = str(Path(args.python).parent)
    servers: list[tuple[str, str, dict[str, str]]] = []  # name, kind, env
    base_env = dict(os.environ, ASGI_BENCH_ROOT=str(args.root))
    for spec in args.tree:
        name, _, tree = spec.partition("=")
        servers.append((name, "zerohttp", dict(base_env, PYTHONPATH=str(Path(tree).resolve()))))
    for peer in [p for p in args.peers.split(",") if p]:
        # the app imports zerohttp.StaticFiles: from the first tree
        first = servers[0][2] if servers else base_env
        servers.append((peer, peer, dict(base_env, PYTHONPATH=first.get("PYTHONPATH", ""))))
    by_app: dict[str, list[str]] = {}
    for t in tests:
        by_app.setdefault(ALL_TESTS[t][0], []).append(t)
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {s[0]: {} for s in servers}
    for rnd in range(args.rounds):
        order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
        print(f"round {rnd + 1}/{args.rounds}", file=sys.stderr)
        for _ in range(args.procs):
            for name, kind, env in order:
                for attr, app_tests in by_app.items():
                    argv = server_argv(kind, bin_dir, attr, 0)
                    argv = [a if a != "0" else "{port}" for a in argv]
                    got = run_process(name, argv, env, attr, app_tests, args)
                    for t, v in got.items():
                        samples[name].setdefault(t, []).append(v)
    if args.out:
        args.out.write_text(json.dumps(samples, indent=1))
    print(report(samples, tests, [s[0] for s in servers]))


def med(vals: list[dict[str, Any]], key: str) -> float | None:
    xs = [v[key] for v in vals if v.get(key) is not None]
    return statistics.median(xs) if xs else None


def report(samples: dict[str, dict[str, list[dict[str, Any]]]], tests: list[str],
           names: list[str]) -> str:  # fmt: skip
    first = names[0]
    lines = ["| test | " + " | ".join(f"{n} req/s (µs/req)" for n in names)
             + " | " + " | ".join(f"{n}/{first}" for n in names[1:]) + " |",
             "|---|" + "---:|" * (2 * len(names) - 1)]  # fmt: skip
    for t in tests:
        cells, rates = [], []
        for n in names:
            vals = samples[n].get(t, [])
            rate, us = med(vals, "rps"), med(vals, "us")
            rates.append(rate)
            cells.append(f"{rate:,.0f} ({us:.1f}) n={len(vals)}" if rate and us else "-")
        ratios = [f"{r / rates[0]:.3f}" if r and rates[0] else "-" for r in rates[1:]]
        lines.append(f"| {t} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    _ = JSON_BYTES
    main()
