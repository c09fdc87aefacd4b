"""Size and time per level of each coder zerohttp compresses with, on a real JS/CSS/HTML corpus.

The corpus: every .js and .css under /usr/share/javascript (Debian's libjs-jquery,
libjs-bootstrap5, libjs-d3, sphinx) and the Python documentation's HTML
(/usr/share/doc/python3*/html, from python3-doc), deduplicated by content and capped at
``--html-mib``. Each file is compressed on its own, as the server does, with the same
``Codec`` (zstd with its window capped at 8 MiB). Time is CPU time per MiB of input on one
core; run pinned and under the exclusive lock:

    flock -x /tmp/zh-bench.lock taskset -c 0 python benchmarks/compress_levels.py

It prints one row per coding and level and, for a bound in ms per MiB, the level of each
coder that ``codecs.LEVELS`` should hold: among the levels within the bound, the fastest
whose output is within 0.1 % of the smallest.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import time

from zerohttp.static.compress.codecs import TIME_BOUND_MS_PER_MIB, Codec

LEVEL_RANGES = {"gzip": range(1, 10), "br": range(0, 12), "zstd": range(1, 23)}
MIB = 1024 * 1024


def corpus(html_mib: float) -> list[bytes]:
    """The files' contents, JS/CSS first, then HTML up to ``html_mib``."""
    seen: set[bytes] = set()
    files: list[bytes] = []

    def add(path: str) -> int:
        if not os.path.isfile(path):
            return 0
        with open(path, "rb") as f:
            data = f.read()
        digest = hashlib.sha256(data).digest()
        if len(data) < 1024 or digest in seen:
            return 0
        seen.add(digest)
        files.append(data)
        return len(data)

    for pattern in ("/usr/share/javascript/**/*.js", "/usr/share/javascript/**/*.css"):
        for path in sorted(glob.glob(pattern, recursive=True)):
            add(os.path.realpath(path))
    budget = html_mib * MIB
    for path in sorted(glob.glob("/usr/share/doc/python3*/html/**/*.html", recursive=True)):
        if budget <= 0:
            break
        budget -= add(path)
    return files


def measure(codec: Codec, files: list[bytes]) -> tuple[int, float]:
    """Total compressed bytes, CPU seconds."""
    out = 0
    start = time.process_time()
    for data in files:
        out += len(codec.compress(data))
    return out, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--html-mib", type=float, default=4.0)
    parser.add_argument("--bound", type=float, default=TIME_BOUND_MS_PER_MIB, help="ms per MiB")
    args = parser.parse_args()
    files = corpus(args.html_mib)
    total = sum(len(f) for f in files)
    print(f"corpus: {len(files)} files, {total / MIB:.2f} MiB")
    print(f"{'coding':6} {'level':>5} {'ratio':>7} {'ms/MiB':>8}")
    chosen: dict[str, int] = {}
    for coding, levels in LEVEL_RANGES.items():
        within: list[tuple[int, float, int]] = []  # (bytes out, ms per MiB, level)
        for level in levels:
            out, seconds = measure(Codec(coding, level), files)
            ms_per_mib = seconds * 1000 / (total / MIB)
            print(f"{coding:6} {level:5} {out / total:7.4f} {ms_per_mib:8.1f}", flush=True)
            if ms_per_mib <= args.bound:
                within.append((out, ms_per_mib, level))
        if within:
            smallest = min(out for out, _, _ in within)
            good = [(ms, level) for out, ms, level in within if out <= smallest * 1.001]
            chosen[coding] = min(good)[1]
    print(f"levels within {args.bound:g} ms/MiB: {chosen}")


if __name__ == "__main__":
    main()
