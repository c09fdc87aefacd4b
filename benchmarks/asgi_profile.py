"""Where a zerohttp --app request spends its time: cProfile of the server process under load.

    python3 benchmarks/asgi_profile.py --python /tmp/zerohttp-bench-venv/bin/python --path /medium

Starts `zerohttp --app bench_app:ATTR` (benchmarks/apps/bench_app.py, uvloop) pinned to CPU 0
inside cProfile, loads PATH with `wrk -t1 -c64` pinned to CPU 1 for --seconds, stops the
server with SIGINT and prints: the functions with the most own time, and the own time summed
by package (zerohttp's layers, starlette, fastapi, anyio, pydantic, the event loop, C builtins
such as the socket calls). cProfile slows Python code down (C calls much less), so read the
shares, not the rate. Only the main thread is profiled: anyio's worker threads (Starlette runs
FileResponse's os.stat there) show up as the wake-ups the main thread waits for.
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
sys.path.insert(0, str(HERE))
from asgi_bench import JSON_BYTES, build_root  # noqa: E402
from serverproc import HOST, free_port, start_server, stop_server  # noqa: E402

WRAPPER = """
import cProfile, sys
from zerohttp.cli import main
out = sys.argv.pop(1)
prof = cProfile.Profile()
prof.enable()
try:
    main()
finally:
    prof.disable()
    prof.dump_stats(out)
"""


def area(filename: str, name: str) -> str:
    """A package-level bucket for one profiled function."""
    if filename == "~":  # C function: "<built-in method ...>" / "<method 'x' of 'y' objects>"
        if "socket" in name or "sendfile" in name or "os." in name or "posix" in name:
            return "syscalls (C)"
        return "C builtins"
    path = filename.replace("\\", "/")
    for marker in ("/zerohttp/", "/starlette/", "/fastapi/", "/anyio/", "/pydantic", "/uvloop/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            pkg = marker.strip("/")
            if pkg == "zerohttp" and "/" in rest:
                pkg += "/" + rest.split("/", 1)[0]
            return pkg
    if "/asyncio/" in path:
        return "asyncio (stdlib)"
    return "other Python (stdlib)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/tmp/zerohttp-bench-venv/bin/python")
    ap.add_argument("--attr", default="app", help="bench_app attribute (app, starlette_static_app)")
    ap.add_argument("--path", default="/medium")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--only", default="", help="list only functions whose file path contains "
                    "this (e.g. /zerohttp/); the area table stays whole")
    ap.add_argument("--stats-out", default="", help="also keep the pstats file here")
    ap.add_argument("--root", type=Path, default=Path("/tmp/asgi-bench-root"))
    args = ap.parse_args()
    build_root(args.root)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="asgi-profile-") as tmp:
        stats_file = os.path.join(tmp, "zerohttp.pstats")
        cmd = ["taskset", "-c", "0", args.python, "-c", WRAPPER, stats_file, "--app",
               f"bench_app:{args.attr}", "--host", HOST, "--port", str(port), "--loop", "uvloop",
               "--log-level", "warning"]  # fmt: skip
        os.environ["ASGI_BENCH_ROOT"] = str(args.root)
        cwd = os.getcwd()
        os.chdir(APPS)  # bench_app importable; no zerohttp/ source tree shadows the install
        try:
            proc = start_server(cmd, port, subprocess.DEVNULL)
        finally:
            os.chdir(cwd)
        url = f"http://{HOST}:{port}{args.path}"
        try:
            check = subprocess.run(["curl", "-s", url], capture_output=True, timeout=10).stdout
            if args.path == "/json" and check != JSON_BYTES:
                raise SystemExit(f"asgi_profile: unexpected body from {url}")
            wrk = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{args.conns}",
                                  f"-d{args.seconds}s", url], capture_output=True, text=True)  # fmt: skip
            rps = next((ln.split()[1] for ln in wrk.stdout.splitlines()
                        if ln.startswith("Requests/sec")), "?")  # fmt: skip
            reqs = next((int(ln.split()[0]) for ln in wrk.stdout.splitlines()
                         if " requests in " in ln), 0)  # fmt: skip
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                stop_server(proc)
        for _ in range(50):
            if os.path.exists(stats_file):
                break
            time.sleep(0.1)
        st = pstats.Stats(stats_file)
        if args.stats_out:
            st.dump_stats(args.stats_out)
    raw = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    calls_of = {k: v[1] for k, v in raw.items()}
    print(f"# zerohttp --app bench_app:{args.attr}, GET {args.path}, wrk -t1 -c{args.conns} "
          f"-d{args.seconds}s under cProfile: {rps} req/s (profiled)")  # fmt: skip
    per = max(reqs, 1)
    print(f"\nown time in profiled functions: {total:.2f} s over {reqs:,} requests "
          f"({total / per * 1e6:.0f} µs/request under cProfile)\n")
    by_area: dict[str, float] = defaultdict(float)
    for (filename, _, name), v in raw.items():
        by_area[area(filename, name)] += v[2]
    print("| area | own s | share | µs/request |\n|---|---:|---:|---:|")
    for a, t in sorted(by_area.items(), key=lambda x: -x[1]):
        print(f"| {a} | {t:.2f} | {t / total:.0%} | {t / per * 1e6:.1f} |")
    which = f"functions in {args.only}" if args.only else "function"
    print(f"\n| {which} (top {args.top} by own time) | calls/request | own µs/request | share "
          "| cum µs/request |")
    print("|---|---:|---:|---:|---:|")
    rows = [kv for kv in raw.items() if args.only in kv[0][0]]
    top = sorted(rows, key=lambda kv: -kv[1][2])[: args.top]
    for (filename, line, name), v in top:
        short = filename.split("site-packages/")[-1] if filename != "~" else ""
        where = f"{short}:{line} {name}" if short else name
        print(f"| `{where}` | {calls_of[(filename, line, name)] / per:.2f} | "
              f"{v[2] / per * 1e6:.1f} | {v[2] / total:.1%} | {v[3] / per * 1e6:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
