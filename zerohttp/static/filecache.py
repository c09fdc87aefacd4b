"""An open-file cache that revalidates on every hit, so files changed on disk are never stale.

A hit skips what costs most on a request for a static file — path decoding, ``realpath``
(an lstat per component), open/fstat/close, sibling negotiation, header rendering — and
keeps only one ``os.stat`` per file the response depends on (~2 µs each): the request path
itself (followed through symlinks, so a path now leading elsewhere misses), the
precompressed sibling that was chosen, and, when the choice depended on Accept-Encoding,
the directory (a sibling created or removed changes its mtime). Any difference in inode,
device, size, mtime or ctime drops the entry and the request takes the full path.

Descriptors are shared between responses in flight and closed only once the entry is
dropped *and* the last response using them has finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..message.response import ByteRange, RenderedFields
from .representation import Representation

Identity = tuple[int, int, int, int, int]


def identity_of(st: os.stat_result) -> Identity:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class SharedFile:
    """An open descriptor used by the cache and by every response sending from it."""

    __slots__ = ("fd", "refs", "retired")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.refs = 0
        self.retired = False

    def acquire(self) -> int:
        self.refs += 1
        return self.fd

    def release(self) -> None:
        self.refs -= 1
        self._close_if_unused()

    def retire(self) -> None:
        self.retired = True
        self._close_if_unused()

    def _close_if_unused(self) -> None:
        if self.retired and self.refs <= 0 and self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


@dataclass(slots=True)
class CacheEntry:
    rep: Representation
    file: SharedFile
    path: str  # of the file sent (the sibling, for a precompressed representation)
    head_200: RenderedFields  # the fields of an unconditional 200, and their rendering
    head_304: RenderedFields  # the same for a 304 (validators and Cache-Control, Vary)
    segments_200: tuple[bytes | ByteRange, ...]
    checks: tuple[tuple[bytes, Identity], ...]  # paths as bytes: os.stat skips encoding

    def still_valid(self) -> bool:
        for path, expected in self.checks:  # a plain loop: this runs on every hit
            try:
                st = os.stat(path)
            except OSError:
                return False
            if (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != expected:
                return False
        return True


CacheKey = tuple[bytes, bytes | None]  # request target, Accept-Encoding value


class FileCache:
    """At most ``capacity`` entries; the oldest is dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: dict[CacheKey, CacheEntry] = {}
        self.hits = 0  # served from a still-valid entry (read by the metrics)
        self.misses = 0  # looked up and absent or stale

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.still_valid():
            self.hits += 1
            return entry
        self.misses += 1
        self.drop(key)
        return None

    def put(self, key: CacheKey, entry: CacheEntry) -> None:
        self.drop(key)
        while len(self._entries) >= self.capacity:
            self.drop(next(iter(self._entries)))
        self._entries[key] = entry

    def drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.file.retire()

    def clear(self) -> None:
        for key in list(self._entries):
            self.drop(key)
