"""What many test files need, in one place: a free port, descriptor counts, waiting for a
condition with a deadline (never a blind sleep), and a raw HTTP/1.1 client that sends
exact bytes and parses responses strictly.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

TIMEOUT = 10.0


def free_port() -> int:
    """A port that was free a moment ago, for servers that cannot be told ``--port 0``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fd_names(pid: int | None = None) -> set[str]:
    """The descriptor numbers open in process ``pid`` (this one by default), from /proc."""
    return set(os.listdir(f"/proc/{'self' if pid is None else pid}/fd"))


def open_fds(pid: int | None = None) -> int:
    """How many descriptors process ``pid`` (this one by default) has open."""
    return len(fd_names(pid))


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# --- a raw HTTP/1.1 client ----------------------------------------------------------------


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = int(self.path.strip("/") or 200)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def status_server(context: ssl.SSLContext | None = None) -> Iterator[str]:
    """A stand-in HTTP server in this process (nothing of zerohttp's): ``GET /NNN`` answers
    status NNN, ``GET /`` 200. Yields its base URL (``https`` with a server ``context``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if context is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Endpoint(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def request_bytes(
    method: str = "GET",
    target: str = "/",
    version: str = "HTTP/1.1",
    headers: tuple[str, ...] = (),
    host: bool = True,
) -> bytes:
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append("Host: 127.0.0.1")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # (lower-case name, value), in wire order
    body: bytes
    raw: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return any(n == name.lower() for n, _ in self.headers)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.headers]


_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ([^\r\n]*)")
_FIELD_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+): ([^\r\n]*)")


class RawClient:
    """A plain TCP client: exact bytes out, responses parsed strictly by Content-Length.
    Connects to ``server``, or reads from a connected socket handed over."""

    def __init__(self, server: Endpoint | socket.socket, timeout: float = TIMEOUT) -> None:
        if isinstance(server, socket.socket):
            self.sock = server
        else:
            self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_once(self, data: bytes) -> None:
        """Hand ``data`` to the kernel in a single send(2)."""
        assert self.sock.send(data) == len(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
            self.reset = True
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_exact(self, count: int) -> bytes:
        while len(self.buf) < count:
            assert self._fill(), f"connection closed after {len(self.buf)} of {count} bytes"
        data = bytes(self.buf[:count])
        del self.buf[:count]
        return data

    def read_head(self) -> tuple[int, str, list[tuple[str, str]], bytes]:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            assert len(self.buf) < 1 << 16, f"response head too long: {bytes(self.buf[:200])!r}"
            assert self._fill(), f"connection closed inside a response head: {bytes(self.buf)!r}"
        raw = self.read_exact(end + 4)
        lines = raw[:-4].split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        assert match, f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            fm = _FIELD_LINE.fullmatch(line)
            assert fm, f"bad header line {line!r}"
            headers.append((fm.group(1).decode().lower(), fm.group(2).decode("latin-1")))
        return int(match.group(1)), match.group(2).decode(), headers, raw

    def read_response(self, *, head: bool = False) -> RawResponse:
        """One response; ``head``: it answers a HEAD (Content-Length but no body)."""
        status, reason, headers, raw = self.read_head()
        lengths = [v for n, v in headers if n == "content-length"]
        assert not any(n == "transfer-encoding" for n, _ in headers)
        if status < 200 or status == 204:  # no body, and no Content-Length (RFC 9110 §8.6)
            assert not lengths
            return RawResponse(status, reason, headers, b"", raw)
        if status == 304:  # no body; a Content-Length, if any, is the 200's (RFC 9110 §8.6)
            assert len(lengths) <= 1, f"Content-Length fields: {lengths}"
            return RawResponse(status, reason, headers, b"", raw)
        assert len(lengths) == 1, f"Content-Length fields: {lengths}"
        body = b"" if head else self.read_exact(int(lengths[0]))
        return RawResponse(status, reason, headers, body, raw + body)

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def assert_closed(self) -> None:
        """Nothing more arrives and the server closes (EOF or reset, within the timeout)."""
        rest = self.read_until_close()
        assert rest == b"", f"unexpected bytes after the last response: {rest[:200]!r}"

    def assert_open(self, directory: str = "/sub") -> None:
        """The connection is open and idle: nothing came unasked, and a probe sent now is
        answered first. A server answers in order, so a stray byte or a close would come
        before the probe's answer and fail the match: no fixed wait needed. The probe is
        ``directory`` (in the server's root; make_site has /sub) without its slash, with a
        fresh query: its 308's Location echoes the query, so no other response matches."""
        assert not self.buf, f"unexpected data: {bytes(self.buf[:200])!r}"
        query = "open=" + secrets.token_hex(8)
        self.send(request_bytes(target=f"{directory}?{query}"))
        probe = self.read_response()
        assert (probe.status, probe.header("location")) == (308, f"{directory}/?{query}"), probe
        assert probe.header("connection") is None, probe

    def assert_quiet(self, seconds: float = 0.2) -> None:
        """Nothing arrives (no byte, no close) for ``seconds``. Only for the states where a
        probe request cannot tell (the server awaits a body): this is a fixed wait."""
        readable, _, _ = select.select([self.sock], [], [], seconds)
        assert not readable, f"unexpected data or close: {self.sock.recv(200)!r}"
