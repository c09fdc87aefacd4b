"""Start zerohttp with one stage of its access log switched off, to see under load what
each stage costs (run the variants side by side with ``ab_static.py``).

    python3 benchmarks/ab_static.py \\
      --server 'nolog=python -m zerohttp {root} --port {port} --log-level warning' \\
      --server 'no-add=env ZH_VARIANT=no-add python benchmarks/log_ablation.py {root} \\
                --port {port} --log-level warning --access-log combined --access-log-file F'

The variants patch the access log of the tree *before* issue 21 (9fddd05: one
``AccessRecord`` per response, a line function over it, a list of lines joined and
written by a thread once a second); on a later tree only ``full`` is meaningful:

- ``noop-response``: ``ResponseLog.response`` does nothing (what is left: the drivers'
  calls and the peer address looked up per connection);
- ``const-line``: the record is built and a constant line of the same length buffered
  and written (what is left: everything but formatting the line);
- ``no-add``: record and line built, then dropped (no buffering, no writing);
- ``no-flush``: lines buffered, then dropped once a second instead of written;
- ``full``: nothing switched off.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from zerohttp.http import accesslog, responselog

VARIANT = os.environ.get("ZH_VARIANT", "full")


def patch(variant: str) -> None:
    log: Any = accesslog.AccessLog
    if variant == "noop-response":
        responselog.ResponseLog.response = lambda self, *args: None  # type: ignore[method-assign]
    elif variant == "no-add":
        log.add = lambda self, line: None
    elif variant == "no-flush":

        async def flush(self: Any) -> None:
            self._lines.clear()

        log.flush = flush
    elif variant == "const-line":
        init = log.__init__

        def constant_line(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self.line = lambda record: b"x" * 130

        log.__init__ = constant_line
    elif variant != "full":
        sys.exit(f"log_ablation: unknown variant {variant!r}")


if __name__ == "__main__":
    patch(VARIANT)
    sys.argv[0] = "zerohttp"
    runpy.run_module("zerohttp", run_name="__main__")
