"""The read fallback's page-cache fast path: chunks in the page cache are read in the loop
with ``preadv(RWF_NOWAIT)``; a chunk that is not cached goes to the thread pool, so the loop
never waits for the disk. Unit tests on real files, and end to end (plain and TLS) with the
thread pool's read spied on.

Where pytest's temp files live on a file system without NOWAIT reads (overlayfs: ``/tmp``
in a Docker container), the tests of the fast path skip with the reason, and the bytes are
still checked. A refusal is simulated too (``os.preadv`` raising EOPNOTSUPP): the file
system is asked once, not once per chunk, and the bytes are the same."""

from __future__ import annotations

import asyncio
import errno
import http.client
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import start_server

from zerohttp.body import fallback
from zerohttp.body.fallback import NowaitSupport, copy_segments, read_cached, render_cached
from zerohttp.message.response import ByteRange

SIZE = 3 * 1024 * 1024 + 5
CHUNKS = -(-SIZE // fallback.CHUNK_SIZE)


def nowait_unsupported(directory: Path) -> str | None:
    """Why a NOWAIT read of a cached file in ``directory`` fails, or None if it works."""
    if not fallback.RWF_NOWAIT:
        return "no os.RWF_NOWAIT on this platform"
    probe = directory / "nowait-probe.bin"
    probe.write_bytes(b"probe" * 1000)
    fd = os.open(probe, os.O_RDONLY)
    try:
        os.pread(fd, 5000, 0)  # in the page cache now
        os.preadv(fd, [bytearray(5000)], 0, fallback.RWF_NOWAIT)
    except OSError as exc:
        return f"preadv(RWF_NOWAIT) fails on the file system of {directory} ({exc})"
    finally:
        os.close(fd)
        probe.unlink()
    return None


@pytest.fixture(scope="session")
def nowait_reason(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    return nowait_unsupported(tmp_path_factory.getbasetemp())


@pytest.fixture
def nowait(nowait_reason: str | None) -> None:
    """Skip unless NOWAIT reads work where pytest's temp files are (not on overlayfs)."""
    if nowait_reason is not None:
        pytest.skip(nowait_reason)


@pytest.fixture(autouse=True)
def fresh_nowait_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """No refusing file system remembered from another test."""
    monkeypatch.setattr(fallback, "NOWAIT", NowaitSupport())


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


def copy_all(fd: int, segments: list[bytes | ByteRange]) -> bytes:
    out: list[bytes] = []

    async def noop() -> None:
        pass

    asyncio.run(copy_segments(fd, segments, out.append, noop))
    return b"".join(out)


@pytest.mark.usefixtures("nowait")
def test_cached_bytes_are_read_exactly(data_file: tuple[Path, bytes, int]) -> None:
    _, content, fd = data_file
    assert read_cached(fd, 1000, 0) == content[:1000]
    assert read_cached(fd, 7, SIZE - 7) == content[-7:]
    assert read_cached(fd, 0, 10) == b""


def test_past_the_end_is_none_not_short(data_file: tuple[Path, bytes, int]) -> None:
    _, _, fd = data_file
    assert read_cached(fd, 100, SIZE - 50) is None  # the caller's slow path sees FileShrank
    assert read_cached(fd, 10, SIZE + 10) is None


@pytest.mark.usefixtures("nowait")
def test_uncached_bytes_are_left_to_the_thread_pool(data_file: tuple[Path, bytes, int]) -> None:
    path, content, fd = data_file
    if not evict(path):
        pytest.skip("this file system does not drop pages on POSIX_FADV_DONTNEED")
    assert read_cached(fd, 4096, 0) is None
    assert evict(path)  # (the refused read started readahead: the pages may be back)
    assert render_cached(fd, [b"head", ByteRange(0, 99)], 1 << 20) is None
    os.pread(fd, 4096, 0)  # cached now, for sure
    assert read_cached(fd, 4096, 0) == content[:4096]


@pytest.mark.usefixtures("nowait")
def test_render_cached_joins_literals_and_ranges(data_file: tuple[Path, bytes, int]) -> None:
    _, content, fd = data_file
    segments = [b"HEAD\r\n", ByteRange(10, 19), b"--part--", ByteRange(SIZE - 3, SIZE - 1)]
    expected = b"HEAD\r\n" + content[10:20] + b"--part--" + content[-3:]
    assert render_cached(fd, segments, 13) == expected
    assert render_cached(fd, segments, 12) is None  # 13 file bytes: over the limit
    assert render_cached(fd, [b"x", ByteRange(SIZE - 1, SIZE)], 100) is None  # past the end


def test_copy_segments_is_byte_identical(data_file: tuple[Path, bytes, int]) -> None:
    """Whichever way the chunks are read (wherever the temp files are)."""
    _, content, fd = data_file
    assert copy_all(fd, [b"h", ByteRange(0, SIZE - 1)]) == b"h" + content
    ranges: list[bytes | ByteRange] = [ByteRange(5, 300_004), b"--", ByteRange(SIZE - 2, SIZE - 1)]
    assert copy_all(fd, ranges) == content[5:300_005] + b"--" + content[-2:]


class PreadSpy:
    """Counts the reads that went to the thread pool."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = fallback._pread

    async def __call__(self, fd: int, size: int, offset: int) -> bytes:
        self.calls += 1
        return await self.real(fd, size, offset)


@pytest.mark.usefixtures("nowait")
def test_copy_segments_uses_the_thread_pool_only_for_uncached_chunks(
    data_file: tuple[Path, bytes, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, content, fd = data_file
    spy = PreadSpy()
    monkeypatch.setattr(fallback, "_pread", spy)
    assert copy_all(fd, [b"h", ByteRange(0, SIZE - 1)]) == b"h" + content
    assert spy.calls == 0
    if not evict(path):
        pytest.skip("this file system does not drop pages on POSIX_FADV_DONTNEED")
    assert copy_all(fd, [b"h", ByteRange(0, SIZE - 1)]) == b"h" + content
    assert 1 <= spy.calls <= CHUNKS


def fetch_small_file_variants(port: int) -> list[tuple[int, bytes]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    bodies = []
    for headers in ({}, {"Range": "bytes=5-9"}, {"Range": "bytes=0-0,-2"}, {}):
        connection.request("GET", "/small.bin", headers=headers)
        response = connection.getresponse()
        bodies.append((response.status, response.read()))
    connection.close()
    return bodies


def check_small_file_variants(bodies: list[tuple[int, bytes]], content: bytes) -> None:
    assert bodies[0] == (200, content)
    assert bodies[1] == (206, content[5:10])
    assert bodies[2][0] == 206 and content[:1] in bodies[2][1] and content[-2:] in bodies[2][1]
    assert bodies[3] == (200, content)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_fallback_bodies_end_to_end(tmp_path: Path, loop: str) -> None:
    """Whichever way the chunks are read (wherever the temp files are)."""
    content = os.urandom(20_000)
    (tmp_path / "small.bin").write_bytes(content)
    with start_server(tmp_path, loop, "fallback") as running:
        check_small_file_variants(fetch_small_file_variants(running.port), content)


@pytest.mark.usefixtures("nowait")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_small_cached_responses_skip_the_thread_pool_end_to_end(
    tmp_path: Path, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = os.urandom(20_000)
    (tmp_path / "small.bin").write_bytes(content)
    spy = PreadSpy()
    monkeypatch.setattr(fallback, "_pread", spy)
    with start_server(tmp_path, loop, "fallback") as running:
        bodies = fetch_small_file_variants(running.port)
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
    check_small_file_variants(bodies, content)


# --- a file system without NOWAIT reads (simulated) -------------------------------------


class RefusingPreadv:
    """``os.preadv`` of a file system without NOWAIT reads (``errno``) for the descriptors
    ``refuses`` picks; the others read as if all were cached. Counts the calls per fd."""

    def __init__(self, code: int, refuses: Callable[[int], bool] = lambda fd: True) -> None:
        self.code = code
        self.refuses = refuses
        self.calls: dict[int, int] = {}

    def __call__(self, fd: int, buffers: list[bytearray], offset: int, flags: int = 0) -> int:
        self.calls[fd] = self.calls.get(fd, 0) + 1
        if self.refuses(fd):
            raise OSError(self.code, os.strerror(self.code))
        data = os.pread(fd, len(buffers[0]), offset)
        buffers[0][: len(data)] = data
        return len(data)


def two_files(tmp_path: Path) -> list[tuple[int, bytes]]:
    """Two multi-chunk files on one file system, opened: (fd, content)."""
    opened = []
    for name in ("a.bin", "b.bin"):
        content = os.urandom(SIZE)
        (tmp_path / name).write_bytes(content)
        opened.append((os.open(tmp_path / name, os.O_RDONLY), content))
    return opened


@pytest.mark.parametrize(
    "code", [errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS], ids=errno.errorcode.get
)
def test_a_file_system_refusing_nowait_is_asked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    preadv = RefusingPreadv(code)
    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(fallback, "NOWAIT", NowaitSupport(flag=1))
    opened = two_files(tmp_path)
    try:
        for fd, content in opened * 2:
            assert copy_all(fd, [b"h", ByteRange(0, SIZE - 1)]) == b"h" + content
            assert render_cached(fd, [b"h", ByteRange(0, 9)], 1 << 20) is None
            assert read_cached(fd, 10, 0) is None
        assert sum(preadv.calls.values()) == 1, "asked once for the file system, not per chunk"
        assert fallback.NOWAIT.refusing == {os.fstat(opened[0][0]).st_dev}
    finally:
        for fd, _ in opened:
            os.close(fd)


def test_the_first_refusal_ends_nowait_reads_for_the_rest_of_the_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preadv = RefusingPreadv(errno.EOPNOTSUPP)
    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(fallback, "NOWAIT", NowaitSupport(flag=1))
    spy = PreadSpy()
    monkeypatch.setattr(fallback, "_pread", spy)
    (fd, content), (other, _) = two_files(tmp_path)
    os.close(other)
    try:
        segments: list[bytes | ByteRange] = [ByteRange(0, SIZE - 1), b"--", ByteRange(0, 9)]
        assert copy_all(fd, segments) == content + b"--" + content[:10]
    finally:
        os.close(fd)
    assert preadv.calls == {fd: 1}
    assert spy.calls == CHUNKS + 1  # every chunk read by the thread pool


def test_other_file_systems_are_still_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (refusing_fd, refusing_content), (fd, content) = two_files(tmp_path)
    real_fstat = os.fstat

    def fstat(descriptor: int) -> Any:  # the second file on a file system of its own
        st = real_fstat(descriptor)
        return SimpleNamespace(st_dev=st.st_dev + 1) if descriptor == fd else st

    monkeypatch.setattr(os, "fstat", fstat)
    preadv = RefusingPreadv(errno.EOPNOTSUPP, refuses=lambda d: d == refusing_fd)
    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(fallback, "NOWAIT", NowaitSupport(flag=1))
    spy = PreadSpy()
    monkeypatch.setattr(fallback, "_pread", spy)
    try:
        for _ in range(2):
            assert copy_all(refusing_fd, [ByteRange(0, SIZE - 1)]) == refusing_content
            assert copy_all(fd, [ByteRange(0, SIZE - 1)]) == content
            assert render_cached(fd, [b"h", ByteRange(0, 9)], 1 << 20) == b"h" + content[:10]
    finally:
        os.close(refusing_fd)
        os.close(fd)
    assert preadv.calls == {refusing_fd: 1, fd: 2 * (CHUNKS + 1)}
    assert spy.calls == 2 * CHUNKS  # only the refusing file's chunks


def test_not_cached_is_not_a_refusal(
    data_file: tuple[Path, bytes, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EAGAIN says these pages are not cached, not that the file system has no NOWAIT."""
    _, content, fd = data_file
    preadv = RefusingPreadv(errno.EAGAIN)
    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(fallback, "NOWAIT", NowaitSupport(flag=1))
    for _ in range(2):
        assert copy_all(fd, [ByteRange(0, SIZE - 1)]) == content
    assert preadv.calls == {fd: 2 * CHUNKS}
    assert fallback.NOWAIT.refusing == set()


def test_no_flag_no_nowait_reads(
    data_file: tuple[Path, bytes, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform without os.RWF_NOWAIT: every chunk goes to the thread pool, unasked."""
    _, content, fd = data_file
    preadv = RefusingPreadv(errno.EOPNOTSUPP)
    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(fallback, "NOWAIT", NowaitSupport(flag=0))
    assert copy_all(fd, [ByteRange(0, SIZE - 1)]) == content
    assert render_cached(fd, [ByteRange(0, 9)], 1 << 20) is None
    assert preadv.calls == {}


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_refusing_file_system_is_asked_once_end_to_end(
    tmp_path: Path, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server over TCP, its files on a (simulated) overlayfs: bodies identical, and one
    refused NOWAIT read for all the responses."""
    small = os.urandom(20_000)
    (tmp_path / "small.bin").write_bytes(small)
    big = os.urandom(SIZE)
    (tmp_path / "big.bin").write_bytes(big)
    preadv = RefusingPreadv(errno.EOPNOTSUPP)
    monkeypatch.setattr(os, "preadv", preadv)
    monkeypatch.setattr(fallback, "NOWAIT", NowaitSupport(flag=1))
    with start_server(tmp_path, loop, "fallback") as running:
        bodies = fetch_small_file_variants(running.port)
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        for _ in range(2):
            connection.request("GET", "/big.bin")
            assert connection.getresponse().read() == big
        connection.close()
    check_small_file_variants(bodies, small)
    assert sum(preadv.calls.values()) == 1
