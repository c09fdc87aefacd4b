"""Transfers that go wrong: files shrinking mid-response, clients vanishing, clients that
read slowly or never, and connections that sit idle. Every test runs under both loops and
both body paths, each with its own root so files can be changed underneath the server.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import BODY_PATHS, LOOPS, RunningServer, start_server
from helpers import RawClient, open_fds, wait_for

MIB = 1024 * 1024

pytestmark = pytest.mark.parametrize(
    "loop, body_path",
    [(lp, bp) for lp in LOOPS for bp in BODY_PATHS],
    ids=[f"{lp}-{bp}" for lp in LOOPS for bp in BODY_PATHS],
)


# --- helpers -------------------------------------------------------------------------------


@functools.cache
def file_content(size: int) -> bytes:
    """Distinct 1 MiB blocks, so a misplaced block would not compare equal; made once per
    size (64 MiB of it per test was a noticeable part of this file's time)."""
    block = os.urandom(MIB)
    return b"".join(bytes([i & 0xFF]) + block[1:] for i in range((size + MIB - 1) // MIB))[:size]


def write_file(path: Path, size: int) -> bytes:
    content = file_content(size)
    path.write_bytes(content)
    return content


def connect(running: RunningServer, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection((running.host, running.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def send_get(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())


def get_ok(sock: socket.socket, path: str) -> tuple[dict[str, str], bytes]:
    """GET ``path``, check the status is 200, return the fields and any body bytes read."""
    send_get(sock, path)
    status, fields, body = read_head(sock)
    assert status == b"HTTP/1.1 200 OK"
    return fields, body


def read_head(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """Status line, header fields (lower-case names) and any body bytes read past the head."""
    client = RawClient(sock)
    _, _, headers, raw = client.read_head()
    return raw.split(b"\r\n", 1)[0], dict(headers), bytes(client.buf)


def read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, str]:
    """Everything until EOF or reset; fails (socket timeout) if the server never closes."""
    parts = []
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return b"".join(parts), "reset"
        except TimeoutError:
            pytest.fail("the server did not close the connection in time")
        if not chunk:
            return b"".join(parts), "eof"
        parts.append(chunk)


def connection_count(running: RunningServer) -> int:
    return int(running.call(lambda: len(running.server.state.connections)))


# --- a. the file shrinks while it is being sent ---------------------------------------------


def test_truncated_mid_transfer_closes_without_padding(
    tmp_path: Path, loop: str, body_path: str
) -> None:
    path = tmp_path / "big.bin"
    content = write_file(path, 64 * MIB)
    with start_server(tmp_path, loop, body_path) as running:
        sock = connect(running)
        try:
            fields, body = get_ok(sock, "/big.bin")
            assert int(fields["content-length"]) == 64 * MIB
            received = bytearray(body)
            while len(received) < MIB:  # about 1 MiB, slowly
                received += sock.recv(64 * 1024)
                time.sleep(0.005)
            before = len(received)
            os.truncate(path, 100 * 1024)
            rest, how = read_until_closed(sock, time.monotonic() + 10)
            received += rest
        finally:
            sock.close()
        assert wait_for(lambda: connection_count(running) == 0, 5)
    assert how in ("eof", "reset")
    assert MIB <= len(received) < 64 * MIB
    assert bytes(received[:before]) == content[:before]
    if body_path == "fallback":
        # read() copies: whatever arrived is the file as it was, byte for byte
        assert bytes(received) == content[: len(received)]
    else:
        # sendfile queues page-cache pages by reference, and truncation zeroes the part of
        # a large folio past the new end even while it sits in a socket buffer (observed on
        # ext4: zeros up to the 2 MiB folio boundary). Kernel semantics, not a server bug:
        # each late byte is the original or zero, and the response stays short.
        late = received[before:]
        original = content[before : len(received)]
        assert all(b == o or b == 0 for b, o in zip(late, original, strict=True))


def test_file_truncated_before_the_transfer_starts_is_not_padded(
    tmp_path: Path, loop: str, body_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head promises the fstat size; the file shrinks before the body goes out."""
    from zerohttp.static import handler as static

    path = tmp_path / "f.bin"
    content = write_file(path, 3 * MIB)
    original = static.StaticHandler._file_response

    def shrink_then_respond(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        os.truncate(path, 1000)
        return response

    monkeypatch.setattr(static.StaticHandler, "_file_response", shrink_then_respond)
    with start_server(tmp_path, loop, body_path) as running:
        sock = connect(running)
        try:
            send_get(sock, "/f.bin")
            status, fields, body = read_head(sock)
            rest, how = read_until_closed(sock, time.monotonic() + 10)
        finally:
            sock.close()
    assert status == b"HTTP/1.1 200 OK"
    assert int(fields["content-length"]) == 3 * MIB
    assert how in ("eof", "reset")
    assert body + rest == content[:1000]


def read_exactly(sock: socket.socket, data: bytes, size: int) -> bytes:
    parts = [data]
    got = len(data)
    while got < size:
        chunk = sock.recv(min(1 << 20, size - got))
        assert chunk, f"connection closed after {got} of {size} bytes"
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def test_file_growing_mid_transfer_sends_exactly_content_length(
    tmp_path: Path, loop: str, body_path: str
) -> None:
    path = tmp_path / "grow.bin"
    content = write_file(path, 16 * MIB)
    with start_server(tmp_path, loop, body_path) as running:
        sock = connect(running)
        try:
            fields, body = get_ok(sock, "/grow.bin")
            assert fields["content-length"] == str(16 * MIB)
            body = read_exactly(sock, body, MIB)
            with open(path, "ab") as f:
                f.write(b"\xee" * (4 * MIB))
            body = read_exactly(sock, body, 16 * MIB)
            assert body[: len(content)] == content
            assert len(body) == 16 * MIB
            # the connection is still in step: the next response starts right here
            fields, body = get_ok(sock, "/grow.bin")
            assert fields["content-length"] == str(20 * MIB)
            body = read_exactly(sock, body, 20 * MIB)
            assert body == content + b"\xee" * (4 * MIB)
        finally:
            sock.close()


def test_file_replaced_mid_transfer_sends_the_old_file_whole(
    tmp_path: Path, loop: str, body_path: str
) -> None:
    path = tmp_path / "page.bin"
    old = write_file(path, 16 * MIB)
    with start_server(tmp_path, loop, body_path) as running:
        sock = connect(running)
        try:
            fields, body = get_ok(sock, "/page.bin")
            assert fields["content-length"] == str(16 * MIB)
            body = read_exactly(sock, body, MIB)
            new = tmp_path / "page.bin.new"
            new.write_bytes(b"new\n")
            os.replace(new, path)
            body = read_exactly(sock, body, 16 * MIB)
            assert body == old
            fields, body = get_ok(sock, "/page.bin")
            assert fields["content-length"] == "4"
            assert read_exactly(sock, body, 4) == b"new\n"
        finally:
            sock.close()


# --- b. a hundred clients walk away mid-download --------------------------------------------


def describe_fds() -> dict[str, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return found


def test_abort_100_downloads_releases_everything(
    tmp_path: Path, loop: str, body_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    write_file(tmp_path / "ten.bin", 10 * MIB)
    # An mtime in the past, so the warm-up request already puts the file in the open-file
    # cache (files modified this very second are not cached) and the baseline includes it.
    os.utime(tmp_path / "ten.bin", (time.time() - 60, time.time() - 60))
    with start_server(tmp_path, loop, body_path) as running:
        # one complete request first, so lazily created loop resources exist in the baseline
        warm = connect(running)
        send_get(warm, "/ten.bin")
        _, fields, body = read_head(warm)
        while len(body) < 10 * MIB:
            chunk = warm.recv(1 << 20)
            assert chunk
            body += chunk
        warm.close()
        assert wait_for(lambda: connection_count(running) == 0, 5)
        baseline = open_fds()

        clients = []
        try:
            for _ in range(100):
                sock = connect(running)
                clients.append(sock)
                send_get(sock, "/ten.bin")
            for sock in clients:
                status, fields, body = read_head(sock)
                assert status == b"HTTP/1.1 200 OK"
                assert fields["content-length"] == str(10 * MIB)
                if not body:
                    assert sock.recv(4096)
            assert connection_count(running) == 100
        finally:
            for i, sock in enumerate(clients):
                if i % 3 == 0:  # reset
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif i % 3 == 1:
                    sock.shutdown(socket.SHUT_WR)
                sock.close()
        assert wait_for(lambda: open_fds() <= baseline, 10), (
            f"fds: {open_fds()} open, baseline {baseline}: {describe_fds()}"
        )
        assert open_fds() == baseline
        assert wait_for(lambda: connection_count(running) == 0, 5)
        assert connection_count(running) == 0

        # and the server still serves
        sock = connect(running)
        try:
            fields, body = get_ok(sock, "/ten.bin")
            while len(body) < 10 * MIB:
                chunk = sock.recv(1 << 20)
                assert chunk
                body += chunk
            assert body == (tmp_path / "ten.bin").read_bytes()
        finally:
            sock.close()
    # clients going away is routine: nothing worth a warning, no "exception never retrieved"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# --- c. slow and stalled readers ------------------------------------------------------------


def write_buffer_sizes(running: RunningServer) -> list[tuple[int, bool]]:
    def sample() -> list[tuple[int, bool]]:
        return [
            (conn.transport.get_write_buffer_size(), conn.busy)
            for conn in running.server.state.connections
            if conn.transport is not None
        ]

    return list(running.call(sample))


def test_slow_reader_is_not_buffered_for(tmp_path: Path, loop: str, body_path: str) -> None:
    write_file(tmp_path / "big.bin", 64 * MIB)
    with start_server(tmp_path, loop, body_path) as running:
        sock = connect(running)
        try:
            fields, body = get_ok(sock, "/big.bin")
            assert fields["content-length"] == str(64 * MIB)
            received = len(body)
            samples: list[tuple[int, bool]] = []
            started = time.monotonic()
            while time.monotonic() - started < 0.5:
                received += len(sock.recv(64 * 1024))
                samples.extend(write_buffer_sizes(running))
                time.sleep(0.05)
                samples.extend(write_buffer_sizes(running))
            samples.extend(write_buffer_sizes(running))
        finally:
            sock.close()
    assert received < 32 * MIB  # the transfer was still in progress throughout
    assert len(samples) >= 10
    assert all(busy for _, busy in samples), "one connection, busy with its response"
    assert max(size for size, _ in samples) <= 512 * 1024


def test_stalled_reader_is_aborted_after_send_timeout(
    tmp_path: Path, loop: str, body_path: str
) -> None:
    write_file(tmp_path / "big.bin", 64 * MIB)
    with start_server(tmp_path, loop, body_path, send_timeout=0.2) as running:
        sock = connect(running)
        try:
            fields, body = get_ok(sock, "/big.bin")
            assert fields["content-length"] == str(64 * MIB)
            # never read again: the server must give up on its own
            assert wait_for(lambda: connection_count(running) == 0, 10)
            rest, how = read_until_closed(sock, time.monotonic() + 10)
        finally:
            sock.close()
    assert how in ("eof", "reset")
    assert len(body) + len(rest) < 64 * MIB


# --- d. idle connections --------------------------------------------------------------------


def test_idle_keepalive_connection_is_closed(tmp_path: Path, loop: str, body_path: str) -> None:
    (tmp_path / "small.txt").write_bytes(b"hello\n")
    with start_server(tmp_path, loop, body_path, keepalive_timeout=0.25) as running:
        sock = connect(running)
        try:
            started = time.monotonic()
            fields, body = get_ok(sock, "/small.txt")
            assert fields["content-length"] == "6"
            assert "close" not in fields.get("connection", "").lower()
            while len(body) < 6:
                body += sock.recv(100)
            assert body == b"hello\n"
            rest, how = read_until_closed(sock, time.monotonic() + 3)
            elapsed = time.monotonic() - started
        finally:
            sock.close()
        assert wait_for(lambda: connection_count(running) == 0, 3)
    assert (rest, how) == (b"", "eof")
    assert elapsed >= 0.2, "closed before the keep-alive timeout"


def test_half_request_line_is_disconnected(tmp_path: Path, loop: str, body_path: str) -> None:
    (tmp_path / "index.html").write_bytes(b"<p>hi</p>\n")
    with start_server(tmp_path, loop, body_path, header_timeout=0.25) as running:
        sock = connect(running)
        try:
            sock.sendall(b"GET /ind")
            data, how = read_until_closed(sock, time.monotonic() + 3)
        finally:
            sock.close()
        assert wait_for(lambda: connection_count(running) == 0, 3)
    assert how in ("eof", "reset")
    assert data == b"" or data.startswith(b"HTTP/1.1 408 ")


def test_trickled_request_head_does_not_extend_header_timeout(
    tmp_path: Path, loop: str, body_path: str
) -> None:
    (tmp_path / "index.html").write_bytes(b"<p>hi</p>\n")
    with start_server(tmp_path, loop, body_path, header_timeout=0.25) as running:
        sock = connect(running)
        started = time.monotonic()
        closed_after = None
        try:
            for byte in b"GET /index.html HTTP/1.1\r\nX-Slow: " + b"a" * 200:
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - started
                    break
                time.sleep(0.05)
                if time.monotonic() - started > 3:
                    break
            if closed_after is None:
                data, how = read_until_closed(sock, started + 3)
                closed_after = time.monotonic() - started
                assert how in ("eof", "reset")
                assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
        finally:
            sock.close()
    assert closed_after < 3


def test_new_connection_that_sends_nothing_is_disconnected(
    tmp_path: Path, loop: str, body_path: str
) -> None:
    with start_server(tmp_path, loop, body_path, header_timeout=0.25) as running:
        sock = connect(running)
        try:
            assert wait_for(lambda: connection_count(running) == 1, 2)
            data, how = read_until_closed(sock, time.monotonic() + 3)
        finally:
            sock.close()
        assert connection_count(running) == 0
    assert how in ("eof", "reset")
    assert data == b"" or data.startswith(b"HTTP/1.1 408 ")


def test_idle_keep_alive_connection_costs_one_descriptor(
    tmp_path: Path, loop: str, body_path: str
) -> None:
    """After a zero-copy response the connection keeps no dup of its socket: 10,000 idle
    connections must fit in 10,000 descriptors (benchmarks/idle_connections.py)."""
    content = write_file(tmp_path / "f.bin", 64 * 1024)
    with start_server(tmp_path, loop, body_path, open_file_cache=0) as running:
        baseline = open_fds()
        sock = connect(running)  # +1 here, +1 for the server's accepted socket
        try:
            for _ in range(3):
                _, body = get_ok(sock, "/f.bin")
                while len(body) < len(content):
                    body += sock.recv(1 << 20)
                assert body == content
            assert wait_for(lambda: open_fds() == baseline + 2, 5), open_fds() - baseline
        finally:
            sock.close()
        assert wait_for(lambda: open_fds() == baseline, 5)
