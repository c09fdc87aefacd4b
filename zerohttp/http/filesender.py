"""The one entry point for file bodies: sendfile(2) on the socket, else reading.

Every response body that is a file region goes through ``FileSender``: the static files'
responses, an ASGI app's ``pathsend``/``zerocopysend`` (through the exchange), and later
HTTP/2 DATA. It picks the path per connection: zero-copy on a plain TCP socket (the head
corked with the first file bytes), and reading with the fallback on TLS, on a loop or
platform without sendfile, or when a file system refuses it — byte-identical either way.

``send_now`` tries to finish synchronously (the common case for small files: no task);
what the socket does not take at once is ``Pending`` and ``finish`` completes it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import NamedTuple

from ..body.fallback import copy_segments, render_cached
from ..body.zerocopy import FileTransfer, Segment, SendfileUnsupported, complete_transfer
from .flow import FlowControl

# Without zero-copy, a response with at most this many file bytes, all page-cached, is
# read and written at once in the loop (no task, no thread hop); bigger ones stream.
READ_NOW_MAX = 64 * 1024


class Pending(NamedTuple):
    """What ``send_now`` left for ``finish``: a transfer under way, or segments to send."""

    segments: list[Segment]
    transfer: FileTransfer | None
    by_reading: bool  # sendfile is out for this body: read it


class FileSender:
    __slots__ = ("_flow", "_transport", "_write", "send_timeout", "sock", "zero_copy")

    def __init__(
        self, flow: FlowControl, write: Callable[[bytes], None], send_timeout: float
    ) -> None:
        self._flow = flow
        self._write = write
        self.send_timeout = send_timeout
        self._transport: asyncio.Transport | None = None
        self.sock: socket.socket | None = None  # borrows the transport's fd
        self.zero_copy = False

    def attach(self, transport: asyncio.Transport, *, zero_copy: bool) -> None:
        self._transport = transport
        self.zero_copy = zero_copy

    def socket(self) -> socket.socket | None:
        """A socket object over the transport's own descriptor, for send(MSG_MORE).

        It does not own the descriptor (no dup: an idle connection costs one fd, not two)
        and is detached, never closed, in ``release``. The descriptor is already
        non-blocking (both loops make it so), and passing family/type/proto avoids any
        syscall here. Waiting for writability needs a dup; ``complete_transfer`` makes
        one only for a transfer that did not fit at once.
        """
        sock = self.sock
        if sock is None and self.zero_copy and self._transport is not None:
            raw = self._transport.get_extra_info("socket")
            if raw is None:
                return None
            sock = self.sock = socket.socket(raw.family, raw.type, raw.proto, fileno=raw.fileno())
        return sock

    def release(self) -> None:
        """Let go of the borrowed descriptor; the transport closes it."""
        if self.sock is not None:
            sock, self.sock = self.sock, None
            sock.detach()

    def send_now(self, fd: int, segments: list[Segment]) -> str | Pending:
        """Send head and body now if the socket takes them: the body path used, or what is
        left. Raises FileShrank or OSError when the response can no longer be completed."""
        sock = self.sock if self.sock is not None else self.socket()
        if sock is None:
            if not self._flow.write_paused:
                data = render_cached(fd, segments, READ_NOW_MAX)
                if data is not None:
                    self._write(data)
                    return "fallback"
            return Pending(segments, None, True)
        if self._flow.write_paused:  # the transport still holds bytes (a 100 Continue)
            return Pending(segments, None, False)
        transfer = FileTransfer(sock, fd, segments)
        try:
            if transfer.pump():
                return "sendfile"
        except SendfileUnsupported:
            return Pending(transfer.remaining(), None, True)
        return Pending([], transfer, False)

    async def finish(self, fd: int, pending: Pending) -> str:
        """Complete what ``send_now`` left; the body path used. Raises FileShrank, OSError
        or TimeoutError; the caller aborts the connection."""
        segments, transfer, by_reading = pending
        if transfer is None and not by_reading:  # the transport held bytes: they go first
            return await self.send_segments(fd, segments)
        if transfer is not None:
            try:
                await complete_transfer(self._flow.loop, transfer, self.send_timeout)
                return "sendfile"
            except SendfileUnsupported:
                segments = transfer.remaining()
        await self._flow.drain()
        await copy_segments(fd, segments, self._write, self._flow.drain)
        return "fallback"

    async def send_segments(self, fd: int, segments: list[Segment]) -> str:
        """Bytes and ranges of ``fd`` in order, zero-copy when possible, after what the
        transport holds; the body path used."""
        await self._flow.drain()
        if self._flow.closed:
            return await self.finish(fd, Pending(segments, None, True))
        sent = self.send_now(fd, segments)  # drained: a Pending now is never "drain first"
        return sent if isinstance(sent, str) else await self.finish(fd, sent)
