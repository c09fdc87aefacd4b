"""Where a WebSocket server spends its time per message: the server under cProfile (in its
own process, pinned to CPU 0) while benchmarks/ws_load.c (CPU 1) drives the echo or the
broadcast load of ws_bench.py; pstats' figures divided by the messages the client counted.

    flock -x /tmp/zh-bench.lock python3 benchmarks/ws_profile.py [--server zerohttp|uvicorn]
        [--test echo|broadcast] [--seconds 8] [--top 40]

cProfile roughly doubles the cost of every Python call, so read the per-message figures as
shares and rankings, not as absolute costs; calls per message are exact. The event loop's
own C work (uvloop's reads, epoll, its callbacks' glue) is the self time of the function that
runs the loop (zerohttp's ``runner.run_one``, uvicorn's ``Server.serve``... ``run``), and a
Cython transport's ``write`` syscall is the self time of its Python caller. (For absolute,
native and kernel shares use ``perf record -g -p PID`` or ``py-spy record --native``.)
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import signal
import subprocess
import sys
import time

from ws_bench import APPS, HOST, PEERBENCH, REPO, TESTS, build_client

sys.path.insert(0, str(PEERBENCH))
import bench as pb  # peerbench's helpers


def server_argv(server: str, bin_dir: str, port: int, out: str) -> list[str]:
    prof = ["taskset", "-c", pb.SERVER_CPU, f"{bin_dir}/python", "-m", "cProfile", "-o", out]
    if server == "zerohttp":
        return [*prof, "-m", "zerohttp", "--app", "ws_app:app", "--host", HOST, "--port",
                str(port), "--loop", "uvloop", "--log-level", "warning"]  # fmt: skip
    return [*prof, "-m", "uvicorn", "ws_app:app", "--host", HOST, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--ws", "auto", "--no-access-log",
            "--log-level", "warning"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default="/work/main/.venv")
    ap.add_argument("--server", default="zerohttp", choices=["zerohttp", "uvicorn"])
    ap.add_argument("--test", default="echo", choices=sorted(TESTS))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--out", default="/tmp/ws_profile.prof")
    args = ap.parse_args()
    client = build_client()
    port = pb.free_port(18600)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = server_argv(args.server, f"{args.venv}/bin", port, args.out)
    server = subprocess.Popen(argv, cwd=APPS, env=env, stdin=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not pb.http_ok(f"http://{HOST}:{port}/", timeout=0.5):
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("ws_profile: the server did not start")
            time.sleep(0.1)
        mode, path, conns, deflate = TESTS[args.test]
        load = ["taskset", "-c", pb.CLIENT_CPU, str(client), mode, HOST, str(port), path,
                "-c", str(conns), "-d", str(args.seconds), "-w", "0"]  # fmt: skip
        if deflate:
            load.append("-z")
        out = subprocess.run(load, capture_output=True, text=True).stdout.splitlines()[-1]
    finally:
        server.send_signal(signal.SIGINT)  # cProfile writes its file as the server returns
        server.wait(30)
    import json

    result = json.loads(out)
    messages = result["total"]
    stats = pstats.Stats(args.out, stream=io.StringIO())
    total_tt = stats.total_tt  # type: ignore[attr-defined]
    print(f"```\npython3 benchmarks/ws_profile.py --server {args.server} --test {args.test} "
          f"--seconds {args.seconds}\n```\n")  # fmt: skip
    per_message = total_tt / messages * 1e6
    print(f"{args.server}, {args.test}: {messages:,} messages received by the client, "
          f"{result['rate']:,.0f} msg/s under cProfile; profiled CPU {total_tt:.2f} s = "
          f"{per_message:.1f} µs per message (profiler's cost included)\n")  # fmt: skip
    rows = []
    for (file, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = file.split("site-packages/")[-1].split(str(REPO) + "/")[-1]
        rows.append((tt, ct, nc, f"{short}:{line}({name})"))
    for key, title in ((0, "self time"), (1, "cumulative time")):
        print(f"\nTop {args.top} by {title}, per message:\n")
        print("| function | calls/msg | self µs/msg | cum µs/msg | self share |")
        print("|---|---:|---:|---:|---:|")
        ranked = sorted(rows, key=lambda r: -r[key])
        if key == 1:  # per-message functions only, not the frames that started the server
            ranked = [r for r in ranked if r[2] >= messages / 2]
        for tt, ct, nc, where in ranked[: args.top]:
            print(f"| `{where}` | {nc / messages:.2f} | {tt / messages * 1e6:.2f} "
                  f"| {ct / messages * 1e6:.2f} | {tt / total_tt:.1%} |")  # fmt: skip


if __name__ == "__main__":
    main()
