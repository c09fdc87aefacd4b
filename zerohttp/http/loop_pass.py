"""A check made at most once per pass of the event loop, for every request read in it.

Files that may be edited under a running server (the site's rules, the password file) are
revalidated by ``stat`` (~2-3 µs each), too much to pay per request on the hot path. A
request read in this pass was sent before the loop woke for it, so an edit its sender had
seen complete is seen by a stat made now, after the wake-up: one stat a pass keeps "the
very next request sees the edit" exact, and requests that arrived together share it.
"""

from __future__ import annotations

import asyncio


class OncePerPass:
    """``due`` until ``taken`` in a pass of the running loop, and due again in the next.
    Outside a running loop (a direct call) it stays due: every call checks."""

    __slots__ = ("due",)

    def __init__(self, due: bool = True) -> None:
        self.due = due  # read on the hot path: ``if once.due: ...``; False for ever if so made

    def taken(self) -> None:
        loop = asyncio._get_running_loop()  # the public getter raises outside a loop
        if loop is not None:
            self.due = False
            loop.call_soon(self._again)

    def _again(self) -> None:
        self.due = True
