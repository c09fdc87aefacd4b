"""The read fallback's page-cache fast path: chunks in the page cache are read in the loop
with ``preadv(RWF_NOWAIT)``; a chunk that is not cached goes to the thread pool, so the loop
never waits for the disk. Unit tests on real files, and end to end (plain and TLS) with the
thread pool's read spied on."""

from __future__ import annotations

import asyncio
import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import start_server

from zerohttp.body import fallback
from zerohttp.body.fallback import copy_segments, read_cached, render_cached
from zerohttp.static.ranges import ByteRange

pytestmark = pytest.mark.skipif(not fallback.RWF_NOWAIT, reason="no os.RWF_NOWAIT here")
SIZE = 3 * 1024 * 1024 + 5


def evict(path: Path) -> bool:
    """Drop the file's clean pages from the page cache; False where that did not work.

    The check reads the last byte only: a refused NOWAIT read starts readahead from where
    it asked, which must not bring back the start of the file the tests read next.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        try:
            os.preadv(fd, [bytearray(1)], os.fstat(fd).st_size - 1, fallback.RWF_NOWAIT)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[tuple[Path, bytes, int]]:
    path = tmp_path / "data.bin"
    content = os.urandom(SIZE)
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    yield path, content, fd
    os.close(fd)


def test_cached_bytes_are_read_exactly(data_file: tuple[Path, bytes, int]) -> None:
    _, content, fd = data_file
    assert read_cached(fd, 1000, 0) == content[:1000]
    assert read_cached(fd, 7, SIZE - 7) == content[-7:]
    assert read_cached(fd, 0, 10) == b""


def test_past_the_end_is_none_not_short(data_file: tuple[Path, bytes, int]) -> None:
    _, _, fd = data_file
    assert read_cached(fd, 100, SIZE - 50) is None  # the caller's slow path sees FileShrank
    assert read_cached(fd, 10, SIZE + 10) is None


def test_uncached_bytes_are_left_to_the_thread_pool(data_file: tuple[Path, bytes, int]) -> None:
    path, content, fd = data_file
    if not evict(path):
        pytest.skip("this file system does not drop pages on POSIX_FADV_DONTNEED")
    assert read_cached(fd, 4096, 0) is None
    assert evict(path)  # (the refused read started readahead: the pages may be back)
    assert render_cached(fd, [b"head", ByteRange(0, 99)], 1 << 20) is None
    os.pread(fd, 4096, 0)  # cached now, for sure
    assert read_cached(fd, 4096, 0) == content[:4096]


def test_render_cached_joins_literals_and_ranges(data_file: tuple[Path, bytes, int]) -> None:
    _, content, fd = data_file
    segments = [b"HEAD\r\n", ByteRange(10, 19), b"--part--", ByteRange(SIZE - 3, SIZE - 1)]
    expected = b"HEAD\r\n" + content[10:20] + b"--part--" + content[-3:]
    assert render_cached(fd, segments, 13) == expected
    assert render_cached(fd, segments, 12) is None  # 13 file bytes: over the limit
    assert render_cached(fd, [b"x", ByteRange(SIZE - 1, SIZE)], 100) is None  # past the end


class PreadSpy:
    """Counts the reads that went to the thread pool."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = fallback._pread

    async def __call__(self, fd: int, size: int, offset: int) -> bytes:
        self.calls += 1
        return await self.real(fd, size, offset)


def test_copy_segments_uses_the_thread_pool_only_for_uncached_chunks(
    data_file: tuple[Path, bytes, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, content, fd = data_file
    spy = PreadSpy()
    monkeypatch.setattr(fallback, "_pread", spy)
    out: list[bytes] = []

    async def noop() -> None:
        pass

    def copy() -> bytes:
        out.clear()
        asyncio.run(copy_segments(fd, [b"h", ByteRange(0, SIZE - 1)], out.append, noop))
        return b"".join(out)

    assert copy() == b"h" + content
    assert spy.calls == 0
    if not evict(path):
        pytest.skip("this file system does not drop pages on POSIX_FADV_DONTNEED")
    assert copy() == b"h" + content
    chunks = -(-SIZE // fallback.CHUNK_SIZE)
    assert 1 <= spy.calls <= chunks


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_small_cached_responses_skip_the_thread_pool_end_to_end(
    tmp_path: Path, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = os.urandom(20_000)
    (tmp_path / "small.bin").write_bytes(content)
    spy = PreadSpy()
    monkeypatch.setattr(fallback, "_pread", spy)
    with start_server(tmp_path, loop, "fallback") as running:
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        bodies = []
        for headers in ({}, {"Range": "bytes=5-9"}, {"Range": "bytes=0-0,-2"}, {}):
            connection.request("GET", "/small.bin", headers=headers)
            response = connection.getresponse()
            bodies.append((response.status, response.read()))
        connection.close()
        assert spy.calls == 0  # all cached: read in the loop
        if evict(tmp_path / "small.bin"):
            connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
            connection.request("GET", "/small.bin")
            cold = connection.getresponse().read()
            connection.close()
            assert cold == content
            # the refused NOWAIT read starts readahead, so the streamed path's own NOWAIT
            # read may already find the pages: at most that one read went to the thread
            assert spy.calls <= 1
    assert bodies[0] == (200, content)
    assert bodies[1] == (206, content[5:10])
    assert bodies[2][0] == 206 and content[:1] in bodies[2][1] and content[-2:] in bodies[2][1]
    assert bodies[3] == (200, content)
