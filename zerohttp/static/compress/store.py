"""Where compressed copies live: a private directory, bounded, least recently used out first.

A copy is named by its key (the source's device, inode, size, mtime and ctime, the coding
and the level), so a source that changes in any way has a new name and an old copy can
never answer for it; the open-file cache revalidates the source by stat on every hit.

The directory is the user's own: created 0700, refused when another user owns it or when
it is a symlink, and every name in it is opened relative to a descriptor of it with
O_NOFOLLOW, so a symlink planted inside is never followed. A copy is written to a temporary
name and renamed into place, so a reader sees a whole copy or none. Several processes
(``--workers``) may share the directory: each finds the others' copies by name, and counts
them towards the bound when it rescans.

Where no directory is writable (a read-only container), copies are kept in memory within
the same bound, in ``memfd`` files so that sendfile still sends them (Linux).
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from ..filecache import identity_of

_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a process that died
RESCAN_EVERY = 256  # puts between rescans that count other processes' copies
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


class CacheDirRefused(Exception):
    """The cache directory is not safely ours (another owner, a symlink, not a directory)."""


@dataclass(frozen=True, slots=True)
class CopyKey:
    """What a compressed copy was made from, and how."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    coding: str
    level: int

    @property
    def name(self) -> str:
        return (
            f"{self.device:x}-{self.inode:x}-{self.size:x}-{self.mtime_ns:x}-{self.ctime_ns:x}"
            f".{self.coding}{self.level}"
        )

    def matches(self, st: os.stat_result) -> bool:
        """Whether ``st`` still describes the source this key names (the identity the
        open-file cache revalidates by)."""
        return identity_of(st) == (
            self.inode,
            self.device,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
        )


@dataclass(frozen=True, slots=True)
class Copy:
    """An open descriptor of a stored copy; the caller owns (and closes) ``fd``."""

    fd: int
    path: str  # "" for a copy in memory: no path a host could open (ASGI pathsend)
    size: int
    inode: int
    device: int


class Writer(Protocol):
    """A copy being written; ``commit`` makes it visible, ``discard`` drops it."""

    size: int  # bytes written so far

    def write(self, data: bytes) -> None: ...

    def commit(self) -> bool: ...

    def discard(self) -> None: ...


class Store(Protocol):
    limit: int
    notice: str  # one line for the start-up log ("" when there is nothing to say)

    def open(self, key: CopyKey) -> Copy | None: ...

    def writer(self, key: CopyKey) -> Writer: ...

    def total(self) -> int: ...

    def close(self) -> None: ...


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def default_directory() -> str:
    """A per-user directory under the system temporary directory."""
    return os.path.join(tempfile.gettempdir(), f"zerohttp-compress-{os.geteuid()}")


def open_private_dir(path: str) -> int:
    """A descriptor of ``path``, created 0700 if missing, refused unless it is a real
    directory owned by this user. Group and other access is taken away.

    CacheDirRefused for a directory that is not ours; OSError when it cannot be made.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise CacheDirRefused(f"{path} is a symlink or not a directory") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise CacheDirRefused(f"{path} is not a directory")
        if st.st_uid != os.geteuid():
            raise CacheDirRefused(f"{path} belongs to uid {st.st_uid}, not to this user")
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Index:
    """Sizes of the copies by name, least recently used first; bounded in bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sizes: OrderedDict[str, int] = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    def touch(self, name: str, size: int) -> None:
        """Record a use of ``name`` (a copy of ``size`` bytes): the most recent now."""
        with self.lock:
            old = self.sizes.pop(name, None)
            self.bytes += size - (old or 0)
            self.sizes[name] = size

    def forget(self, name: str) -> None:
        with self.lock:
            self.bytes -= self.sizes.pop(name, 0)

    def over(self) -> list[str]:
        """The names to drop, oldest first, to bring the total within the limit."""
        with self.lock:
            victims = []
            total = self.bytes
            for name, size in self.sizes.items():
                if total <= self.limit:
                    break
                victims.append(name)
                total -= size
            return victims


class DiskStore:
    """Copies as files in one private directory."""

    _counter = itertools.count()

    def __init__(self, path: str, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.notice = ""
        self.dir_fd = open_private_dir(path)
        self._index = _Index(limit)
        self._puts = 0
        try:
            self._probe()
            self.rescan()
            self._evict()
        except BaseException:
            os.close(self.dir_fd)
            raise

    def _probe(self) -> None:
        """OSError now if nothing can be written here (a read-only file system)."""
        name = f"{TEMP_PREFIX}{os.getpid()}-probe"
        fd = os.open(name, _WRITE_FLAGS, 0o600, dir_fd=self.dir_fd)
        os.close(fd)
        os.unlink(name, dir_fd=self.dir_fd)

    def rescan(self) -> None:
        """Count the copies on disk (other processes' too), oldest first by mtime; remove
        temporary files that a dead process left behind."""
        found: list[tuple[int, str, int]] = []
        now = time.time()
        with os.scandir(self.dir_fd) as scan:
            for item in scan:
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                if item.name.startswith(TEMP_PREFIX):
                    if now - st.st_mtime > STALE_TEMP_SECONDS:
                        self._unlink(item.name)
                    continue
                found.append((st.st_mtime_ns, item.name, st.st_size))
        on_disk = {name: size for _, name, size in found}
        with self._index.lock:
            known = self._index.sizes
            fresh: OrderedDict[str, int] = OrderedDict()
            for _, name, size in sorted(found):  # others' copies: the oldest first
                if name not in known:
                    fresh[name] = size
            for name in known:  # copies this process used keep their recency, newest last
                if name in on_disk:
                    fresh[name] = on_disk[name]
            self._index.sizes = fresh
            self._index.bytes = sum(fresh.values())

    def open(self, key: CopyKey) -> Copy | None:
        """The stored copy for ``key``, opened, or None."""
        name = key.name
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.dir_fd)
        except OSError:
            return None  # missing, or a planted symlink (ELOOP)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            return None
        self._index.touch(name, st.st_size)
        return Copy(fd, os.path.join(self.path, name), st.st_size, st.st_ino, st.st_dev)

    def writer(self, key: CopyKey) -> Writer:
        temp = f"{TEMP_PREFIX}{os.getpid()}-{next(self._counter)}-{key.name}"
        fd = os.open(temp, _WRITE_FLAGS, 0o600, dir_fd=self.dir_fd)
        return _DiskWriter(self, fd, temp, key.name)

    def total(self) -> int:
        return self._index.bytes

    def _publish(self, temp: str, name: str, size: int) -> bool:
        if size > self.limit:
            self._unlink(temp)
            return False
        # rename replaces a planted symlink itself, never what it points to
        os.rename(temp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self._index.touch(name, size)
        self._puts += 1
        if self._puts % RESCAN_EVERY == 0:
            self.rescan()
        self._evict()
        return True

    def _evict(self) -> None:
        for name in self._index.over():
            self._unlink(name)
            self._index.forget(name)

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.dir_fd)
        except OSError:
            pass

    def close(self) -> None:
        if self.dir_fd >= 0:
            fd, self.dir_fd = self.dir_fd, -1
            os.close(fd)


class _FdWriter:
    """A copy being written to ``fd``, counted as it grows (the stores' writers)."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.size = 0

    def write(self, data: bytes) -> None:
        write_all(self.fd, data)
        self.size += len(data)


class _DiskWriter(_FdWriter):
    def __init__(self, store: DiskStore, fd: int, temp: str, name: str) -> None:
        super().__init__(fd, name)
        self.store = store
        self.temp = temp

    def commit(self) -> bool:
        os.close(self.fd)
        return self.store._publish(self.temp, self.name, self.size)

    def discard(self) -> None:
        os.close(self.fd)
        self.store._unlink(self.temp)


class MemoryStore:
    """Copies in anonymous memory files (``memfd_create``): nothing on disk, and a
    descriptor that sendfile can still send from."""

    def __init__(self, limit: int, notice: str = "") -> None:
        self.limit = limit
        self.notice = notice
        self._index = _Index(limit)
        self._files: dict[str, tuple[int, os.stat_result]] = {}

    def open(self, key: CopyKey) -> Copy | None:
        name = key.name
        with self._index.lock:
            held = self._files.get(name)
            fd = os.dup(held[0]) if held is not None else -1  # under the lock: not closed
        if held is None:
            return None
        st = held[1]
        self._index.touch(name, st.st_size)
        return Copy(fd, "", st.st_size, st.st_ino, st.st_dev)

    def writer(self, key: CopyKey) -> Writer:
        fd = os.memfd_create(f"zerohttp-{key.name}", os.MFD_CLOEXEC)
        return _MemoryWriter(self, fd, key.name)

    def total(self) -> int:
        return self._index.bytes

    def _publish(self, fd: int, name: str, size: int) -> bool:
        if size > self.limit:
            os.close(fd)
            return False
        with self._index.lock:
            old = self._files.pop(name, None)
            self._files[name] = (fd, os.fstat(fd))
        if old is not None:
            os.close(old[0])
        self._index.touch(name, size)
        for victim in self._index.over():
            self._index.forget(victim)
            with self._index.lock:
                dropped = self._files.pop(victim, None)
            if dropped is not None:
                os.close(dropped[0])  # a response sending from a dup keeps its pages
        return True

    def close(self) -> None:
        with self._index.lock:
            files, self._files = self._files, {}
        for fd, _ in files.values():
            os.close(fd)


class _MemoryWriter(_FdWriter):
    def __init__(self, store: MemoryStore, fd: int, name: str) -> None:
        super().__init__(fd, name)
        self.store = store

    def commit(self) -> bool:
        return self.store._publish(self.fd, self.name, self.size)

    def discard(self) -> None:
        os.close(self.fd)


def open_store(directory: str, limit: int) -> Store | None:
    """The store for ``--compress-cache`` (``""``: the per-user default) and its bound.

    A directory given by name that is not safely ours is a CacheDirRefused (the caller
    makes it a ConfigError); one that cannot be written, or an unsafe default, falls back
    to memory with a notice. None where memory files do not exist either.
    """
    path = directory or "the system temporary directory"
    try:
        path = directory or default_directory()  # gettempdir() raises when none is writable
        return DiskStore(path, limit)
    except CacheDirRefused as exc:
        if directory:
            raise
        reason = f"refused {exc}"
    except OSError as exc:
        if directory and exc.errno not in _NOT_WRITABLE:
            raise CacheDirRefused(f"{path}: {exc.strerror}") from None
        reason = f"{path} is not writable ({exc.strerror})"
    if not hasattr(os, "memfd_create"):
        return None
    return MemoryStore(limit, f"compression cache: {reason}; copies are kept in memory")
