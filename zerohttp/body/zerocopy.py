"""Zero-copy sending: corked response head, then sendfile(2) straight from the page cache.

uvloop implements neither ``loop.sock_sendfile`` nor ``loop.sendfile``, and stock
asyncio's ``loop.sendfile`` measured at half the rate of calling ``os.sendfile`` on the
connection's socket ourselves (``shared/notes/zero-copy-measured.md``), so both loops use
this module: ``FileTransfer.pump`` pushes as much as the socket accepts without blocking
and the connection waits for writability only when the kernel says EAGAIN.

Literal bytes (the head, multipart part headers) are corked with what follows them
(``send(MSG_MORE)`` on Linux, TCP_NOPUSH on BSD/macOS): an uncorked head followed by
sendfile stalled ~44 ms per response. The last segment is sent without the flag, so
nothing is left waiting for the 200 ms cork timer.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Callable, Sequence

from ..message.response import ByteRange

# One sendfile(2) call moves at most this much on Linux, whatever count it is given.
SENDFILE_MAX_CHUNK = 0x7FFFF000

# File bytes one pump() may send before it yields to the event loop. Without a bound, a
# client reading as fast as the kernel can feed it never makes sendfile say EAGAIN, and one
# transfer holds the loop for its whole length. nginx's sendfile_max_chunk is 2 MiB, but a
# turn costs us more than it costs nginx: on 1 GiB loopback transfers 2 MiB turns used
# 0.7-3 % more CPU per GB than 4 MiB turns in 5 of 6 interleaved runs (1.4 % less in the
# sixth): a small effect, near this box's noise (benchmarks/huge_cpu.py, NOTES.md).
# 4 MiB is ~1.5 ms of loop time at 2.7 GB/s.
TURN_BYTES = 4 * 1024 * 1024

# sendfile refusing this file or socket (not a broken connection): the body can still
# be sent by reading, provided no body byte has gone out yet.
UNSUPPORTED_ERRNOS = frozenset(
    code
    for code in (
        getattr(errno, "ENOSYS", None),
        getattr(errno, "EINVAL", None),
        getattr(errno, "EOPNOTSUPP", None),
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "ENOTSOCK", None),
        getattr(errno, "ESPIPE", None),
    )
    if code is not None
)

MSG_MORE: int = getattr(socket, "MSG_MORE", 0)
TCP_NOPUSH: int | None = getattr(socket, "TCP_NOPUSH", None)
TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)

Segment = bytes | ByteRange


class SendfileUnsupported(Exception):
    """sendfile(2) cannot serve this transfer; no file byte has been sent."""


class FileShrank(Exception):
    """The file ended before the promised Content-Length: the response cannot be completed."""


_WINDOWS = sys.platform == "win32"


def sendfile_function() -> Callable[[int, int, int, int], int] | None:
    """``os.sendfile`` where it exists, looked up per use so it can be absent (Windows)."""
    return None if _WINDOWS else getattr(os, "sendfile", None)


def cork_style() -> str:
    """How this platform keeps the head in the same segment as the body's first bytes."""
    if MSG_MORE:
        return "MSG_MORE"
    if TCP_NOPUSH is not None:
        return "TCP_NOPUSH"
    return "none"


class FileTransfer:
    """Literal byte segments and file ranges, in order, for one non-blocking socket."""

    __slots__ = (
        "_cork",
        "_index",
        "_partial",
        "_turn_left",
        "body_started",
        "fd",
        "segments",
        "sock",
        "yielded",
    )

    def __init__(self, sock: socket.socket, fd: int, segments: Sequence[Segment]) -> None:
        """``segments`` is not copied: the caller hands it over."""
        self.sock = sock
        self.fd = fd
        self.segments = segments
        self._index = 0
        self._partial = 0  # bytes of the current segment already sent
        self._turn_left = TURN_BYTES
        self.body_started = False
        self.yielded = False  # the last pump stopped for fairness, not for EAGAIN
        self._cork: int | None = None  # the socket option holding data back, while set
        if not MSG_MORE and TCP_NOPUSH is not None:
            self._set_cork(TCP_NOPUSH)

    def pump(self) -> bool:
        """Send what the socket takes now; True once every segment is out.

        Raises SendfileUnsupported (only before the first file byte), FileShrank, or the
        OSError of a broken connection. False means "call again": after the socket is
        writable, or, when ``yielded`` is set, on the next loop iteration.
        """
        self._turn_left = TURN_BYTES
        self.yielded = False
        segments = self.segments
        last = len(segments) - 1
        while self._index <= last:
            segment = segments[self._index]
            if isinstance(segment, bytes):
                done = self._send_bytes(segment, MSG_MORE if self._index < last else 0)
            else:
                done = self._send_range(segment)
            if not done:
                return False
            self._index += 1
            self._partial = 0
        if self._cork is not None:
            self.uncork()
        return True

    def _send_bytes(self, data: bytes, flags: int) -> bool:
        if not self._partial:  # the usual case: the whole head fits in the socket buffer
            try:
                self._partial = self.sock.send(data, flags)
            except BlockingIOError:
                return False
            if self._partial == len(data):
                return True
        view = memoryview(data)
        while self._partial < len(data):
            try:
                self._partial += self.sock.send(view[self._partial :], flags)
            except BlockingIOError:
                return False
        return True

    def _send_range(self, byte_range: ByteRange) -> bool:
        # sendfile_function(), inlined: looked up per use (tests wrap os.sendfile)
        sendfile = None if _WINDOWS else getattr(os, "sendfile", None)
        if sendfile is None:
            raise SendfileUnsupported("os.sendfile is not available")
        out = self.sock.fileno()
        start = byte_range.start
        length = byte_range.end - start + 1
        while self._partial < length:
            if self._turn_left <= 0:
                self.yielded = True
                return False
            offset = start + self._partial
            count = min(length - self._partial, SENDFILE_MAX_CHUNK, self._turn_left)
            try:
                sent = sendfile(out, self.fd, offset, count)
            except BlockingIOError:
                return False
            except OSError as exc:
                if not self.body_started and exc.errno in UNSUPPORTED_ERRNOS:
                    raise SendfileUnsupported(str(exc)) from exc
                raise
            if sent == 0:
                raise FileShrank(f"file ended at {offset}, before {byte_range.end + 1}")
            self.body_started = True
            self._partial += sent
            self._turn_left -= sent
        return True

    def remaining(self) -> list[Segment]:
        """What is still to be sent, for handing over to the fallback path."""
        if self._index >= len(self.segments):
            return []
        current = self.segments[self._index]
        rest = self.segments[self._index + 1 :]
        if isinstance(current, bytes):
            head: Segment = current[self._partial :]
        else:
            head = ByteRange(current.start + self._partial, current.end)
        return [head, *rest]

    def _set_cork(self, option: int) -> None:
        self.sock.setsockopt(socket.IPPROTO_TCP, option, 1)
        self._cork = option

    def cork_for_bulk(self) -> None:
        """Hold back partial segments for the rest of a transfer that did not fit at once.

        MSG_MORE covers the head; for a bulk body, TCP_CORK (as nginx's tcp_nopush) makes
        every segment full-sized: measured on a 1 GiB loopback transfer, 2.4 vs 1.9 GB/s
        and ~20 % less server CPU. Small responses never get here and never pay for it.
        """
        if self._cork is None and TCP_CORK is not None:
            try:
                self._set_cork(TCP_CORK)
            except OSError:
                pass

    def uncork(self) -> None:
        """Release TCP_CORK/TCP_NOPUSH (which flushes); MSG_MORE needs nothing."""
        if self._cork is not None:
            option, self._cork = self._cork, None
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, option, 0)
            except OSError:
                pass


def settle(waiter: asyncio.Future[None], exc: BaseException | None = None) -> None:
    """Wake ``waiter`` once: with ``exc`` raised in it, or with a result when None."""
    if not waiter.done():
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


async def wait_or_time_out(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], timeout: float
) -> None:
    """Await ``waiter``; TimeoutError("send timed out") if nothing settles it in time.

    The one future-plus-timer of the send paths: writability in ``complete_transfer``, the
    transport's drain in the connection's flow control."""
    timer = loop.call_later(timeout, settle, waiter, TimeoutError("send timed out"))
    try:
        await waiter
    finally:
        timer.cancel()


async def complete_transfer(
    loop: asyncio.AbstractEventLoop, transfer: FileTransfer, timeout: float
) -> None:
    """Finish a transfer whose first ``pump`` hit EAGAIN.

    Writability is awaited on a dup of the socket: event loops refuse ``add_writer`` on a
    descriptor that a transport owns. The dup, and its writer callback, live as long as
    this transfer: registering them once rather than per EAGAIN saved ~6 epoll_ctl and
    ioctl calls per wait (464 waits per GiB on loopback, strace).
    """
    transfer.cork_for_bulk()
    waitable = os.dup(transfer.sock.fileno())
    waiter: asyncio.Future[None] | None = None

    def writable() -> None:
        if waiter is not None:
            settle(waiter)

    try:
        loop.add_writer(waitable, writable)
        while not transfer.pump():
            if transfer.yielded:
                await asyncio.sleep(0)  # let other connections run, then go on
            else:
                waiter = loop.create_future()
                await wait_or_time_out(loop, waiter, timeout)
                waiter = None
    finally:
        loop.remove_writer(waitable)
        os.close(waitable)
        transfer.uncork()
