"""The byte-identical body path for when zero-copy is impossible (TLS, no sendfile, a file
system that refuses it, ``--no-sendfile``): reads in bounded chunks, each written only once
the transport has drained the previous one.

A chunk in the page cache is read in the loop with ``preadv(RWF_NOWAIT)``, which fails
rather than wait for the disk, so the loop never blocks on I/O; only a chunk that is not
cached (or a platform without the flag) goes to aiofiles' thread pool. A thread hop per
chunk cost more than the whole rest of a small TLS response.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence

import aiofiles.os

from ..static.ranges import ByteRange
from .zerocopy import FileShrank

CHUNK_SIZE = 256 * 1024
RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)

# pread, not seek+read: the descriptor may be shared (open-file cache) by several
# responses in flight, and a shared file position would let them move it under each other.
_pread = aiofiles.os.wrap(os.pread)


def read_cached(fd: int, size: int, offset: int) -> bytes | None:
    """``size`` bytes at ``offset`` if all are in the page cache, else None (not cached,
    partly cached, past the end, or a file system or platform without RWF_NOWAIT)."""
    if not RWF_NOWAIT:
        return None
    buffer = bytearray(size)
    try:
        got = os.preadv(fd, [buffer], offset, RWF_NOWAIT)
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: the file system has no NOWAIT reads
        return None
    return bytes(buffer) if got == size else None


def render_cached(fd: int, segments: Sequence[bytes | ByteRange], limit: int) -> bytes | None:
    """A whole small response (literal segments and file ranges, at most ``limit`` file
    bytes) as one write, when every byte of it is cached: no task, no thread."""
    if sum(s.length for s in segments if not isinstance(s, bytes)) > limit:
        return None
    parts: list[bytes] = []
    for segment in segments:
        if isinstance(segment, bytes):
            parts.append(segment)
            continue
        data = read_cached(fd, segment.length, segment.start)
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
    for segment in segments:
        if isinstance(segment, bytes):
            if segment:
                write(segment)
                await drain()
            continue
        offset, end = segment.start, segment.end + 1
        while offset < end:
            size = min(CHUNK_SIZE, end - offset)
            chunk = read_cached(fd, size, offset)
            if chunk is None:
                chunk = await _pread(fd, size, offset)
            if not chunk:
                raise FileShrank(f"file ended at {offset}, before {end}")
            write(chunk)
            offset += len(chunk)
            await drain()
