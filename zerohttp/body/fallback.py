"""The byte-identical body path for when zero-copy is impossible (TLS, no sendfile, a file
system that refuses it, ``--no-sendfile``): reads in bounded chunks on aiofiles' thread pool,
each written only once the transport has drained the previous one.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence

import aiofiles.os

from ..static.ranges import ByteRange
from .zerocopy import FileShrank

CHUNK_SIZE = 256 * 1024

# pread, not seek+read: the descriptor may be shared (open-file cache) by several
# responses in flight, and a shared file position would let them move it under each other.
_pread = aiofiles.os.wrap(os.pread)


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
            chunk = await _pread(fd, min(CHUNK_SIZE, end - offset), offset)
            if not chunk:
                raise FileShrank(f"file ended at {offset}, before {end}")
            write(chunk)
            offset += len(chunk)
            await drain()
