"""Zero-copy sending: corked response head, then sendfile(2) straight from the page cache.

uvloop implements neither ``loop.sock_sendfile`` nor ``loop.sendfile``, and stock
asyncio's ``loop.sendfile`` measured at half the rate of calling ``os.sendfile`` on the
connection's socket ourselves (``shared/notes/zero-copy-measured.md``), so both loops use
this module: ``FileTransfer.pump`` pushes as much as the socket accepts without blocking
and the connection waits for writability only when the kernel says EAGAIN.

The head is corked with the body's first bytes (``send(MSG_MORE)`` on Linux, TCP_NOPUSH on
BSD/macOS): an uncorked head followed by sendfile stalled ~44 ms per response.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Callable

# One sendfile(2) call moves at most this much on Linux, whatever count it is given.
SENDFILE_MAX_CHUNK = 0x7FFFF000

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


class SendfileUnsupported(Exception):
    """sendfile(2) cannot serve this transfer; nothing of the body has been sent."""


class FileShrank(Exception):
    """The file ended before the promised Content-Length: the response cannot be completed."""


def sendfile_function() -> Callable[[int, int, int, int], int] | None:
    """``os.sendfile`` where it exists, looked up per use so it can be absent (Windows)."""
    if sys.platform == "win32":
        return None
    return getattr(os, "sendfile", None)


def cork_style() -> str:
    """How this platform keeps the head in the same segment as the body's first bytes."""
    if MSG_MORE:
        return "MSG_MORE"
    if TCP_NOPUSH is not None:
        return "TCP_NOPUSH"
    return "none"


class FileTransfer:
    """A response head followed by a region of an open file, for one non-blocking socket."""

    __slots__ = ("_head", "_nopush", "body_started", "fd", "offset", "remaining", "sock")

    def __init__(self, sock: socket.socket, head: bytes, fd: int, offset: int, count: int) -> None:
        self.sock = sock
        self._head = memoryview(head)
        self.fd = fd
        self.offset = offset
        self.remaining = count
        self.body_started = False
        self._nopush = not MSG_MORE and TCP_NOPUSH is not None
        if self._nopush:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_NOPUSH, 1)  # type: ignore[arg-type]

    def pump(self) -> bool:
        """Send what the socket takes now; True once head and body are all out.

        Raises SendfileUnsupported, FileShrank, or the OSError of a broken connection.
        """
        if self._head and not self._send_head():
            return False
        sendfile = sendfile_function()
        if sendfile is None:
            raise SendfileUnsupported("os.sendfile is not available")
        out = self.sock.fileno()
        while self.remaining:
            try:
                sent = sendfile(out, self.fd, self.offset, min(self.remaining, SENDFILE_MAX_CHUNK))
            except BlockingIOError:
                return False
            except OSError as exc:
                if not self.body_started and exc.errno in UNSUPPORTED_ERRNOS:
                    raise SendfileUnsupported(str(exc)) from exc
                raise
            if sent == 0:
                raise FileShrank(f"file ended {self.remaining} bytes early")
            self.body_started = True
            self.offset += sent
            self.remaining -= sent
        self.uncork()
        return True

    def _send_head(self) -> bool:
        flags = MSG_MORE if self.remaining else 0
        while self._head:
            try:
                sent = self.sock.send(self._head, flags)
            except BlockingIOError:
                return False
            self._head = self._head[sent:]
        return True

    @property
    def head_pending(self) -> bytes:
        """Head bytes not yet sent (for handing over to the fallback path)."""
        return bytes(self._head)

    def uncork(self) -> None:
        """Release TCP_NOPUSH; MSG_MORE needs nothing, the final sendfile page pushes."""
        if self._nopush:
            self._nopush = False
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, TCP_NOPUSH, 0)  # type: ignore[arg-type]
            except OSError:
                pass


async def wait_writable(loop: asyncio.AbstractEventLoop, fd: int, timeout: float) -> None:
    """Wait until ``fd`` accepts more bytes; TimeoutError after ``timeout`` s without that."""
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(exc: BaseException | None = None) -> None:
        if not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    loop.add_writer(fd, wake)
    timer = loop.call_later(timeout, wake, TimeoutError("send timed out"))
    try:
        await waiter
    finally:
        timer.cancel()
        loop.remove_writer(fd)


async def complete_transfer(
    loop: asyncio.AbstractEventLoop, transfer: FileTransfer, timeout: float
) -> None:
    """Finish a transfer whose first ``pump`` hit EAGAIN."""
    try:
        while not transfer.pump():
            await wait_writable(loop, transfer.sock.fileno(), timeout)
    finally:
        transfer.uncork()
