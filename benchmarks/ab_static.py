"""Paired A/B of static servers on one URL: short wrk runs, alternating, ratios per pair.

    python3 benchmarks/ab_static.py \\
        --server before='/tmp/zh-before-venv/bin/python -m zerohttp {root} --port {port}' \\
        --server after='/tmp/zerohttp-bench-venv/bin/python -m zerohttp {root} --port {port}'

peerbench runs each server's tests minutes apart, so on a shared box a burst of someone
else's work lands on one server and not the other. Here every server is up at once (idle
ones cost nothing), each pinned to CPU 0; `wrk -t1 -c64` pinned to CPU 1 loads them in
turn for --seconds each, the order flipping every pass, so neighbouring runs see the same
background. The first server is the reference: for every pass the others' req/s and server
CPU µs per request are divided by its own, and the medians of those per-pass ratios are
printed along with the medians of the raw figures. Root: peerbench's corpus.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERBENCH = Path(os.environ.get("PEERBENCH", HERE.parent.parent / "shared" / "peerbench"))
sys.path.insert(0, str(PEERBENCH))
import bench as pb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", action="append", required=True, metavar="NAME=CMD",
                    help="command with {root} and {port}; the first is the reference")  # fmt: skip
    ap.add_argument("--path", default="/small.html")
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                    help="sent with each request (peerbench's close test: 'Connection: close')")
    ap.add_argument("--root", default=os.environ.get("PEERBENCH_ROOT", "/tmp/peerbench-root"))
    args = ap.parse_args()
    names, procs, ports = [], [], []
    try:
        for i, spec in enumerate(args.server):
            name, _, cmd = spec.partition("=")
            port = pb.free_port(18600 + 10 * i)
            argv = shlex.split(cmd.format(root=args.root, port=port))
            proc = subprocess.Popen(["taskset", "-c", pb.SERVER_CPU, *argv], cwd="/tmp",
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
            names.append(name)
            procs.append(proc)
            ports.append(port)
            deadline = time.monotonic() + 20
            while not pb.http_ok(f"http://{pb.HOST}:{port}{args.path}"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"ab_static: {name} did not answer 200 on {args.path}")
                time.sleep(0.2)
            pb.wrk(f"http://{pb.HOST}:{port}{args.path}", args.conns, 2, args.header)  # warm-up
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for k in range(args.passes):
            order = list(range(len(names)))
            if k % 2:
                order.reverse()
            for i in order:
                with pb.Probe(procs[i].pid) as pr:
                    r = pb.wrk(f"http://{pb.HOST}:{ports[i]}{args.path}", args.conns,
                               args.seconds, args.header)  # fmt: skip
                us = pr.cpu / r["requests"] * 1e6 if r["requests"] else float("nan")
                runs[names[i]].append(dict(rps=r["rps"], us=us, others=pr.foreign / pr.wall,
                                           bad=r["non2xx"] + sum(r["socket_errors"].values())))
            print(f"pass {k + 1}: " + ", ".join(
                f"{n} {runs[n][-1]['rps']:,.0f} req/s {runs[n][-1]['us']:.1f} µs "
                f"(others {runs[n][-1]['others']:.2f})" for n in names), file=sys.stderr)  # fmt: skip
    finally:
        for p in procs:
            pb.stop(p)
    ref = names[0]
    print(f"```\npython3 benchmarks/ab_static.py {shlex.join(sys.argv[1:])}\n```\n")
    sent = "".join(f", `{h}`" for h in args.header)
    print(f"GET {args.path}{sent}, {args.passes} passes × {args.seconds} s per server, "
          f"`wrk -t1 -c{args.conns}` on CPU 1, servers on CPU 0\n")
    print(f"| server | req/s median | µs CPU/req median | req/s ÷ {ref} (median of passes) "
          f"| µs/req ÷ {ref} | others (cores, median) | errors |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in names:
        rr = [a["rps"] / b["rps"] for a, b in zip(runs[n], runs[ref], strict=True)]
        uu = [a["us"] / b["us"] for a, b in zip(runs[n], runs[ref], strict=True)]
        print(f"| {n} | {statistics.median(x['rps'] for x in runs[n]):,.0f} | "
              f"{statistics.median(x['us'] for x in runs[n]):.1f} | "
              f"{statistics.median(rr):.3f} ({min(rr):.2f}–{max(rr):.2f}) | "
              f"{statistics.median(uu):.3f} ({min(uu):.2f}–{max(uu):.2f}) | "
              f"{statistics.median(x['others'] for x in runs[n]):.2f} | "
              f"{sum(x['bad'] for x in runs[n])} |")  # fmt: skip


if __name__ == "__main__":
    main()
