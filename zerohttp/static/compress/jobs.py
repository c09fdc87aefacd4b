"""The compression jobs: a small thread pool, one job per copy, never a wait on the loop.

The handler asks ``Compressor.copy_for`` on the event loop: a stored copy comes back
open; otherwise a job starts (unless one for the same key already runs) and the request is
answered with the identity representation at once. The job reads the source from its own
descriptor, checks by ``fstat`` before and after that the source did not change while it
read (else the result is dropped: a copy never mixes old and new bytes), and hands the
copy to the store, whose methods are thread-safe. Only ``_running`` and ``_useless`` are
shared with the loop thread, under one lock.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .codecs import Codec
from .policy import worth_keeping
from .store import CacheDirRefused, Copy, CopyKey, Store

logger = logging.getLogger("zerohttp")

CHUNK = 256 * 1024  # bytes read from the source per step
USELESS_KEPT = 4096  # copies remembered as not worth keeping (saved under 5 %)


NO_STORE = "compression off: no writable cache directory and no memory files here"


class Pending(enum.Enum):
    """Why no copy is there yet: one is being made, or it was not worth keeping."""

    RUNNING = "running"
    USELESS = "useless"


def default_workers() -> int:
    """Half the CPUs (at least one, at most four): serving keeps the rest."""
    return max(1, min(4, (os.cpu_count() or 1) // 2))


class SourceChanged(Exception):
    """The source was changed while it was compressed."""


def compress_file(
    source: int, key: CopyKey, codec: Codec, store: Store, stop: threading.Event
) -> bool:
    """Compress the source open on ``source`` into the store; True if a copy was kept.

    SourceChanged when the source is no longer what ``key`` names (checked before and after
    reading, so the copy is of exactly one version of it).
    """
    if not key.matches(os.fstat(source)):
        raise SourceChanged
    writer = store.writer(key)
    try:
        encoder = codec.encoder(key.size)
        offset = 0
        while offset < key.size:
            if stop.is_set():
                raise SourceChanged  # shutting down: the copy is not finished
            chunk = os.pread(source, min(CHUNK, key.size - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            writer.write(encoder.feed(chunk))
        writer.write(encoder.finish())
        if offset != key.size or not key.matches(os.fstat(source)):
            raise SourceChanged
    except BaseException:
        writer.discard()
        raise
    if not worth_keeping(key.size, writer.size):
        writer.discard()
        return False
    return writer.commit()


class Compressor:
    """Finds stored copies, and starts the jobs that make the missing ones.

    The store is opened on first need (``open``), so a handler that never meets a
    compressible file holds no descriptor; the server opens it at start, where a refused
    directory is fatal and a notice is said once.
    """

    def __init__(self, opener: Callable[[], Store | None], workers: int | None = None) -> None:
        self._opener = opener
        self._store: Store | None = None
        self._opened = False
        self.notice = ""
        self._pool = ThreadPoolExecutor(
            max_workers=workers or default_workers(), thread_name_prefix="zerohttp-compress"
        )
        self._lock = threading.Lock()
        self._running: set[CopyKey] = set()
        self._useless: OrderedDict[CopyKey, None] = OrderedDict()
        self._stop = threading.Event()
        self.started = 0  # jobs started (read by tests)
        self.kept = 0  # copies stored

    def open(self) -> Store | None:
        """The store, opened now if it was not (CacheDirRefused for an unsafe directory);
        None when compression cannot run here."""
        with self._lock:
            if not self._opened:
                self._store = self._opener()
                self._opened = True
                self.notice = self._store.notice if self._store is not None else NO_STORE
            return self._store

    def copy_for(self, key: CopyKey, codec: Codec, source: int) -> Copy | Pending:
        """The stored copy for ``key``, or why there is none; a missing copy's job is
        started from ``source`` (duplicated: the caller keeps its descriptor)."""
        store = self._store if self._opened else self._open_late()
        if store is None:
            return Pending.USELESS
        copy = store.open(key)
        if copy is not None:
            return copy
        with self._lock:
            if key in self._useless:
                return Pending.USELESS
            if key in self._running or self._stop.is_set():
                return Pending.RUNNING
            self._running.add(key)
            self.started += 1
        fd = os.dup(source)
        try:
            self._pool.submit(self._run, key, codec, fd)
        except RuntimeError:  # the pool was shut down meanwhile
            os.close(fd)
            with self._lock:
                self._running.discard(key)
        return Pending.RUNNING

    def _open_late(self) -> Store | None:
        """The store, opened at a first request (the ASGI app has no start): a problem is
        logged once and turns compression off rather than failing requests."""
        try:
            store = self.open()
        except (CacheDirRefused, OSError) as exc:
            with self._lock:
                self._opened = True
            logger.error("compression off: --compress-cache %s", exc)
            return None
        if self.notice:
            logger.warning("%s", self.notice)
        return store

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def _run(self, key: CopyKey, codec: Codec, fd: int) -> None:
        useless = False
        try:
            if self._stop.is_set():
                raise SourceChanged  # queued before shutdown: nothing to do
            assert self._store is not None
            kept = compress_file(fd, key, codec, self._store, self._stop)
            useless = not kept
        except (SourceChanged, OSError):
            kept = False  # the next request for the new version starts a new job
        finally:
            os.close(fd)
        with self._lock:
            self._running.discard(key)
            if kept:
                self.kept += 1
            if useless:
                self._useless[key] = None
                while len(self._useless) > USELESS_KEPT:
                    self._useless.popitem(last=False)

    def close(self) -> None:
        """Stop: queued jobs end at once and running ones at their next chunk, without a
        copy; then the store is closed."""
        self._stop.set()
        self._pool.shutdown(wait=True)
        if self._store is not None:
            self._store.close()
