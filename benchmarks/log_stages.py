"""What one access-log line costs in-process: the call the drivers make per response, for
each format, and a wrk-like and a browser-like request head.

    taskset -c 0 python benchmarks/log_stages.py            # this tree
    PYTHONPATH=/tmp/zh-src-main taskset -c 0 python benchmarks/log_stages.py   # another

Works on the trees before and after issue 21 (``ResponseLog.report`` where it exists,
else ``ResponseLog.response``); lines go to the log's memory buffer, emptied as the
flusher would. Hot-cache figures: under load the same code costs more (benchmarks/
RESULTS.md, "Issue 21", for the profile under load).
"""

from __future__ import annotations

import timeit
from typing import Any

from zerohttp.http.accesslog import AccessLog
from zerohttp.http.responselog import ResponseLog
from zerohttp.message.response import RequestHead

N = 100_000
WRK = RequestHead(b"GET", b"/small.html", b"1.1", ((b"host", b"127.0.0.1:8080"),))
BROWSER = RequestHead(
    b"GET",
    b"/static/app.js?v=3",
    b"1.1",
    (
        (b"host", b"example.com"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
        (b"accept", b"*/*"),
        (b"referer", b"https://example.com/index.html"),
        (b"accept-encoding", b"gzip, deflate, br"),
    ),
)


def empty(log: Any) -> None:
    """Drop what is buffered (the tree before: a list of lines; after: a bytearray)."""
    buffered = getattr(log, "_buffer", None)
    if buffered is None:
        buffered = log._lines
    if len(buffered) > 20_000:
        buffered.clear()


def main() -> None:
    print("| format | request | µs per response |")
    print("|---|---|---:|")
    for form in ("common", "combined", "json"):
        log = AccessLog(form, "/dev/null")  # type: ignore[arg-type]
        reports = ResponseLog(log, None)
        report = getattr(reports, "report", reports.response)
        for label, request in (("wrk", WRK), ("browser", BROWSER)):

            def one(request: RequestHead = request, report: Any = report, log: Any = log) -> None:
                report("127.0.0.1", request, 200, "sendfile", 1024, 0.0)
                empty(log)

            best = min(timeit.repeat(one, number=N, repeat=5)) / N * 1e6
            print(f"| {form} | {label} | {best:.2f} |")


if __name__ == "__main__":
    main()
