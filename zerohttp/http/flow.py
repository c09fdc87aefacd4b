"""Flow control in both directions for one transport (uvicorn's ``flow_control.py`` is the
model): reading paused while the request side has enough, writing awaited while the
transport holds bytes.

Invariant on a plain TCP transport: the write-buffer limits are (0, 0), so the transport
pauses us the moment anything stays buffered, and the driver starts no new response until
``drain`` returns. That bounds buffered output to one response and makes direct socket
writes (sendfile) safe.
"""

from __future__ import annotations

import asyncio

from ..body.zerocopy import settle, wait_or_time_out


class FlowControl:
    __slots__ = (
        "_transport",
        "_waiter",
        "closed",
        "loop",
        "read_paused",
        "send_timeout",
        "write_paused",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, send_timeout: float) -> None:
        self.loop = loop
        self.send_timeout = send_timeout
        self._transport: asyncio.Transport | None = None
        self.read_paused = False
        self.write_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False  # the driver is closing: nothing more is sent

    def attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    # --- reading ------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if not self.read_paused and self._transport is not None:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self._transport is not None:
            self.read_paused = False
            self._transport.resume_reading()

    # --- writing (the transport's pause_writing/resume_writing callbacks) ------------------

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._waiter is not None:
            settle(self._waiter)

    def lost(self) -> None:
        """The connection is gone: a drain in progress raises."""
        self.closed = True
        if self._waiter is not None:
            settle(self._waiter, ConnectionResetError("connection lost"))

    async def drain(self) -> None:
        """Wait until the transport has sent everything it holds (TimeoutError after
        --send-timeout without progress; ConnectionResetError once closing)."""
        if not self.write_paused:
            return
        if self.closed:
            raise ConnectionResetError("connection closing")
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._waiter = waiter
        try:
            await wait_or_time_out(self.loop, waiter, self.send_timeout)
        finally:
            self._waiter = None
