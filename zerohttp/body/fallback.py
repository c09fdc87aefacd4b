"""The byte-identical body path for when zero-copy is impossible (TLS, no sendfile, a file
system that refuses it, ``--no-sendfile``): reads in bounded chunks, each written only once
the transport has drained the previous one.

A chunk in the page cache is read in the loop with ``preadv(RWF_NOWAIT)``, which fails
rather than wait for the disk, so the loop never blocks on I/O; only a chunk that is not
cached (or a platform or file system without the flag) goes to aiofiles' thread pool. A
thread hop per chunk cost more than the whole rest of a small TLS response.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable, Callable, Sequence

import aiofiles.os

from ..message.response import ByteRange
from .zerocopy import FileShrank

CHUNK_SIZE = 256 * 1024
RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)

# A NOWAIT read failing with one of these says the file system (or kernel) has no such
# reads at all, not that the bytes are not cached (EAGAIN).
REFUSED_ERRNOS = frozenset(
    code
    for code in (
        getattr(errno, "EOPNOTSUPP", None),
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EINVAL", None),
        getattr(errno, "ENOSYS", None),
    )
    if code is not None
)

# pread, not seek+read: the descriptor may be shared (open-file cache) by several
# responses in flight, and a shared file position would let them move it under each other.
_pread = aiofiles.os.wrap(os.pread)


class NowaitSupport:
    """The file systems that refused a NOWAIT read, so they are asked once, not per chunk.

    Overlayfs (Docker's default storage driver: every file of an image, and ``/tmp`` in a
    container) answers EOPNOTSUPP. Until some file system refuses, nothing is spent; after
    that, an fstat before a response's reads (not per chunk) tells whether its descriptor
    is on a refusing one.
    """

    __slots__ = ("flag", "refusing")

    def __init__(self, flag: int = RWF_NOWAIT) -> None:
        self.flag = flag
        self.refusing: set[int] = set()  # st_dev of the file systems that refused

    def usable(self, fd: int) -> bool:
        """Whether a NOWAIT read of ``fd`` is worth asking for."""
        if not self.refusing:
            return self.flag != 0
        try:
            return os.fstat(fd).st_dev not in self.refusing
        except OSError:
            return False

    def refuse(self, fd: int) -> None:
        try:
            self.refusing.add(os.fstat(fd).st_dev)
        except OSError:
            pass


NOWAIT = NowaitSupport()


class NowaitRefused(Exception):
    """The descriptor's file system has no NOWAIT reads (now remembered in ``NOWAIT``)."""


def read_nowait(fd: int, size: int, offset: int) -> bytes | None:
    """``size`` bytes at ``offset`` if all are in the page cache, else None (not cached,
    partly cached, past the end); NowaitRefused where the file system lacks the flag."""
    buffer = bytearray(size)
    try:
        got = os.preadv(fd, [buffer], offset, RWF_NOWAIT)
    except BlockingIOError:  # EAGAIN: not cached
        return None
    except OSError as exc:
        if exc.errno in REFUSED_ERRNOS:
            NOWAIT.refuse(fd)
            raise NowaitRefused(f"no RWF_NOWAIT reads for descriptor {fd}") from exc
        return None  # the thread pool's read meets the error again and raises it
    return bytes(buffer) if got == size else None


def read_cached(fd: int, size: int, offset: int) -> bytes | None:
    """``size`` bytes at ``offset`` if all are in the page cache, else None (not cached,
    partly cached, past the end, or a file system or platform without RWF_NOWAIT)."""
    if not NOWAIT.usable(fd):
        return None
    try:
        return read_nowait(fd, size, offset)
    except NowaitRefused:
        return None


def render_cached(fd: int, segments: Sequence[bytes | ByteRange], limit: int) -> bytes | None:
    """A whole small response (literal segments and file ranges, at most ``limit`` file
    bytes) as one write, when every byte of it is cached: no task, no thread."""
    if sum(s.length for s in segments if not isinstance(s, bytes)) > limit:
        return None
    if not NOWAIT.usable(fd):
        return None
    parts: list[bytes] = []
    for segment in segments:
        if isinstance(segment, bytes):
            parts.append(segment)
            continue
        try:
            data = read_nowait(fd, segment.length, segment.start)
        except NowaitRefused:
            return None
        if data is None:
            return None
        parts.append(data)
    return b"".join(parts)


async def copy_segments(
    fd: int,
    segments: Sequence[bytes | ByteRange],
    write: Callable[[bytes], None],
    drain: Callable[[], Awaitable[None]],
) -> None:
    """Write literal segments as they are and file ranges read from ``fd``.

    The descriptor is the one the response's headers were computed from, so a file
    replaced on disk meanwhile is still sent whole and old, never mixed.
    FileShrank if the file ends before a range does.
    """
    nowait = NOWAIT.usable(fd)
    for segment in segments:
        if isinstance(segment, bytes):
            if segment:
                write(segment)
                await drain()
            continue
        offset, end = segment.start, segment.end + 1
        while offset < end:
            size = min(CHUNK_SIZE, end - offset)
            chunk = None
            if nowait:
                try:
                    chunk = read_nowait(fd, size, offset)
                except NowaitRefused:
                    nowait = False
            if chunk is None:
                chunk = await _pread(fd, size, offset)
            if not chunk:
                raise FileShrank(f"file ended at {offset}, before {end}")
            write(chunk)
            offset += len(chunk)
            await drain()
