"""How many calls one cached 1 KiB keep-alive GET makes, from ``data_received`` to the
last body byte: the request path's length, counted rather than timed.

    python3 benchmarks/hop_count.py            # the tree on PYTHONPATH (or installed)

A connection is driven in-process over an AF_UNIX socketpair (no event loop turns, as in
profile_request.py); ``sys.setprofile`` records every call made while ``data_received``
runs for one warm request. Printed: the Python-level calls (all, and zerohttp's own), the
calls into C, and the spine: the longest chain of zerohttp frames below ``data_received``
(each frame a hop), with the chain itself.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from profile_request import REQUEST, _Transport, small_file_setup  # the same connection

from zerohttp.http import connection as connection_module
from zerohttp.static.handler import StaticHandler

PACKAGE = os.path.dirname(os.path.dirname(connection_module.__file__))


def _where(frame: FrameType) -> str:
    code = frame.f_code
    name = os.path.relpath(code.co_filename, PACKAGE)
    return f"{name}:{getattr(code, 'co_qualname', code.co_name)}"


def count(one: Callable[[], None]) -> dict[str, Any]:
    calls = ours = c_calls = 0
    depth = 0
    chain: list[str] = []
    spine: list[str] = []
    order: list[str] = []

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls, ours, c_calls, depth, spine
        if event == "call":
            calls += 1
            if frame.f_code.co_filename.startswith(PACKAGE):
                ours += 1
                chain.append(_where(frame))
                order.append("  " * (len(chain) - 1) + chain[-1])
                if len(chain) > len(spine):
                    spine = list(chain)
        elif event == "return":
            if frame.f_code.co_filename.startswith(PACKAGE) and chain:
                chain.pop()
        elif event == "c_call":
            c_calls += 1

    sys.setprofile(profiler)
    try:
        one()
    finally:
        sys.setprofile(None)
    return {"python": calls, "zerohttp": ours, "c": c_calls, "spine": spine, "order": order}


def main() -> None:
    config, _, sender, drain = small_file_setup()

    async def run() -> dict[str, Any]:
        state = connection_module.ServerState(config, StaticHandler(config), zero_copy=True)
        connection = connection_module.HTTPConnection(state)
        connection.connection_made(_Transport(sender))  # type: ignore[arg-type]
        for _ in range(3):  # warm: the file is in the open-file cache, the Date rendered
            connection.data_received(REQUEST)
            drain()
        result = count(lambda: connection.data_received(REQUEST))
        drain()
        return result

    result = asyncio.run(run())
    print("## Hop count: one cached 1 KiB keep-alive GET, data_received to the last byte\n")
    print("`python3 benchmarks/hop_count.py`\n")
    print("| calls | count |\n|---|---:|")
    print(f"| Python functions (all) | {result['python']} |")
    print(f"| of which zerohttp's | {result['zerohttp']} |")
    print(f"| calls into C | {result['c']} |")
    print(f"| spine (deepest chain of zerohttp frames) | {len(result['spine'])} |\n")
    print("Spine: " + " → ".join(f"`{hop}`" for hop in result["spine"]))
    print("\nzerohttp's calls in order, indented by depth:\n\n```")
    print("\n".join(result["order"]))
    print("```")


if __name__ == "__main__":
    main()
