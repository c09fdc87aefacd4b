"""The three coders, each behind one small streaming interface, and the level each runs at.

Levels were chosen by measurement (benchmarks/compress_levels.py, the table in
benchmarks/RESULTS.md): among the levels of each coder that compress a real JS/CSS/HTML
corpus within TIME_BOUND_MS_PER_MIB, the fastest whose output is within 0.1 % of the
smallest (zstd 20-22 and gzip 9 cost more for nothing). The cost is paid once per file
version, so levels well above what per-response compressors use (nginx 1, Caddy 5) are
affordable.

zlib, brotli and zstd all release the GIL while they work, so a thread pool runs them in
parallel with the event loop.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import brotli  # type: ignore[import-untyped]

try:  # Python 3.14's standard library; the backport (the same code) before it
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

from .policy import CODINGS

# The bound on compression time used to choose the levels below.
TIME_BOUND_MS_PER_MIB = 400
# RFC 9659 §3: a zstd frame sent as Content-Encoding uses a window of at most 8 MiB.
ZSTD_MAX_WINDOW_LOG = 23

LEVELS = {"zstd": 19, "br": 10, "gzip": 8}


class Encoder(Protocol):
    """A streaming coder: bytes in, compressed bytes out, then the end of the stream."""

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Gzip:
    """gzip (RFC 1952) through zlib; the header's mtime is 0, so the output is reproducible."""

    def __init__(self, level: int, size: int) -> None:
        self._coder = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9)

    def feed(self, data: bytes) -> bytes:
        return self._coder.compress(data)

    def finish(self) -> bytes:
        return self._coder.flush()


class _Brotli:
    def __init__(self, level: int, size: int) -> None:
        self._coder = brotli.Compressor(quality=level)

    def feed(self, data: bytes) -> bytes:
        out: bytes = self._coder.process(data)
        return out

    def finish(self) -> bytes:
        out: bytes = self._coder.finish()
        return out


def zstd_options(level: int) -> dict[int, int]:
    """The level with its window capped at 8 MiB: levels 20-22 would pick up to 128 MiB.
    (With the source's size pledged, libzstd still shrinks the window for small files.)"""
    parameter = zstd.CompressionParameter
    return {parameter.compression_level: level, parameter.window_log: ZSTD_MAX_WINDOW_LOG}


class _Zstd:
    def __init__(self, level: int, size: int) -> None:
        self._coder = zstd.ZstdCompressor(options=zstd_options(level))
        self._coder.set_pledged_input_size(size)  # the frame records the content size

    def feed(self, data: bytes) -> bytes:
        out: bytes = self._coder.compress(data)
        return out

    def finish(self) -> bytes:
        out: bytes = self._coder.flush(zstd.ZstdCompressor.FLUSH_FRAME)
        return out


_CODERS: dict[str, Callable[[int, int], Encoder]] = {
    "zstd": _Zstd,
    "br": _Brotli,
    "gzip": _Gzip,
}


@dataclass(frozen=True, slots=True)
class Codec:
    """One content coding at one level."""

    coding: str
    level: int

    def encoder(self, size: int) -> Encoder:
        """A fresh encoder for a source of ``size`` bytes (zstd records it in the frame)."""
        return _CODERS[self.coding](self.level, size)

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed in one call (tests, benchmarks)."""
        encoder = self.encoder(len(data))
        return encoder.feed(data) + encoder.finish()


assert tuple(_CODERS) == CODINGS


def codec_for(coding: str) -> Codec:
    return Codec(coding, LEVELS[coding])
