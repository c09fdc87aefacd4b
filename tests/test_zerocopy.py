"""The zero-copy body path: which sendfile(2) calls are made, when the fallback takes over,
files beyond 4 GiB, and ``FileTransfer``'s contract with its caller.

End-to-end tests run a real server in a thread of this process, so patching ``os.sendfile``
here is seen by the server: zerohttp looks it up through ``sendfile_function()`` per use.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
import itertools
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop
from conftest import LOOPS, SIZES, RunningServer, make_site, start_server
from helpers import RawClient

from zerohttp.body import zerocopy
from zerohttp.body.fallback import copy_segments
from zerohttp.body.zerocopy import (
    MSG_MORE,
    SENDFILE_MAX_CHUNK,
    UNSUPPORTED_ERRNOS,
    FileShrank,
    FileTransfer,
    Segment,
    SendfileUnsupported,
    complete_transfer,
)
from zerohttp.message.response import ByteRange
from zerohttp.static.ranges import multipart_segments

# Most tests here drive the real sendfile(2) from files under pytest's temp directory.
pytestmark = pytest.mark.usefixtures("tmp_sendfile")


@pytest.fixture(autouse=True)
def whole_ranges_per_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most tests here pin down how ranges map onto sendfile calls, so let a turn send
    everything (zerocopy.TURN_BYTES bounds it in production; the turn tests set it back)."""
    monkeypatch.setattr(zerocopy, "TURN_BYTES", 1 << 62)


REAL_SENDFILE = os.sendfile
# a fake or spy that is called this often is in a loop that does not end: fail instead
MAX_CALLS = 100_000
GIB = 1024**3
KIB_FILE = "kib.bin"
BIG_FILE = "ten-mib.bin"
LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


# --- helpers -------------------------------------------------------------------------------


def region(offset: int, count: int) -> list[Segment]:
    """``count`` file bytes from ``offset`` as segments: one ByteRange, or none when empty."""
    return [ByteRange(offset, offset + count - 1)] if count else []


def make(sock: socket.socket, head: bytes, fd: int, offset: int, count: int) -> FileTransfer:
    """A response head followed by one region of ``fd`` (an empty head is left out)."""
    return FileTransfer(sock, fd, ([head] if head else []) + region(offset, count))


@dataclass
class Call:
    out_fd: int
    in_fd: int
    offset: int
    count: int
    result: int | None = None  # bytes sent, or None when the call raised
    error: BaseException | None = None
    peer: Any = None  # getpeername() of out_fd, taken inside the call
    in_inode: int | None = None


class SendfileSpy:
    """Stands in for ``os.sendfile``: records every call, then delegates (or fails)."""

    def __init__(self, fail_first: OSError | None = None, inspect: bool = True) -> None:
        self.calls: list[Call] = []
        self.fail_first = fail_first
        self.inspect = inspect
        self.lock = threading.Lock()

    def __call__(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        if len(self.calls) > MAX_CALLS:
            raise AssertionError("runaway sendfile loop")
        call = Call(out_fd, in_fd, offset, count)
        if self.inspect:
            with socket.socket(fileno=os.dup(out_fd)) as s:
                call.peer = s.getpeername()
            call.in_inode = os.fstat(in_fd).st_ino
        with self.lock:
            first = not self.calls
            self.calls.append(call)
        if first and self.fail_first is not None:
            call.error = self.fail_first
            raise self.fail_first
        try:
            call.result = REAL_SENDFILE(out_fd, in_fd, offset, count)
        except BaseException as exc:
            call.error = exc
            raise
        return call.result


def fetch(running: RunningServer, paths: list[str]) -> tuple[list[bytes], tuple[str, int]]:
    """GET ``paths`` over one keep-alive connection; the bodies and the client's address."""
    conn = http.client.HTTPConnection(running.host, running.port, timeout=20)
    try:
        conn.connect()
        client_address = conn.sock.getsockname()
        bodies = []
        for path in paths:
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200
            body = response.read()
            assert int(response.getheader("Content-Length")) == len(body)
            bodies.append(body)
        return bodies, client_address
    finally:
        conn.close()


@pytest.fixture(scope="module")
def zsite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_site(tmp_path_factory.mktemp("zerocopy") / "root")


def check_sendfile_calls(calls: list[Call], size: int, client: tuple[str, int], inode: int) -> None:
    """The calls of one response: contiguous offsets from 0, counts to the end, sum = size."""
    assert calls, "os.sendfile was never called"
    position = 0
    for call in calls:
        assert call.peer == client, "sendfile must write to this client's socket"
        assert call.in_inode == inode, "sendfile must read the requested file"
        assert call.offset == position
        assert call.count == size - position
        if call.error is None:
            assert call.result is not None and call.result > 0
            position += call.result
        else:
            assert isinstance(call.error, BlockingIOError), call.error
    assert position == size
    assert sum(c.result for c in calls if c.result is not None) == size
    assert calls[-1].error is None


# --- a. the sendfile path really uses sendfile, the fallback path never does --------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("name", [KIB_FILE, BIG_FILE])
def test_sendfile_path_calls_sendfile_on_the_socket(
    zsite: Path, loop: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendfileSpy()
    monkeypatch.setattr(os, "sendfile", spy)
    with start_server(zsite, loop, "sendfile") as running:
        (body,), client = fetch(running, ["/" + name])
    expected = (zsite / name).read_bytes()
    assert len(body) == SIZES[name]
    assert body == expected
    check_sendfile_calls(spy.calls, SIZES[name], client, (zsite / name).stat().st_ino)
    out_fds = {c.out_fd for c in spy.calls}
    assert len(out_fds) == 1
    if name == KIB_FILE:
        assert [(c.offset, c.count, c.result) for c in spy.calls] == [(0, 1024, 1024)]


@pytest.mark.parametrize("loop", LOOPS)
def test_sendfile_path_every_response_on_a_keepalive_connection(
    zsite: Path, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendfileSpy()
    monkeypatch.setattr(os, "sendfile", spy)
    names = [BIG_FILE, KIB_FILE, BIG_FILE, "one.bin"]
    with start_server(zsite, loop, "sendfile") as running:
        bodies, client = fetch(running, ["/" + n for n in names])
    assert bodies == [(zsite / n).read_bytes() for n in names]
    # split the calls per response: each one starts again at offset 0
    groups: list[list[Call]] = []
    for call in spy.calls:
        if call.offset == 0 and (not groups or groups[-1][-1].error is None):
            groups.append([])
        groups[-1].append(call)
    assert len(groups) == len(names)
    for name, group in zip(names, groups, strict=True):
        check_sendfile_calls(group, SIZES[name], client, (zsite / name).stat().st_ino)


@pytest.mark.parametrize("loop", LOOPS)
def test_fallback_path_never_calls_sendfile(
    zsite: Path, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SendfileSpy()
    monkeypatch.setattr(os, "sendfile", spy)
    with start_server(zsite, loop, "fallback") as running:
        bodies, _ = fetch(running, ["/" + KIB_FILE, "/" + BIG_FILE])
    assert bodies == [(zsite / KIB_FILE).read_bytes(), (zsite / BIG_FILE).read_bytes()]
    assert spy.calls == []


def test_empty_file_needs_no_sendfile(zsite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = SendfileSpy()
    monkeypatch.setattr(os, "sendfile", spy)
    with start_server(zsite, "asyncio", "sendfile") as running:
        bodies, _ = fetch(running, ["/empty.bin", "/empty.bin"])
    assert bodies == [b"", b""]
    assert spy.calls == []


# --- b. the fallback takes over when sendfile refuses ---------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL], ids=["ENOSYS", "EINVAL"])
@pytest.mark.parametrize("name", [KIB_FILE, BIG_FILE])
def test_unsupported_first_call_falls_back_byte_identical(
    zsite: Path, loop: str, code: int, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = (zsite / name).read_bytes()
    with start_server(zsite, loop, "sendfile") as running:
        (via_sendfile,), _ = fetch(running, ["/" + name])
        spy = SendfileSpy(fail_first=OSError(code, os.strerror(code)))
        monkeypatch.setattr(os, "sendfile", spy)
        # the refused response, then one more on the same connection: it must still work
        (via_fallback, after), _ = fetch(running, ["/" + name, "/" + KIB_FILE])
    assert via_sendfile == expected
    assert via_fallback == expected
    assert via_fallback == via_sendfile
    assert after == (zsite / KIB_FILE).read_bytes()
    assert spy.calls[0].offset == 0
    assert isinstance(spy.calls[0].error, OSError) and spy.calls[0].error.errno == code
    # the refused response did not retry sendfile: every later call is for the next response
    kib_inode = (zsite / KIB_FILE).stat().st_ino
    assert spy.calls[0].in_inode == (zsite / name).stat().st_ino
    assert len(spy.calls) >= 2
    assert all(c.in_inode == kib_inode for c in spy.calls[1:])


class ScriptedSendfile:
    """Real sendfile, except that the calls numbered in ``script`` do something else:
    an exception to raise, or a cap on the count passed to the real call."""

    def __init__(self, script: dict[int, BaseException | int]) -> None:
        self.script = script
        self.calls: list[tuple[int, int]] = []

    def __call__(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        if len(self.calls) > MAX_CALLS:
            raise AssertionError("runaway sendfile loop")
        self.calls.append((offset, count))
        step = self.script.get(len(self.calls))
        if isinstance(step, BaseException):
            raise step
        if step is not None:
            count = min(count, step)
        return REAL_SENDFILE(out_fd, in_fd, offset, count)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL], ids=["ENOSYS", "EINVAL"])
def test_unsupported_after_eagain_falls_back_byte_identical(
    zsite: Path, loop: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused only once the transfer went asynchronous (first call said EAGAIN)."""
    fake = ScriptedSendfile(
        {1: BlockingIOError(errno.EAGAIN, "again"), 2: OSError(code, os.strerror(code))}
    )
    monkeypatch.setattr(os, "sendfile", fake)
    with start_server(zsite, loop, "sendfile") as running:
        (body, after), _ = fetch(running, ["/" + BIG_FILE, "/" + KIB_FILE])
    assert body == (zsite / BIG_FILE).read_bytes()
    assert after == (zsite / KIB_FILE).read_bytes()
    assert fake.calls[:2] == [(0, SIZES[BIG_FILE]), (0, SIZES[BIG_FILE])]
    assert fake.calls[2:] == [(0, SIZES[KIB_FILE])]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL], ids=["ENOSYS", "EINVAL"])
def test_refusal_after_body_bytes_aborts_instead_of_mixing(
    zsite: Path, loop: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once body bytes went out by sendfile the fallback must not take over: abort."""
    fake = ScriptedSendfile({1: 100_000, 2: OSError(code, os.strerror(code))})
    monkeypatch.setattr(os, "sendfile", fake)
    with start_server(zsite, loop, "sendfile") as running:
        sock = socket.create_connection((running.host, running.port), timeout=10)
        try:
            sock.sendall(b"GET /" + BIG_FILE.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            client = RawClient(sock)
            status, reason, headers, _ = client.read_head()
            body = client.read_until_close()  # until the abort: EOF or reset
        finally:
            sock.close()
    assert (status, reason) == (200, "OK")
    assert dict(headers)["content-length"] == str(SIZES[BIG_FILE])
    assert body == (zsite / BIG_FILE).read_bytes()[:100_000]
    assert fake.calls == [(0, SIZES[BIG_FILE]), (100_000, SIZES[BIG_FILE] - 100_000)]


@pytest.mark.parametrize("loop", LOOPS)
def test_no_os_sendfile_at_start_serves_by_reading(
    zsite: Path, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_server(zsite, loop, "sendfile") as running:
        (via_sendfile,), _ = fetch(running, ["/" + BIG_FILE])
    monkeypatch.delattr(os, "sendfile")
    assert zerocopy.sendfile_function() is None
    with start_server(zsite, loop, "sendfile") as running:
        assert running.server.state.zero_copy is False
        bodies, _ = fetch(running, ["/" + BIG_FILE, "/" + KIB_FILE])
    assert bodies[0] == (zsite / BIG_FILE).read_bytes()
    assert bodies[0] == via_sendfile
    assert bodies[1] == (zsite / KIB_FILE).read_bytes()


@pytest.mark.parametrize("loop", LOOPS)
def test_os_sendfile_vanishing_while_running_falls_back(
    zsite: Path, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_server(zsite, loop, "sendfile") as running:
        (via_sendfile,), _ = fetch(running, ["/" + BIG_FILE])
        assert running.server.state.zero_copy is True
        monkeypatch.delattr(os, "sendfile")
        bodies, _ = fetch(running, ["/" + BIG_FILE, "/" + KIB_FILE])
    assert bodies[0] == (zsite / BIG_FILE).read_bytes()
    assert bodies[0] == via_sendfile
    assert bodies[1] == (zsite / KIB_FILE).read_bytes()


# --- c. beyond 4 GiB ------------------------------------------------------------------------

BLOCK_AT = 4 * GIB + 123456
SPARSE_SIZE = 4 * GIB + GIB // 2


@pytest.fixture
def sparse_file(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    path = tmp_path / "sparse.bin"
    block = os.urandom(64 * 1024)
    with open(path, "wb") as f:
        f.seek(BLOCK_AT)
        f.write(block)
        f.truncate(SPARSE_SIZE)
    assert path.stat().st_size == SPARSE_SIZE
    try:
        yield path, block
    finally:
        path.unlink()


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    parts = []
    got = 0
    while got < count:
        chunk = sock.recv(min(65536, count - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("loop", LOOPS)
def test_region_beyond_4gib_over_socketpair(
    sparse_file: tuple[Path, bytes], loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, block = sparse_file
    head = b"HEAD\r\n\r\n"
    offset = BLOCK_AT - 1000
    count = 70000
    expected = b"\0" * 1000 + block + b"\0" * (count - 1000 - len(block))
    assert len(expected) == count
    spy = SendfileSpy(inspect=False)
    monkeypatch.setattr(os, "sendfile", spy)

    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # a small send buffer so the transfer has to wait for writability several times
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    sender.setblocking(False)
    receiver.settimeout(20)
    received: list[bytes] = []
    # the reader stays behind so the first pump cannot finish at once
    start_reading = threading.Event()

    def read() -> None:
        start_reading.wait(20)
        received.append(recv_exactly(receiver, len(head) + count))
        received.append(receiver.recv(1))  # EOF once the sender is closed

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    fd = os.open(path, os.O_RDONLY)
    event_loop = LOOP_FACTORIES[loop]()
    try:

        async def transfer() -> tuple[bool, list[Segment]]:
            t = make(sender, head, fd, offset, count)
            first = t.pump()
            start_reading.set()
            if not first:
                await complete_transfer(asyncio.get_running_loop(), t, timeout=20)
            return first, t.remaining()

        first_done, remaining = event_loop.run_until_complete(
            asyncio.wait_for(transfer(), timeout=30)
        )
    finally:
        event_loop.close()
        os.close(fd)
        start_reading.set()
        sender.close()
    reader.join(20)
    receiver.close()
    assert not reader.is_alive()
    assert first_done is False, "an 8 KiB send buffer cannot take 70000 bytes at once"
    assert remaining == []
    data, eof = received
    assert data[: len(head)] == head
    assert len(data) == len(head) + count
    assert data[len(head) :] == expected
    assert eof == b""
    done = [c for c in spy.calls if c.error is None]
    assert done[0].offset == offset
    assert sum(c.result or 0 for c in done) == count
    assert all(c.offset > 2**32 for c in spy.calls)


def test_sparse_region_served_over_http(
    sparse_file: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the whole 4.5 GiB: only that the server opens and announces it correctly."""
    path, _ = sparse_file
    with start_server(path.parent, "asyncio", "sendfile") as running:
        conn = http.client.HTTPConnection(running.host, running.port, timeout=10)
        conn.request("HEAD", "/" + path.name)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(SPARSE_SIZE)
        assert response.read() == b""
        conn.close()


class FakeSendfile:
    """Records ``(out, in, offset, count)`` and plays back scripted results."""

    def __init__(self, *script: int | BaseException | Callable[[int], int]) -> None:
        self.script = list(script)
        self.calls: list[tuple[int, int, int, int]] = []

    def __call__(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        if len(self.calls) > MAX_CALLS:
            raise AssertionError("runaway sendfile loop")
        self.calls.append((out_fd, in_fd, offset, count))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(count)
        return step


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.setblocking(False)
    b.settimeout(5)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    "limit", [None, SENDFILE_MAX_CHUNK + 1, 2**31 - 1, 1_000_000_007, 999_999_937]
)
def test_never_asks_for_more_than_max_chunk(
    pair: tuple[socket.socket, socket.socket], limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = pair
    start = 2**32 + 123
    total = 2 * SENDFILE_MAX_CHUNK + 5
    fake = FakeSendfile(lambda count: count if limit is None else min(count, limit))
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = make(sender, b"H\r\n\r\n", 77, start, total)
    assert transfer.segments == [b"H\r\n\r\n", ByteRange(start, start + total - 1)]
    assert transfer.pump() is True
    assert receiver.recv(100) == b"H\r\n\r\n"
    assert transfer.remaining() == []
    position = start
    for out_fd, in_fd, offset, count in fake.calls:
        assert out_fd == sender.fileno()
        assert in_fd == 77
        assert offset == position
        assert count == min(SENDFILE_MAX_CHUNK, start + total - position)
        assert count <= SENDFILE_MAX_CHUNK
        position += count if limit is None else min(count, limit)
    assert position == start + total
    if limit is None:
        assert [c[2:] for c in fake.calls] == [
            (start, SENDFILE_MAX_CHUNK),
            (start + SENDFILE_MAX_CHUNK, SENDFILE_MAX_CHUNK),
            (start + 2 * SENDFILE_MAX_CHUNK, 5),
        ]


@pytest.mark.parametrize("start", [2**32, 2**32 + 1, 2**40 + 12345, 2**62])
def test_offsets_above_4gib_passed_through(
    pair: tuple[socket.socket, socket.socket], start: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    fake = FakeSendfile(1000, 24)
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = make(sender, b"", 5, start, 1024)
    assert transfer.remaining() == [ByteRange(start, start + 1023)]
    assert transfer.pump() is True
    assert [c[2:] for c in fake.calls] == [(start, 1024), (start + 1000, 24)]
    assert transfer.remaining() == []


# --- d. FileTransfer's contract -------------------------------------------------------------


def test_zero_before_the_end_is_file_shrank(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    fake = FakeSendfile(400, 0)
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = make(sender, b"HEAD\r\n\r\n", 9, 100, 1000)
    with pytest.raises(FileShrank):
        transfer.pump()
    assert [c[2:] for c in fake.calls] == [(100, 1000), (500, 600)]
    assert transfer.remaining() == [ByteRange(500, 1099)]
    assert transfer.body_started is True


def test_zero_on_the_first_call_is_file_shrank(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    monkeypatch.setattr(os, "sendfile", FakeSendfile(0))
    transfer = make(sender, b"HEAD\r\n\r\n", 9, 0, 10)
    with pytest.raises(FileShrank):
        transfer.pump()
    assert transfer.body_started is False
    assert transfer.remaining() == [ByteRange(0, 9)]


def test_real_file_shorter_than_count_is_file_shrank(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    sender, receiver = pair
    content = os.urandom(1000)
    path = tmp_path / "short.bin"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        transfer = make(sender, b"HEAD\r\n\r\n", fd, 0, 5000)
        with pytest.raises(FileShrank):
            transfer.pump()
    finally:
        os.close(fd)
    sender.close()
    assert recv_exactly(receiver, 10_000) == b"HEAD\r\n\r\n" + content
    assert transfer.remaining() == [ByteRange(1000, 4999)]


@pytest.mark.parametrize("code", sorted(UNSUPPORTED_ERRNOS), ids=errno.errorcode.get)
def test_unsupported_before_any_body_byte(
    pair: tuple[socket.socket, socket.socket], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = pair
    monkeypatch.setattr(os, "sendfile", FakeSendfile(OSError(code, os.strerror(code))))
    transfer = make(sender, b"HEAD\r\n\r\n", 9, 0, 10)
    with pytest.raises(SendfileUnsupported) as info:
        transfer.pump()
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == code
    assert transfer.body_started is False
    # the head went out (the fallback must not resend it); the whole body is left
    assert transfer.remaining() == [ByteRange(0, 9)]
    assert receiver.recv(100) == b"HEAD\r\n\r\n"


def test_sendfile_missing_is_unsupported(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    monkeypatch.delattr(os, "sendfile")
    transfer = make(sender, b"HEAD\r\n\r\n", 9, 0, 10)
    with pytest.raises(SendfileUnsupported):
        transfer.pump()
    assert transfer.remaining() == [ByteRange(0, 9)]  # no head bytes left


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL], ids=["ENOSYS", "EINVAL"])
def test_unsupported_after_body_bytes_propagates_oserror(
    pair: tuple[socket.socket, socket.socket], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    fake = FakeSendfile(300, OSError(code, os.strerror(code)))
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = make(sender, b"HEAD\r\n\r\n", 9, 0, 1000)
    with pytest.raises(OSError) as info:
        transfer.pump()
    assert type(info.value) is OSError
    assert info.value.errno == code
    assert not isinstance(info.value, SendfileUnsupported)
    assert transfer.body_started is True
    assert transfer.remaining() == [ByteRange(300, 999)]


def test_unsupported_after_blocking_but_before_body_is_still_unsupported(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    fake = FakeSendfile(BlockingIOError(errno.EAGAIN, "again"), OSError(errno.EINVAL, "inval"))
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = make(sender, b"HEAD\r\n\r\n", 9, 0, 1000)
    assert transfer.pump() is False
    with pytest.raises(SendfileUnsupported):
        transfer.pump()
    assert transfer.body_started is False
    assert transfer.remaining() == [ByteRange(0, 999)]


def test_broken_connection_is_plain_oserror(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    sender, receiver = pair
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(4096))
    receiver.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        transfer = make(sender, b"", fd, 0, 4096)
        with pytest.raises(OSError) as info:
            transfer.pump()
    finally:
        os.close(fd)
    assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)
    assert not isinstance(info.value, SendfileUnsupported)


def test_blocking_returns_false_and_resumes_at_the_right_offset(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = pair
    again = BlockingIOError(errno.EAGAIN, "again")
    fake = FakeSendfile(1000, again, 2500, again, again, 6500)
    monkeypatch.setattr(os, "sendfile", fake)
    start = 2**33 + 17
    transfer = make(sender, b"HEAD\r\n\r\n", 9, start, 10_000)
    assert transfer.pump() is False
    assert transfer.remaining() == [ByteRange(start + 1000, start + 9999)]
    assert transfer.pump() is False
    assert transfer.remaining() == [ByteRange(start + 3500, start + 9999)]
    assert transfer.pump() is False
    assert transfer.remaining() == [ByteRange(start + 3500, start + 9999)]
    assert transfer.pump() is True
    assert transfer.remaining() == []
    assert [c[2:] for c in fake.calls] == [
        (start, 10_000),
        (start + 1000, 9000),
        (start + 1000, 9000),
        (start + 3500, 6500),
        (start + 3500, 6500),
        (start + 3500, 6500),
    ]
    assert receiver.recv(100) == b"HEAD\r\n\r\n"  # sent once, not again on later pumps


def test_blocked_head_is_resumed_not_repeated(tmp_path: Path) -> None:
    """A head bigger than the socket takes arrives whole and once, then the body follows."""
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender.setblocking(False)
    receiver.settimeout(5)
    head = os.urandom(200_000)
    content = os.urandom(300_000)
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    received = bytearray()
    pumps = 0
    head_seen_pending = False
    try:
        transfer = make(sender, head, fd, 0, len(content))
        while not transfer.pump():
            pumps += 1
            assert pumps < 10_000
            rest = transfer.remaining()
            received += receiver.recv(1 << 20)
            if isinstance(rest[0], bytes):
                # the head's unsent tail comes first, then the whole body
                head_seen_pending = True
                assert 0 < len(rest[0]) < len(head)
                assert bytes(received) + rest[0] == head
                assert rest[1:] == [ByteRange(0, len(content) - 1)]
            else:
                assert rest == [ByteRange(len(received) - len(head), len(content) - 1)]
        sender.close()
        while chunk := receiver.recv(1 << 20):
            received += chunk
    finally:
        os.close(fd)
        sender.close()
        receiver.close()
    assert pumps > 1
    assert head_seen_pending, "a 4 KiB send buffer cannot take a 200 kB head at once"
    assert bytes(received) == head + content


class FlagRecordingSocket(socket.socket):
    """Records the flags of every ``send`` attempt, and what each successful one sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.send_flags: list[int] = []
        self.sent: list[tuple[bytes, int]] = []

    def send(self, data: Any, flags: int = 0) -> int:
        self.send_flags.append(flags)
        count = super().send(data, flags)
        self.sent.append((bytes(memoryview(data)[:count]), flags))
        return count


@pytest.mark.skipif(not MSG_MORE, reason="MSG_MORE is Linux-only")
@pytest.mark.parametrize("count, flags", [(100, MSG_MORE), (0, 0)])
def test_head_is_corked_only_when_a_body_follows(
    tmp_path: Path, count: int, flags: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender = FlagRecordingSocket(a.family, a.type, fileno=a.detach())
    sender.setblocking(False)
    b.settimeout(5)
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        transfer = make(sender, b"HEAD\r\n\r\n", fd, 0, count)
        assert transfer.pump() is True
        sender.close()
        assert recv_exactly(b, 1000) == b"HEAD\r\n\r\n" + b"x" * count
    finally:
        os.close(fd)
        sender.close()
        b.close()
    assert sender.send_flags == [flags]


@pytest.mark.parametrize("loop", LOOPS)
def test_complete_transfer_times_out_without_a_reader(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path, loop: str
) -> None:
    sender, _ = pair
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(4 * 1024 * 1024))
    assert stat.S_ISREG(path.stat().st_mode)
    fd = os.open(path, os.O_RDONLY)
    event_loop = LOOP_FACTORIES[loop]()
    try:
        transfer = make(sender, b"HEAD\r\n\r\n", fd, 0, 4 * 1024 * 1024)
        assert transfer.pump() is False
        left_before = transfer.remaining()

        async def go() -> None:
            await complete_transfer(asyncio.get_running_loop(), transfer, timeout=0.3)

        started = time.monotonic()
        with pytest.raises(TimeoutError):
            event_loop.run_until_complete(asyncio.wait_for(go(), timeout=10))
        assert time.monotonic() - started < 5
    finally:
        event_loop.close()
        os.close(fd)
    assert transfer.remaining() == left_before
    # the head and part of the body went out before the reader-less socket filled up
    (left,) = left_before
    assert isinstance(left, ByteRange)
    assert left.end == 4 * 1024 * 1024 - 1
    assert 0 < left.length < 4 * 1024 * 1024


# --- e. segments: multipart/byteranges bodies, corking, hand-over to the fallback -----------

CONTENT_SIZE = 1_000_000
BOUNDARY = "5f0c2b9e7a3d41e8"
HEAD_206 = (
    b"HTTP/1.1 206 Partial Content\r\n"
    b"Content-Type: multipart/byteranges; boundary=" + BOUNDARY.encode() + b"\r\n\r\n"
)


def part_head(byte_range: ByteRange, first: bool = False) -> bytes:
    return (
        ("" if first else "\r\n")
        + f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n"
        + f"Content-Range: bytes {byte_range.start}-{byte_range.end}/{CONTENT_SIZE}\r\n\r\n"
    ).encode()


CLOSING = f"\r\n--{BOUNDARY}--\r\n".encode()
R1 = ByteRange(10, 1009)
R2 = ByteRange(500_000, 899_999)  # more than one read chunk of the fallback
R3 = ByteRange(CONTENT_SIZE - 1, CONTENT_SIZE - 1)


def layout(name: str) -> list[Segment]:
    """Named segment lists over a ``CONTENT_SIZE`` file, as responses send them."""
    if name == "multipart":  # head, range, part header, range, closing: by hand
        return [HEAD_206 + part_head(R1, first=True), R1, part_head(R2), R2, CLOSING]
    if name == "multipart_segments":  # what the handler builds for a 3-part 206
        body, length = multipart_segments(
            [R1, R2, R3], CONTENT_SIZE, "application/octet-stream", BOUNDARY
        )
        assert length == sum(len(s) if isinstance(s, bytes) else s.length for s in body)
        return [HEAD_206, *body]
    if name == "range_last":  # a range ends the body: nothing literal after it
        return [HEAD_206, R1, part_head(R2), R2]
    if name == "unordered":  # ranges out of file order, adjacent ranges and literals
        return [HEAD_206, R2, R1, b"--", b"mid\r\n", R3, ByteRange(0, 0), CLOSING]
    if name == "head_only":
        return [HEAD_206]
    if name == "big_literals":  # literals larger than the socket takes at once
        return [os.urandom(300_000), R1, os.urandom(300_000), R2, os.urandom(300_000)]
    raise AssertionError(name)


LAYOUTS = ["multipart", "multipart_segments", "range_last", "unordered", "big_literals"]


def expected_stream(segments: list[Segment], content: bytes) -> bytes:
    """The bytes a client must receive for ``segments`` over a file holding ``content``."""
    return b"".join(s if isinstance(s, bytes) else content[s.start : s.end + 1] for s in segments)


@pytest.fixture
def content_file(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    content = os.urandom(CONTENT_SIZE)
    path = tmp_path / "content.bin"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd, content
    finally:
        os.close(fd)


def stream_pair(
    sndbuf: int | None = 8192, recording: bool = False
) -> tuple[socket.socket, socket.socket]:
    """A non-blocking sender (optionally recording its sends) and a blocking receiver."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender = FlagRecordingSocket(a.family, a.type, fileno=a.detach()) if recording else a
    if sndbuf is not None:
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sender.setblocking(False)
    b.settimeout(20)
    return sender, b


def transfer_all(
    sender: socket.socket, receiver: socket.socket, fd: int, segments: list[Segment], loop: str
) -> tuple[bytes, bool]:
    """Send ``segments`` as the server does (pump, then complete_transfer) while a thread
    reads to EOF; the bytes received and whether the first pump finished everything."""
    received = bytearray()
    # the reader stays behind until the first pump is over, so it cannot finish at once
    start_reading = threading.Event()

    def read() -> None:
        start_reading.wait(20)
        while chunk := receiver.recv(1 << 20):
            received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    event_loop = LOOP_FACTORIES[loop]()
    try:

        async def go() -> tuple[bool, list[Segment], bool]:
            transfer = FileTransfer(sender, fd, segments)
            first = transfer.pump()
            start_reading.set()
            if not first:
                await complete_transfer(asyncio.get_running_loop(), transfer, timeout=20)
            again = transfer.pump()  # a finished transfer sends nothing more
            return first, transfer.remaining(), again

        first_done, rest, again = event_loop.run_until_complete(asyncio.wait_for(go(), timeout=30))
    finally:
        event_loop.close()
        start_reading.set()
        sender.close()
    reader.join(20)
    receiver.close()
    assert not reader.is_alive()
    assert rest == []
    assert again is True
    return bytes(received), first_done


def check_range_calls(calls: list[Call], segments: list[Segment]) -> None:
    """Every file byte went by sendfile: per range, contiguous calls from its start to its
    end, in segment order, none asking past the range or for more than a chunk."""
    position_calls = iter(calls)
    for segment in segments:
        if isinstance(segment, bytes):
            continue
        position = segment.start
        while position <= segment.end:
            call = next(position_calls)
            assert call.offset == position
            assert call.count == min(segment.end + 1 - position, SENDFILE_MAX_CHUNK)
            if call.error is None:
                assert call.result is not None and call.result > 0
                position += call.result
            else:
                assert isinstance(call.error, BlockingIOError), call.error
        assert position == segment.end + 1
    assert next(position_calls, None) is None, "sendfile called after the last range"


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("name", LAYOUTS)
def test_segments_arrive_byte_exact_over_socketpair(
    content_file: tuple[int, bytes], name: str, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, content = content_file
    segments = layout(name)
    spy = SendfileSpy(inspect=False)
    monkeypatch.setattr(os, "sendfile", spy)
    sender, receiver = stream_pair(sndbuf=8192)
    received, first_done = transfer_all(sender, receiver, fd, segments, loop)
    assert first_done is False, "an 8 KiB send buffer cannot take the body at once"
    expected = expected_stream(segments, content)
    assert len(received) == len(expected)
    assert received == expected
    check_range_calls(spy.calls, segments)
    assert all(c.in_fd == fd for c in spy.calls)


def test_multipart_segments_stream_is_the_multipart_body(
    content_file: tuple[int, bytes],
) -> None:
    """The hand-built multipart layout and multipart_segments agree on the wire bytes."""
    fd, content = content_file
    body, length = multipart_segments([R1, R2], CONTENT_SIZE, "application/octet-stream", BOUNDARY)
    by_hand: list[Segment] = [part_head(R1, first=True), R1, part_head(R2), R2, CLOSING]
    assert body == by_hand
    sender, receiver = stream_pair(sndbuf=None)
    received, _ = transfer_all(sender, receiver, fd, [HEAD_206, *body], "asyncio")
    assert received == HEAD_206 + expected_stream(by_hand, content)
    assert len(received) == len(HEAD_206) + length


@pytest.mark.skipif(not MSG_MORE, reason="MSG_MORE is Linux-only")
@pytest.mark.parametrize("name", [*LAYOUTS, "head_only"])
def test_literals_corked_except_the_last_segment(
    content_file: tuple[int, bytes], name: str
) -> None:
    """Every send of a literal segment carries MSG_MORE when any segment follows it, and
    the sends of a literal that ends the body carry no flag (nothing left to the timer)."""
    fd, content = content_file
    segments = layout(name)
    sender, receiver = stream_pair(sndbuf=8192, recording=True)
    assert isinstance(sender, FlagRecordingSocket)
    received, _ = transfer_all(sender, receiver, fd, segments, "asyncio")
    assert received == expected_stream(segments, content)
    sends = iter(sender.sent)
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if not isinstance(segment, bytes):
            continue
        want = MSG_MORE if index < last else 0
        got = b""
        while len(got) < len(segment):
            data, flags = next(sends)
            assert flags == want, f"segment {index} of {last + 1}"
            got += data
        assert got == segment, "one send never spans two segments"
    assert next(sends, None) is None
    # literals bigger than the buffer went out in several sends, all flagged alike
    if name == "big_literals":
        assert len(sender.sent) > 3
    # every attempt (including those that hit EAGAIN) used the same flags
    assert set(sender.send_flags) == {flags for _, flags in sender.sent}
    literal_last = isinstance(segments[-1], bytes)
    assert (0 in sender.send_flags) is literal_last


HAND_OVER_FAILURES = {
    "EINVAL": [OSError(errno.EINVAL, "inval")],
    "ENOSYS": [OSError(errno.ENOSYS, "nosys")],
    "EAGAIN-then-EINVAL": [BlockingIOError(errno.EAGAIN, "again"), OSError(errno.EINVAL, "i")],
    "missing": [],
}


def fallback_copy(
    fd: int, segments: list[Segment], loop: str = "asyncio"
) -> tuple[bytes, list[str]]:
    """Run ``copy_segments`` into a buffer; the bytes and the write/drain call sequence."""
    written: list[bytes] = []
    events: list[str] = []

    def write(data: bytes) -> None:
        assert isinstance(data, bytes | bytearray | memoryview)
        written.append(bytes(data))
        events.append("write")

    async def drain() -> None:
        events.append("drain")

    event_loop = LOOP_FACTORIES[loop]()
    try:
        event_loop.run_until_complete(
            asyncio.wait_for(copy_segments(fd, segments, write, drain), timeout=30)
        )
    finally:
        event_loop.close()
    return b"".join(written), events


def copy_until_error(fd: int, segments: list[Segment]) -> tuple[bytes, BaseException | None]:
    """``copy_segments`` into a buffer, keeping what was written before it raised."""
    written: list[bytes] = []

    async def drain() -> None:
        pass

    event_loop = asyncio.new_event_loop()
    error: BaseException | None = None
    try:
        event_loop.run_until_complete(
            asyncio.wait_for(
                copy_segments(fd, segments, lambda d: written.append(bytes(d)), drain), 30
            )
        )
    except Exception as exc:
        error = exc
    finally:
        event_loop.close()
    return b"".join(written), error


@pytest.mark.parametrize("failure", list(HAND_OVER_FAILURES))
@pytest.mark.parametrize("name", ["multipart", "multipart_segments", "range_last"])
def test_unsupported_before_any_file_byte_hands_over_the_rest(
    content_file: tuple[int, bytes], name: str, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SendfileUnsupported on the first range: the literals before it went out, the range and
    everything after are left, and the fallback completes the stream byte-identically."""
    fd, content = content_file
    segments = layout(name)
    first_range = next(i for i, s in enumerate(segments) if isinstance(s, ByteRange))
    assert first_range > 0
    if failure == "missing":
        monkeypatch.delattr(os, "sendfile")
    else:
        monkeypatch.setattr(os, "sendfile", FakeSendfile(*HAND_OVER_FAILURES[failure]))
    sender, receiver = stream_pair(sndbuf=None)
    with sender, receiver:
        transfer = FileTransfer(sender, fd, segments)
        if failure.startswith("EAGAIN"):
            assert transfer.pump() is False
            assert transfer.remaining() == segments[first_range:]
        with pytest.raises(SendfileUnsupported):
            transfer.pump()
        assert transfer.body_started is False
        rest = transfer.remaining()
        assert rest == segments[first_range:]
        assert isinstance(rest[0], ByteRange)  # no literal bytes before it are left
        sender.close()
        on_the_wire = recv_exactly(receiver, 10 * CONTENT_SIZE)
    assert on_the_wire == expected_stream(segments[:first_range], content)
    continued, _ = fallback_copy(fd, rest)
    assert on_the_wire + continued == expected_stream(segments, content)


def test_unsupported_on_a_leading_range_leaves_everything(
    content_file: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, content = content_file
    segments: list[Segment] = [R2, part_head(R1), R1, CLOSING]
    monkeypatch.setattr(os, "sendfile", FakeSendfile(OSError(errno.EINVAL, "inval")))
    sender, receiver = stream_pair(sndbuf=None)
    with sender, receiver:
        transfer = FileTransfer(sender, fd, segments)
        with pytest.raises(SendfileUnsupported):
            transfer.pump()
        assert transfer.remaining() == segments
        sender.close()
        assert receiver.recv(100) == b""
    continued, _ = fallback_copy(fd, transfer.remaining())
    assert continued == expected_stream(segments, content)


@pytest.mark.parametrize("code", sorted(UNSUPPORTED_ERRNOS), ids=errno.errorcode.get)
@pytest.mark.parametrize(
    "first_count", [R1.length, 100], ids=["after-a-whole-range", "inside-a-range"]
)
def test_refusal_after_file_bytes_propagates_oserror(
    content_file: tuple[int, bytes], code: int, first_count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once file bytes went out, an 'unsupported' errno is a plain OSError: no hand-over."""
    fd, content = content_file
    segments = layout("multipart")  # [head, R1, part header, R2, closing]
    fake = ScriptedSendfile({1: first_count, 2: OSError(code, os.strerror(code))})
    monkeypatch.setattr(os, "sendfile", fake)
    sender, receiver = stream_pair(sndbuf=None)
    with sender, receiver:
        transfer = FileTransfer(sender, fd, segments)
        with pytest.raises(OSError) as info:
            transfer.pump()
        sender.close()
        on_the_wire = recv_exactly(receiver, 10 * CONTENT_SIZE)
    assert type(info.value) is OSError
    assert not isinstance(info.value, SendfileUnsupported)
    assert info.value.errno == code
    assert transfer.body_started is True
    if first_count == R1.length:
        assert fake.calls == [(R1.start, R1.length), (R2.start, R2.length)]
        assert transfer.remaining() == [R2, CLOSING]
        assert on_the_wire == expected_stream(segments[:3], content)
    else:
        assert fake.calls == [(R1.start, R1.length), (R1.start + 100, R1.length - 100)]
        assert transfer.remaining() == [ByteRange(R1.start + 100, R1.end), *segments[2:]]
        assert on_the_wire == expected_stream(
            [segments[0], ByteRange(R1.start, R1.start + 99)], content
        )


@pytest.mark.parametrize("stop_in", ["head", "range", "part-header"])
def test_remaining_at_a_blocked_point_continues_byte_identically(
    content_file: tuple[int, bytes], stop_in: str
) -> None:
    """Wherever a transfer stops on EAGAIN, what went out plus ``remaining()`` written by
    the fallback is exactly the whole stream: nothing repeated, nothing skipped."""
    fd, content = content_file
    big = os.urandom(2_000_000)
    layouts: dict[str, list[Segment]] = {
        "head": [big, R1, part_head(R2), R2, CLOSING],
        "range": [HEAD_206, ByteRange(0, CONTENT_SIZE - 1), CLOSING],
        "part-header": [HEAD_206, R1, big, R2, CLOSING],
    }
    segments = layouts[stop_in]
    stopped_at = {"head": 0, "range": 1, "part-header": 2}[stop_in]
    sender, receiver = stream_pair(sndbuf=8192)
    with sender, receiver:
        transfer = FileTransfer(sender, fd, segments)
        assert transfer.pump() is False
        rest = transfer.remaining()
        sender.close()
        on_the_wire = recv_exactly(receiver, 10 * CONTENT_SIZE + len(big))
    current = segments[stopped_at]
    assert rest[1:] == segments[stopped_at + 1 :]
    sent_of_current = len(on_the_wire) - len(expected_stream(segments[:stopped_at], content))
    if isinstance(current, bytes):
        assert 0 < sent_of_current < len(current)
        assert rest[0] == current[sent_of_current:]
    else:
        assert 0 < sent_of_current < current.length
        assert rest[0] == ByteRange(current.start + sent_of_current, current.end)
    continued, _ = fallback_copy(fd, rest)
    assert on_the_wire + continued == expected_stream(segments, content)


def test_file_shorter_than_a_later_range_is_file_shrank(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    sender, receiver = pair
    content = os.urandom(1000)
    path = tmp_path / "short.bin"
    path.write_bytes(content)
    segments: list[Segment] = [b"HEAD", ByteRange(0, 99), b"PART", ByteRange(900, 1099), b"END"]
    fd = os.open(path, os.O_RDONLY)
    try:
        transfer = FileTransfer(sender, fd, segments)
        with pytest.raises(FileShrank):
            transfer.pump()
    finally:
        os.close(fd)
    sender.close()
    assert recv_exactly(receiver, 10_000) == b"HEAD" + content[:100] + b"PART" + content[900:]
    assert transfer.remaining() == [ByteRange(1000, 1099), b"END"]


# --- f. the fallback writes the same stream -------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("name", [*LAYOUTS, "head_only"])
def test_fallback_copy_segments_equals_the_zero_copy_stream(
    content_file: tuple[int, bytes], name: str, loop: str
) -> None:
    fd, content = content_file
    segments = layout(name)
    sender, receiver = stream_pair(sndbuf=None)
    via_sendfile, _ = transfer_all(sender, receiver, fd, segments, loop)
    via_fallback, events = fallback_copy(fd, segments, loop)
    assert via_fallback == via_sendfile
    assert via_fallback == expected_stream(segments, content)
    # flow control: never a second write before the previous one was drained
    assert "write" in events
    assert all(not (a == "write" and b == "write") for a, b in itertools.pairwise(events))
    assert events[-1] == "drain"
    os.fstat(fd)  # the shared descriptor is left open for its owner
    # and it can be copied again from the same descriptor with the same result
    assert fallback_copy(fd, segments, loop)[0] == via_fallback


def test_fallback_after_a_partial_read_position_is_unaffected(
    content_file: tuple[int, bytes],
) -> None:
    """Ranges are read at their own offsets, wherever the descriptor's position was left."""
    fd, content = content_file
    os.lseek(fd, 123_456, os.SEEK_SET)
    segments: list[Segment] = [b"A", R3, b"B", R1, ByteRange(0, 9)]
    copied, _ = fallback_copy(fd, segments)
    assert copied == expected_stream(segments, content)


@pytest.mark.parametrize(
    "segments, whole_before",
    [
        ([b"HEAD", ByteRange(500, 1499)], 1),
        ([b"HEAD", ByteRange(0, 99), b"PART", ByteRange(2000, 2009), b"END"], 3),
        ([ByteRange(999, 1000)], 0),
    ],
    ids=["range-past-eof", "range-beyond-eof-after-a-part", "last-byte-missing"],
)
def test_fallback_file_shorter_than_a_range_is_file_shrank(
    tmp_path: Path, segments: list[Segment], whole_before: int
) -> None:
    content = os.urandom(1000)
    path = tmp_path / "short.bin"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        written, error = copy_until_error(fd, segments)
    finally:
        os.close(fd)
    assert isinstance(error, FileShrank), error
    # what was written is the start of the promised stream, never other bytes, and at
    # least every segment before the short range
    would_be = expected_stream(segments, content)
    assert would_be.startswith(written)
    assert written.startswith(expected_stream(segments[:whole_before], content))
    assert len(written) < sum(len(s) if isinstance(s, bytes) else s.length for s in segments)


class CorkRecordingSocket(socket.socket):
    """A real socket that records every TCP_CORK it is given."""

    corks: list[int]

    def setsockopt(self, level: int, option: int, value: Any, *rest: Any) -> None:  # type: ignore[override]
        if level == socket.IPPROTO_TCP and option == getattr(socket, "TCP_CORK", None):
            self.corks.append(value)
        super().setsockopt(level, option, value, *rest)


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux-only")
def test_bulk_transfer_is_corked_and_released(tmp_path: Path) -> None:
    """A body that does not fit the socket at once is sent under TCP_CORK, released at the
    end (which flushes); a small one never touches the option."""
    content = os.urandom(8 * 1024 * 1024)
    path = tmp_path / "bulk.bin"
    path.write_bytes(content)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    listener.close()
    sender = CorkRecordingSocket(fileno=accepted.detach())
    sender.corks = []
    sender.setblocking(False)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    received = bytearray()

    def read() -> None:
        client.settimeout(10)
        while len(received) < 6 + len(content):
            chunk = client.recv(1 << 20)
            if not chunk:
                break
            received.extend(chunk)

    fd = os.open(path, os.O_RDONLY)
    try:
        small = FileTransfer(sender, fd, [b"HEAD\r\n", ByteRange(0, 9)])
        assert small.pump()
        assert sender.corks == []
        client.settimeout(10)
        assert client.recv(100) == b"HEAD\r\n" + content[:10]

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        transfer = FileTransfer(sender, fd, [b"HEAD\r\n", ByteRange(0, len(content) - 1)])

        async def run() -> None:
            if not transfer.pump():
                await complete_transfer(asyncio.get_running_loop(), transfer, 10)

        asyncio.run(run())
        reader.join(10)
        assert bytes(received) == b"HEAD\r\n" + content
        assert sender.corks == [1, 0]
        cork = socket.TCP_CORK
        assert sender.getsockopt(socket.IPPROTO_TCP, cork) == 0
    finally:
        os.close(fd)
        sender.close()
        client.close()


def test_a_turn_yields_after_turn_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """pump() stops after TURN_BYTES of file data even when the socket would take more,
    so one fast reader cannot hold the event loop for a whole large file."""
    monkeypatch.setattr(zerocopy, "TURN_BYTES", 1000)
    calls: list[tuple[int, int]] = []

    def fake_sendfile(out: int, fd: int, offset: int, count: int) -> int:
        calls.append((offset, count))
        return count

    monkeypatch.setattr(os, "sendfile", fake_sendfile)
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        transfer = FileTransfer(a, 99, [b"H", ByteRange(0, 2499)])
        assert transfer.pump() is False
        assert transfer.yielded is True
        assert calls == [(0, 1000)]
        assert transfer.remaining() == [ByteRange(1000, 2499)]
        assert transfer.pump() is False
        assert transfer.pump() is True
        assert transfer.yielded is False
        assert calls == [(0, 1000), (1000, 1000), (2000, 500)]
        assert b.recv(10) == b"H"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_transfer_that_never_blocks_still_shares_the_loop(
    tmp_path: Path, loop_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader fast enough that sendfile never says EAGAIN must not hold the loop for a
    whole file: a second connection's response goes out before the first one ends.

    sendfile is faked to always "send" everything asked, slowly (1 ms per MiB), which is
    the never-EAGAIN case made deterministic; ordering, not timing, is asserted.
    """
    monkeypatch.setattr(zerocopy, "TURN_BYTES", 2 * 1024 * 1024)
    size = 512 * 1024 * 1024
    with open(tmp_path / "big.bin", "wb") as f:
        f.truncate(size)
    (tmp_path / "small.txt").write_bytes(b"small\n")
    events: list[tuple[int, int]] = []  # (out fd, count) per call, in order
    real = os.sendfile

    def slow_sendfile(out: int, in_fd: int, offset: int, count: int) -> int:
        if count >= 1024 * 1024:
            time.sleep(count / (1024 * 1024) / 1000)
            events.append((out, count))
            return count
        events.append((out, count))
        return real(out, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", slow_sendfile)
    with start_server(tmp_path, loop_name, "sendfile") as running:
        big = socket.create_connection(("127.0.0.1", running.port), timeout=30)
        small = socket.create_connection(("127.0.0.1", running.port), timeout=30)
        try:
            big.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            while not events:
                time.sleep(0.001)
            small.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            assert small.recv(4096).endswith(b"\r\n\r\nsmall\n")
            assert big.recv(16).startswith(b"HTTP/1.1 200")
        finally:
            small.close()
            big.close()
    big_fd = events[0][0]
    small_calls = [i for i, (out, _) in enumerate(events) if out != big_fd]
    last_big_call = max(i for i, (out, _) in enumerate(events) if out == big_fd)
    assert small_calls and small_calls[0] < last_big_call
