"""The byte-identical body path for when zero-copy is impossible (TLS, no sendfile, a file
system that refuses it, ``--no-sendfile``): aiofiles reads in bounded chunks, each written
only once the transport has drained the previous one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import aiofiles

from .ranges import ByteRange
from .zerocopy import FileShrank

CHUNK_SIZE = 256 * 1024


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
    async with aiofiles.open(fd, "rb", buffering=0, closefd=False) as file:
        for segment in segments:
            if isinstance(segment, bytes):
                if segment:
                    write(segment)
                    await drain()
                continue
            await file.seek(segment.start)
            remaining = segment.length
            while remaining:
                chunk = await file.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    raise FileShrank(f"file ended {remaining} bytes early")
                write(chunk)
                remaining -= len(chunk)
                await drain()
