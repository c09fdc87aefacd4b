"""The one I/O step of the static core: from a normalised path to an open regular file.

Containment is decided on the fully resolved path (``os.path.realpath``), so a symlink
anywhere along the way that leads outside the root is refused (unless the resolver was made
with ``follow_symlinks``: then only the request path, already clean, must stay below the
root, as with Starlette's ``follow_symlink=True``); the final component is
opened with ``O_NOFOLLOW`` and the descriptor is ``fstat``-ed, so the metadata that goes
into the headers describes exactly the bytes that will be sent even if the file is
replaced meanwhile. Everything here is a plain blocking ``os`` call of a few µs.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from .autoindex import Entry
from .paths import RULES_FILES

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO planted under the root must never block us
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_MISSING_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.ENXIO, errno.EISDIR}
)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """The ``fstat`` facts a response is built from."""

    size: int
    mtime_ns: int
    inode: int
    device: int
    ctime_ns: int = 0  # part of a compressed copy's key: an edit that restores mtime still shows


@dataclass(frozen=True, slots=True)
class OpenFile:
    fd: int
    info: FileInfo
    name: str  # the served file's own name (index.html for a directory), for its media type
    path: str


@dataclass(frozen=True, slots=True)
class NeedsSlash:
    """A directory was asked for without its trailing slash."""


@dataclass(frozen=True, slots=True)
class Directory:
    """A directory asked for with its slash, that has none of the index files."""

    path: str


@dataclass(frozen=True, slots=True)
class NotFound:
    forbidden: bool = False


Lookup = OpenFile | NeedsSlash | Directory | NotFound


class FileResolver:
    """Resolves request paths below one root directory."""

    def __init__(
        self,
        root: str,
        index_names: Sequence[str] = ("index.html",),
        *,
        follow_symlinks: bool = False,
    ) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self.index_names = tuple(index_names)
        self.follow_symlinks = follow_symlinks

    def admits(self, real: str) -> bool:
        """Whether a fully resolved path may be served.

        Inside the root, unless a dot-name on the way hides it (a symlink inside the root must
        not expose a dotfile either). Outside it only when following symlinks: the request
        path itself never climbs out (``paths.parse_target``), so only a symlink leads there.
        """
        if real == self.root:
            return True
        if real.startswith(self._prefix):
            relative = real[len(self._prefix) :]
            return not any(part.startswith(".") for part in relative.split(os.sep) if part)
        return self.follow_symlinks

    def lookup(self, relative: str, trailing_slash: bool) -> Lookup:
        real = os.path.realpath(os.path.join(self.root, relative))
        if not self.admits(real):
            return NotFound()
        try:
            st = os.stat(real)
        except OSError as exc:
            return NotFound(forbidden=exc.errno == errno.EACCES)
        if stat.S_ISDIR(st.st_mode):
            if not trailing_slash:
                return NeedsSlash()
            return self._index(real)
        if trailing_slash:
            return NotFound()
        return self._open(real)

    def _index(self, directory: str) -> Lookup:
        for name in self.index_names:
            candidate = os.path.realpath(os.path.join(directory, name))
            if self.admits(candidate):
                found = self._open(candidate)
                if isinstance(found, OpenFile):
                    return found
        return Directory(directory)

    def open_sibling(self, original: OpenFile, suffix: str) -> OpenFile | None:
        """``NAME+suffix`` beside ``original`` when it is a regular file no older than it.

        O_NOFOLLOW on a name in the original's (contained) directory: a symlinked
        sibling cannot lead outside the root.
        """
        found = self._open(original.path + suffix)
        if not isinstance(found, OpenFile):
            return None
        if found.info.mtime_ns < original.info.mtime_ns:
            os.close(found.fd)
            return None
        return found

    def sibling_exists(self, original: OpenFile, suffix: str) -> bool:
        """Cheap check (one lstat) used to decide on ``Vary`` without opening anything."""
        try:
            st = os.lstat(original.path + suffix)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_mtime_ns >= original.info.mtime_ns

    def list_directory(self, directory: str) -> list[Entry]:
        """Visible entries whose real location is inside the root, for ``--autoindex``
        (ROOT's site rules files are never served, so never listed)."""
        entries: list[Entry] = []
        unlisted = RULES_FILES if os.path.realpath(directory) == self.root else frozenset()
        try:
            with os.scandir(directory) as scan:
                for item in scan:
                    if item.name in unlisted:
                        continue
                    entry = self._listing_entry(item)
                    if entry is not None:
                        entries.append(entry)
        except OSError:
            return []
        return entries

    def _listing_entry(self, item: os.DirEntry[str]) -> Entry | None:
        if item.name.startswith("."):
            return None
        try:
            if item.is_symlink():
                real = os.path.realpath(item.path)
                if not self.admits(real):
                    return None
            st = item.stat()
        except OSError:
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        if not is_dir and not stat.S_ISREG(st.st_mode):
            return None
        return Entry(item.name, is_dir, st.st_size, st.st_mtime)

    def _open(self, real: str) -> Lookup:
        try:
            fd = os.open(real, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno in _MISSING_ERRNOS:
                return NotFound()
            return NotFound(forbidden=exc.errno in (errno.EACCES, errno.EPERM))
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            return NotFound()
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return NotFound()
        info = FileInfo(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)
        return OpenFile(fd, info, os.path.basename(real), real)
