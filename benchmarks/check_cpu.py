"""CPU time of one ``zerohttp --check URL``: the health check a container runs every few
seconds, so its cost is paid all day by every replica.

Starts ``zerohttp ROOT --port 0`` (ROOT holding an ``index.html``, so releases without
``--health-path`` compare too) from the given interpreter, then runs the console script
``zerohttp --check http://127.0.0.1:PORT/`` ``--runs`` times and
reports the median user+system CPU of each run (``RUSAGE_CHILDREN`` around the subprocess),
beside the same interpreter's ``python -c pass`` as the floor no check can go under.

    python3 benchmarks/check_cpu.py [--python .venv/bin/python] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def child_cpu_ms(argv: Sequence[str]) -> float:
    """User+system CPU milliseconds of one run of ``argv`` (which must exit 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter with zerohttp installed")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    python = os.path.abspath(args.python)
    script = str(Path(python).with_name("zerohttp"))
    with tempfile.TemporaryDirectory() as root:
        Path(root, "index.html").write_text("<!doctype html><title>ok</title>\n")
        server = subprocess.Popen(
            [python, "-m", "zerohttp", root, "--port", "0"],
            cwd="/tmp",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stderr is not None
            banner = server.stderr.readline()
            match = re.search(r"on http://127\.0\.0\.1:(\d+)/", banner)
            if not match:
                sys.exit(f"check_cpu: no banner from the server: {banner!r}")
            url = f"http://127.0.0.1:{match[1]}/"
            check = [child_cpu_ms([script, "--check", url]) for _ in range(args.runs)]
            floor = [child_cpu_ms([python, "-c", "pass"]) for _ in range(args.runs)]
        finally:
            server.terminate()
            server.wait(10)
    print(f"```\npython3 benchmarks/check_cpu.py --python {args.python} --runs {args.runs}\n```\n")
    print("| command | CPU ms, median | min | max |")
    print("|---|---:|---:|---:|")
    for name, values in ((f"zerohttp --check {url}", check), ("python -c pass", floor)):
        low, median, high = min(values), statistics.median(values), max(values)
        print(f"| `{name}` | {median:.1f} | {low:.1f} | {high:.1f} |")


if __name__ == "__main__":
    main()
