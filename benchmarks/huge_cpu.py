"""CPU seconds per GB of one 1 GiB download: nginx against zerohttp at several turn sizes.

peerbench's "huge" test runs 3 curls per round, too few to separate effects of ~3 % from this
box's noise; this runs many, interleaved, and prints medians of server CPU (utime + stime of
the process tree, /proc) and curl's CPU (rusage) per GB. nginx uses peerbench's own config.

    python3 benchmarks/huge_cpu.py --python /tmp/zerohttp-bench-venv/bin/python --reps 10
    cd /tmp && python3 .../huge_cpu.py --python P --tree before=/tmp/zh-src-A --tree after=/tmp/zh-src-B

``--tree NAME=DIR`` (repeatable) compares source trees (DIR on PYTHONPATH, 4 MiB turns)
instead of turn sizes; run it outside the repository, or its zerohttp/ shadows the trees.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from serverproc import HOST, free_port, start_server, stop_server

HERE = Path(__file__).resolve().parent
PEERBENCH = HERE.parent.parent / "shared" / "peerbench"
TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """utime + stime in seconds of ``pid`` and its children (nginx has a master and a worker)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def nginx_command(root: str, port: int, run: str) -> list[str]:
    template = (PEERBENCH / "servers" / "nginx.conf.tmpl").read_text()
    conf = template.format(port=port, root=root, run=run, sendfile="on")
    Path(run, "nginx.conf").write_text(conf)
    return ["taskset", "-c", "0", "nginx", "-e", f"{run}/nginx-error.log", "-p", run, "-c",
            f"{run}/nginx.conf"]  # fmt: skip


def zerohttp_command(
    python: str, root: str, port: int, turn_bytes: int, tree: str = ""
) -> list[str]:
    code = (
        "import sys, zerohttp.body.zerocopy as z; from zerohttp.cli import main; "
        f"z.TURN_BYTES = {turn_bytes}; sys.argv[0] = 'zerohttp'; main()"
    )
    env = ["env", f"PYTHONPATH={tree}"] if tree else []
    return [*env, "taskset", "-c", "0", python, "-c", code, root, "--host", HOST, "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def download(port: int, pid: int, path: str) -> tuple[float, float]:
    """(server CPU s/GB, curl CPU s/GB) of one download."""
    server_before = tree_cpu(pid)
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    curl = ["taskset", "-c", "1", "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}"]
    result = subprocess.run(
        [*curl, f"http://{HOST}:{port}/{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    server = tree_cpu(pid) - server_before
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (usage.ru_utime + usage.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    gigabytes = int(result.stdout) / 1e9
    return server / gigabytes, client / gigabytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="python3", help="interpreter with zerohttp installed")
    parser.add_argument("--root", default="/tmp/peerbench-root")
    parser.add_argument("--file", default="huge.bin")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--turns", default="2,4,8", help="zerohttp TURN_BYTES variants, MiB")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help="compare source trees instead (DIR on PYTHONPATH, 4 MiB turns)")  # fmt: skip
    args = parser.parse_args()

    servers: dict[str, tuple[list[str], int]] = {}
    run = tempfile.mkdtemp(prefix="huge-cpu-")
    port = free_port()
    servers["nginx"] = (nginx_command(args.root, port, run), port)
    for name, tree in (t.split("=", 1) for t in args.tree):
        port = free_port()
        servers[name] = (zerohttp_command(args.python, args.root, port, 4 << 20, tree), port)
    for mib in [] if args.tree else args.turns.split(","):
        port = free_port()
        command = zerohttp_command(args.python, args.root, port, int(mib) << 20)
        servers[f"zerohttp, {mib} MiB turns"] = (command, port)
    procs = {name: start_server(cmd, p, subprocess.DEVNULL) for name, (cmd, p) in servers.items()}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    start = time.time()
    try:
        for _ in range(args.reps):
            for name, (_, port) in servers.items():
                samples[name].append(download(port, procs[name].pid, args.file))
    finally:
        for proc in procs.values():
            stop_server(proc)
    elapsed = time.time() - start
    print(
        f"{args.reps} downloads of {args.file} per server, interleaved; "
        f"server on CPU 0, curl on CPU 1; {elapsed:.0f} s\n"
    )
    print("| server | server CPU s/GB | curl CPU s/GB | total s/GB (median) | x nginx |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(s + c for s, c in samples["nginx"])
    for name, values in samples.items():
        total = statistics.median(s + c for s, c in values)
        server = statistics.median(s for s, _ in values)
        client = statistics.median(c for _, c in values)
        print(f"| {name} | {server:.3f} | {client:.3f} | {total:.3f} | {total / base:.2f} |")


if __name__ == "__main__":
    main()
