"""Where zerohttp's time per connection goes, in its own Python callbacks: timed in-process.

    PYTHONPATH=. python benchmarks/conn_stages.py --port 18900 --out /tmp/stages.json -- ROOT
    (then load it: taskset -c 1 wrk -t1 -c32 -d5s -H 'Connection: close' URL; SIGINT it)

Runs ``python -m zerohttp`` in this process with some ``HTTPConnection`` methods (and the
handler, the file-body send and the lingering close) wrapped in ``perf_counter_ns`` timers.
Times are inclusive (a callback's time contains the methods it calls) and each wrapper adds
its own overhead (calibrated and printed); compare the sum of the top-level callbacks with
the CPU per connection of an unwrapped run to see what is left to the loop and the kernel.
At exit it writes calls and mean µs per call and per connection to --out.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

# top-level callbacks from the loop, then what they call
METHODS = [
    "__init__",
    "connection_made",
    "data_received",
    "eof_received",
    "connection_lost",
    "_process",
    "_on_head",
    "_respond",
    "_send_file",
    "_response_done",
    "_close",
    "_close_now",
]


def wrap(owner: Any, name: str, table: dict[str, list[int]]) -> None:
    original: Callable[..., Any] = getattr(owner, name)
    cell = table.setdefault(f"{owner.__name__}.{name}", [0, 0])
    clock = time.perf_counter_ns

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return original(*args, **kwargs)
        finally:
            cell[0] += 1
            cell[1] += clock() - t0

    setattr(owner, name, timed)


def calibrate() -> float:
    """ns one wrapper adds around a call that does nothing."""

    class Dummy:
        def f(self) -> None:
            pass

    table: dict[str, list[int]] = {}
    d = Dummy()
    n = 200_000
    t0 = time.perf_counter_ns()
    for _ in range(n):
        d.f()
    bare = time.perf_counter_ns() - t0
    wrap(Dummy, "f", table)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        d.f()
    return (time.perf_counter_ns() - t0 - bare) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("zerohttp_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    from zerohttp.http import connection

    table: dict[str, list[int]] = {}
    for name in METHODS:
        if hasattr(connection.HTTPConnection, name):
            wrap(connection.HTTPConnection, name, table)
    from zerohttp.http.filesender import FileSender

    for name in ("socket", "send_now"):  # the socket object per connection, the send
        wrap(FileSender, name, table)
    overhead = calibrate()

    def dump() -> None:
        conns = table["HTTPConnection.connection_made"][0] or 1
        rows = {
            k: dict(calls=c, us_per_call=round(ns / c / 1000, 2) if c else 0,
                    us_per_conn=round(ns / conns / 1000, 2))
            for k, (c, ns) in table.items()
        }  # fmt: skip
        with open(args.out, "w") as f:
            json.dump(dict(connections=conns, wrapper_ns=round(overhead), rows=rows), f, indent=1)

    atexit.register(dump)
    from zerohttp.cli import main as zmain

    extra = args.zerohttp_args[1:] if args.zerohttp_args[:1] == ["--"] else args.zerohttp_args
    sys.argv = ["zerohttp", *extra]
    zmain()


if __name__ == "__main__":
    main()
