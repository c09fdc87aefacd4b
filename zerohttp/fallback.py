"""The byte-identical body path for when zero-copy is impossible (TLS, no sendfile, a file
system that refuses it, ``--no-sendfile``): aiofiles reads in bounded chunks, each written
only once the transport has drained the previous one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiofiles

from .zerocopy import FileShrank

CHUNK_SIZE = 256 * 1024


async def copy_region(
    fd: int,
    offset: int,
    count: int,
    write: Callable[[bytes], None],
    drain: Callable[[], Awaitable[None]],
) -> None:
    """Write ``count`` bytes of ``fd`` from ``offset``; FileShrank if the file ends first.

    The descriptor is the one the response's headers were computed from, so a file
    replaced on disk meanwhile is still sent whole and old, never mixed.
    """
    remaining = count
    async with aiofiles.open(fd, "rb", buffering=0, closefd=False) as file:
        await file.seek(offset)
        while remaining:
            chunk = await file.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise FileShrank(f"file ended {remaining} bytes early")
            write(chunk)
            remaining -= len(chunk)
            await drain()
