"""The zero-copy body path: which sendfile(2) calls are made, when the fallback takes over,
files beyond 4 GiB, and ``FileTransfer``'s contract with its caller.

End-to-end tests run a real server in a thread of this process, so patching ``os.sendfile``
here is seen by the server: zerohttp looks it up through ``sendfile_function()`` per use.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
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

from zerohttp import zerocopy
from zerohttp.zerocopy import (
    MSG_MORE,
    SENDFILE_MAX_CHUNK,
    UNSUPPORTED_ERRNOS,
    FileShrank,
    FileTransfer,
    SendfileUnsupported,
    complete_transfer,
)

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
            data = b""
            while True:
                try:
                    chunk = sock.recv(1 << 20)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {SIZES[BIG_FILE]}".encode() in head
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

        async def transfer() -> tuple[bool, int]:
            t = FileTransfer(sender, head, fd, offset, count)
            first = t.pump()
            start_reading.set()
            if not first:
                await complete_transfer(asyncio.get_running_loop(), t, timeout=20)
            return first, t.remaining

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
    assert remaining == 0
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
    transfer = FileTransfer(sender, b"H\r\n\r\n", 77, start, total)
    assert transfer.pump() is True
    assert receiver.recv(100) == b"H\r\n\r\n"
    assert transfer.remaining == 0
    assert transfer.offset == start + total
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
    transfer = FileTransfer(sender, b"", 5, start, 1024)
    assert transfer.pump() is True
    assert [c[2:] for c in fake.calls] == [(start, 1024), (start + 1000, 24)]
    assert transfer.offset == start + 1024


# --- d. FileTransfer's contract -------------------------------------------------------------


def test_zero_before_the_end_is_file_shrank(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    fake = FakeSendfile(400, 0)
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = FileTransfer(sender, b"HEAD\r\n\r\n", 9, 100, 1000)
    with pytest.raises(FileShrank):
        transfer.pump()
    assert [c[2:] for c in fake.calls] == [(100, 1000), (500, 600)]
    assert transfer.remaining == 600
    assert transfer.body_started is True


def test_zero_on_the_first_call_is_file_shrank(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    monkeypatch.setattr(os, "sendfile", FakeSendfile(0))
    transfer = FileTransfer(sender, b"HEAD\r\n\r\n", 9, 0, 10)
    with pytest.raises(FileShrank):
        transfer.pump()
    assert transfer.body_started is False


def test_real_file_shorter_than_count_is_file_shrank(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    sender, receiver = pair
    content = os.urandom(1000)
    path = tmp_path / "short.bin"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        transfer = FileTransfer(sender, b"HEAD\r\n\r\n", fd, 0, 5000)
        with pytest.raises(FileShrank):
            transfer.pump()
    finally:
        os.close(fd)
    sender.close()
    assert recv_exactly(receiver, 10_000) == b"HEAD\r\n\r\n" + content
    assert transfer.remaining == 4000


@pytest.mark.parametrize("code", sorted(UNSUPPORTED_ERRNOS), ids=errno.errorcode.get)
def test_unsupported_before_any_body_byte(
    pair: tuple[socket.socket, socket.socket], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, receiver = pair
    monkeypatch.setattr(os, "sendfile", FakeSendfile(OSError(code, os.strerror(code))))
    transfer = FileTransfer(sender, b"HEAD\r\n\r\n", 9, 0, 10)
    with pytest.raises(SendfileUnsupported) as info:
        transfer.pump()
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == code
    assert transfer.body_started is False
    assert transfer.head_pending == b""  # the head went out; the fallback must not resend it
    assert receiver.recv(100) == b"HEAD\r\n\r\n"


def test_sendfile_missing_is_unsupported(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    monkeypatch.delattr(os, "sendfile")
    transfer = FileTransfer(sender, b"HEAD\r\n\r\n", 9, 0, 10)
    with pytest.raises(SendfileUnsupported):
        transfer.pump()
    assert transfer.head_pending == b""


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL], ids=["ENOSYS", "EINVAL"])
def test_unsupported_after_body_bytes_propagates_oserror(
    pair: tuple[socket.socket, socket.socket], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    fake = FakeSendfile(300, OSError(code, os.strerror(code)))
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = FileTransfer(sender, b"HEAD\r\n\r\n", 9, 0, 1000)
    with pytest.raises(OSError) as info:
        transfer.pump()
    assert type(info.value) is OSError
    assert info.value.errno == code
    assert not isinstance(info.value, SendfileUnsupported)
    assert transfer.body_started is True
    assert transfer.remaining == 700


def test_unsupported_after_blocking_but_before_body_is_still_unsupported(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = pair
    fake = FakeSendfile(BlockingIOError(errno.EAGAIN, "again"), OSError(errno.EINVAL, "inval"))
    monkeypatch.setattr(os, "sendfile", fake)
    transfer = FileTransfer(sender, b"HEAD\r\n\r\n", 9, 0, 1000)
    assert transfer.pump() is False
    with pytest.raises(SendfileUnsupported):
        transfer.pump()


def test_broken_connection_is_plain_oserror(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    sender, receiver = pair
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(4096))
    receiver.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        transfer = FileTransfer(sender, b"", fd, 0, 4096)
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
    transfer = FileTransfer(sender, b"HEAD\r\n\r\n", 9, start, 10_000)
    assert transfer.pump() is False
    assert (transfer.offset, transfer.remaining) == (start + 1000, 9000)
    assert transfer.pump() is False
    assert (transfer.offset, transfer.remaining) == (start + 3500, 6500)
    assert transfer.pump() is False
    assert transfer.pump() is True
    assert transfer.remaining == 0
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
    try:
        transfer = FileTransfer(sender, head, fd, 0, len(content))
        while not transfer.pump():
            pumps += 1
            assert pumps < 10_000
            received += receiver.recv(1 << 20)
        sender.close()
        while chunk := receiver.recv(1 << 20):
            received += chunk
    finally:
        os.close(fd)
        sender.close()
        receiver.close()
    assert pumps > 1
    assert bytes(received) == head + content


class FlagRecordingSocket(socket.socket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.send_flags: list[int] = []

    def send(self, data: Any, flags: int = 0) -> int:
        self.send_flags.append(flags)
        return super().send(data, flags)


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
        transfer = FileTransfer(sender, b"HEAD\r\n\r\n", fd, 0, count)
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
        transfer = FileTransfer(sender, b"HEAD\r\n\r\n", fd, 0, 4 * 1024 * 1024)
        assert transfer.pump() is False
        sent_before = transfer.offset

        async def go() -> None:
            await complete_transfer(asyncio.get_running_loop(), transfer, timeout=0.3)

        started = time.monotonic()
        with pytest.raises(TimeoutError):
            event_loop.run_until_complete(asyncio.wait_for(go(), timeout=10))
        assert time.monotonic() - started < 5
    finally:
        event_loop.close()
        os.close(fd)
    assert transfer.offset == sent_before
    assert 0 < transfer.remaining < 4 * 1024 * 1024
