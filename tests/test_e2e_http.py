"""End-to-end HTTP/1.1 battery: real clients against a real server over loopback sockets.

Every test takes the module-scoped ``server`` fixture, so each one runs under all four
combinations of event loop (uvloop, asyncio) and body path (sendfile, fallback), and with
the h11 reader alone (the malformed-request battery on two of these: see PARSER_VARIANTS).
Waits are on events (a probe's answer, a sweep), not fixed sleeps, except where only
silence can be checked (``RawClient.assert_quiet``). Clients are deliberately varied: raw
sockets (the only way to send exact bytes: clients normalise paths and refuse malformed
requests), h11 as a client-side parser, ``http.client``, ``httpx`` and ``curl``.

Assertions are exact: statuses, header values and body bytes, so every test can fail.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import email.utils
import http.client
import os
import re
import secrets
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import h11
import httpx
import pytest
from conftest import CURL, SIZES, RunningServer
from helpers import RawClient, RawResponse, request_bytes

TIMEOUT = 10.0
TEN_MIB = "ten-mib.bin"
TEN_MIB_SIZE = SIZES[TEN_MIB]
FILE_HEADER_NAMES = [
    "date",
    "server",
    "content-type",
    "content-length",
    "last-modified",
    "etag",
    "accept-ranges",
    "x-content-type-options",
]
ERROR_HEADER_NAMES = ["date", "server", "content-type", "content-length", "x-content-type-options"]


# --- helpers ------------------------------------------------------------------------------


def error_body(status: int) -> bytes:
    return f"{status} {HTTPStatus(status).phrase}\n".encode("ascii")


def site_bytes(server: RunningServer, relative: str) -> bytes:
    return (server.root / relative).read_bytes()


def expected_etag(path: Path) -> str:
    st = path.stat()
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def expected_last_modified(path: Path) -> str:
    return email.utils.formatdate(path.stat().st_mtime_ns // 1_000_000_000, usegmt=True)


def assert_recent_date(value: str) -> None:
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT", value)
    when = email.utils.parsedate_to_datetime(value).timestamp()
    assert abs(when - time.time()) < 10, value


def get_raw(server: RunningServer, target: str, **kw: object) -> RawResponse:
    with RawClient(server) as client:
        client.send(request_bytes(target=target, headers=("Connection: close",)))
        response = client.read_response(**kw)  # type: ignore[arg-type]
        client.assert_closed()
    return response


def assert_server_healthy(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/kib.bin"))
        response = client.read_response()
        assert response.status == 200
        assert response.body == site_bytes(server, "kib.bin")
        client.assert_open()


def assert_file_headers(response: RawResponse, path: Path, content_type: str) -> None:
    assert response.names == FILE_HEADER_NAMES
    assert response.header("content-type") == content_type
    assert response.header("content-length") == str(path.stat().st_size)
    assert response.header("accept-ranges") == "bytes"
    assert response.header("etag") == expected_etag(path)
    assert response.header("last-modified") == expected_last_modified(path)
    assert response.header("server") == "zerohttp"
    assert_recent_date(response.header("date") or "")


def h11_pipeline(
    sock: socket.socket, requests: list[tuple[str, str]], *, last_close: bool = False
) -> tuple[list[tuple[h11.Response, bytes]], bytes]:
    """Write every request in ONE send(2); parse the answers in order with h11 as client.

    Each exchange uses its own client ``h11.Connection`` (h11 will not pipeline); the bytes
    after one response are handed to the next parser. Returns (response, body) pairs and
    whatever bytes followed the last response.
    """
    conns = []
    wire = b""
    for i, (method, target) in enumerate(requests):
        conn = h11.Connection(h11.CLIENT)
        headers = [("Host", "127.0.0.1")]
        if last_close and i == len(requests) - 1:
            headers.append(("Connection", "close"))
        wire += conn.send(h11.Request(method=method, target=target, headers=headers))
        wire += conn.send(h11.EndOfMessage())
        conns.append(conn)
    assert sock.send(wire) == len(wire)
    results: list[tuple[h11.Response, bytes]] = []
    leftover, closed = b"", False
    for conn in conns:
        if leftover:
            conn.receive_data(leftover)
        if closed:
            conn.receive_data(b"")
        response: h11.Response | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                assert not closed, "server closed before the response was complete"
                chunk = sock.recv(1 << 20)
                closed = not chunk
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected h11 event {event!r}")
        assert response is not None
        results.append((response, bytes(body)))
        leftover, closed = conn.trailing_data
    return results, leftover


def h11_header(response: h11.Response, name: bytes) -> bytes:
    values = [v for n, v in response.headers if n == name]
    assert len(values) == 1, (name, values)
    return values[0]


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run curl (only from tests marked ``curl``, which are skipped when it is missing)."""
    assert CURL is not None
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [CURL, "--silent", "--show-error", "--http1.1", "--noproxy", "*", *args],
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def parse_curl_headers(dump: bytes) -> list[tuple[int, dict[str, str]]]:
    """Every response head in a ``curl -D`` dump: (status, {lower-case name: value})."""
    heads = []
    for block in dump.decode("latin-1").split("\r\n\r\n"):
        if not block.strip():
            continue
        lines = block.strip("\r\n").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        heads.append((status, fields))
    return heads


def http_client(server: RunningServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)


def httpx_client(server: RunningServer, **kw: object) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=TIMEOUT, trust_env=False, **kw)  # type: ignore[arg-type]


@pytest.fixture
def token() -> str:
    return "TOKEN-" + secrets.token_hex(16)


@dataclass
class Outside:
    """Files outside the served root, each holding ``token``."""

    token: str
    file: Path  # a sibling of the root
    directory: Path  # a sibling directory whose name starts with the root's own name


@pytest.fixture
def outside(server: RunningServer, token: str) -> Iterator[Outside]:
    tag = secrets.token_hex(4)
    parent = server.root.parent
    secret_file = parent / f"outside-secret-{tag}.txt"
    secret_file.write_text(f"{token}\n")
    directory = parent / f"{server.root.name}-outside-{tag}"
    directory.mkdir()
    (directory / "secret.txt").write_text(f"{token}\n")
    (directory / "index.html").write_text(f"<p>{token}</p>\n")
    try:
        yield Outside(token, secret_file, directory)
    finally:
        secret_file.unlink()
        shutil.rmtree(directory)


@contextlib.contextmanager
def in_root(server: RunningServer, *paths: Path) -> Iterator[None]:
    """Remove test-time entries from the shared root afterwards."""
    try:
        yield
    finally:
        for path in paths:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)


# --- 1. byte-exact bodies and their headers ------------------------------------------------


@pytest.mark.parametrize("name", list(SIZES))
def test_get_body_and_headers_http_client(server: RunningServer, name: str) -> None:
    conn = http_client(server)
    try:
        conn.request("GET", "/" + name)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    path = server.root / name
    assert response.status == 200
    assert response.reason == "OK"
    assert response.version == 11
    assert body == path.read_bytes()
    assert len(body) == SIZES[name]
    assert response.getheader("Content-Length") == str(SIZES[name])
    assert response.getheader("Content-Type") == "application/octet-stream"
    assert response.getheader("ETag") == expected_etag(path)
    assert response.getheader("Last-Modified") == expected_last_modified(path)
    assert response.getheader("Accept-Ranges") == "bytes"
    assert response.getheader("Server") == "zerohttp"
    assert response.getheader("Connection") is None
    assert_recent_date(response.getheader("Date") or "")


@pytest.mark.parametrize("name", list(SIZES))
def test_get_exact_head_raw(server: RunningServer, name: str) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/" + name))
        response = client.read_response()
        assert response.status == 200
        assert response.raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert response.body == site_bytes(server, name)
        assert_file_headers(response, server.root / name, "application/octet-stream")
        client.assert_open()


@pytest.mark.parametrize(
    ("target", "relative", "content_type"),
    [
        ("/index.html", "index.html", "text/html; charset=utf-8"),
        ("/style.css", "style.css", "text/css; charset=utf-8"),
        ("/sub/page.txt", "sub/page.txt", "text/plain; charset=utf-8"),
        ("/sub/index.html", "sub/index.html", "text/html; charset=utf-8"),
        ("/noindex/file.txt", "noindex/file.txt", "text/plain; charset=utf-8"),
        ("/one.bin", "one.bin", "application/octet-stream"),
    ],
)
def test_content_types_httpx(
    server: RunningServer, target: str, relative: str, content_type: str
) -> None:
    with httpx_client(server) as client:
        response = client.get(target)
    path = server.root / relative
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.content == path.read_bytes()
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(path.stat().st_size)
    assert response.headers["etag"] == expected_etag(path)
    assert response.headers["last-modified"] == expected_last_modified(path)
    assert response.headers["accept-ranges"] == "bytes"


def test_ten_mib_httpx_stream(server: RunningServer) -> None:
    expected = site_bytes(server, TEN_MIB)
    with httpx_client(server) as client, client.stream("GET", "/" + TEN_MIB) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(TEN_MIB_SIZE)
        body = b"".join(response.iter_bytes())
    assert len(body) == TEN_MIB_SIZE
    assert body == expected


@pytest.mark.curl
@pytest.mark.parametrize("name", list(SIZES))
def test_get_with_curl(server: RunningServer, tmp_path: Path, name: str) -> None:
    out, dump = tmp_path / "body", tmp_path / "headers"
    result = curl("-o", str(out), "-D", str(dump), "-w", "%{http_code}", server.url("/" + name))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"200"
    path = server.root / name
    assert out.read_bytes() == path.read_bytes()
    ((status, fields),) = parse_curl_headers(dump.read_bytes())
    assert status == 200
    assert fields["content-length"] == str(SIZES[name])
    assert fields["content-type"] == "application/octet-stream"
    assert fields["etag"] == expected_etag(path)
    assert fields["last-modified"] == expected_last_modified(path)
    assert fields["accept-ranges"] == "bytes"
    assert_recent_date(fields["date"])


# --- 2. HEAD ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SIZES, "index.html", "sub/page.txt"])
def test_head_has_get_headers_and_no_body(server: RunningServer, name: str) -> None:
    conn = http_client(server)
    try:
        conn.request("HEAD", "/" + name)
        head = conn.getresponse()
        head_body = head.read()
        sock = conn.sock
        conn.request("GET", "/" + name)
        get = conn.getresponse()
        get_body = get.read()
        assert conn.sock is sock  # the HEAD left the connection usable
    finally:
        conn.close()
    assert head.status == get.status == 200
    assert head_body == b""
    assert get_body == site_bytes(server, name)

    def without_date(msg: http.client.HTTPResponse) -> list[tuple[str, str]]:
        return [(k, v) for k, v in msg.getheaders() if k.lower() != "date"]

    assert without_date(head) == without_date(get)
    assert head.getheader("Content-Length") == str((server.root / name).stat().st_size)


@pytest.mark.parametrize("name", ["kib.bin", TEN_MIB, "empty.bin"])
def test_head_then_get_pipelined_raw(server: RunningServer, name: str) -> None:
    """After a HEAD's head block, the very next bytes on the wire are the next response."""
    with RawClient(server) as client:
        client.send_once(
            request_bytes("HEAD", "/" + name)
            + request_bytes("GET", "/one.bin", headers=("Connection: close",))
        )
        head = client.read_response(head=True)
        assert head.status == 200
        assert head.header("content-length") == str(SIZES[name])
        assert_file_headers(head, server.root / name, "application/octet-stream")
        get = client.read_response()  # parsed from the byte right after the HEAD's head
        assert get.raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert get.body == site_bytes(server, "one.bin")
        assert get.header("connection") == "close"
        client.assert_closed()


@pytest.mark.curl
def test_head_with_curl(server: RunningServer) -> None:
    result = curl("-I", "-w", "%{size_download}", server.url("/" + TEN_MIB))
    assert result.returncode == 0, result.stderr
    head, _, size = result.stdout.rpartition(b"\r\n\r\n")
    ((status, fields),) = parse_curl_headers(head + b"\r\n\r\n")
    assert status == 200
    assert fields["content-length"] == str(TEN_MIB_SIZE)
    assert fields["etag"] == expected_etag(server.root / TEN_MIB)
    assert size == b"0"


# --- 3. 404 and 405 ------------------------------------------------------------------------


def test_missing_file_404_keeps_connection(server: RunningServer) -> None:
    conn = http_client(server)
    try:
        conn.request("GET", "/no-such-file.txt")
        response = conn.getresponse()
        body = response.read()
        sock = conn.sock
        assert response.status == 404
        assert body == error_body(404)
        assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
        assert response.getheader("Content-Length") == str(len(error_body(404)))
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("ETag") is None
        conn.request("GET", "/one.bin")
        again = conn.getresponse()
        assert again.read() == site_bytes(server, "one.bin")
        assert conn.sock is sock
    finally:
        conn.close()


@pytest.mark.parametrize("target", ["/nope", "/sub/nope.txt", "/nope/", "/one.bin/", "/kib.bin/x"])
def test_not_found_targets_raw(server: RunningServer, target: str) -> None:
    response = get_raw(server, target)
    assert response.status == 404
    assert response.body == error_body(404)
    assert response.names == [*ERROR_HEADER_NAMES, "connection"]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", b"a=1"),
        ("PUT", b"new content"),
        ("DELETE", None),
        ("PATCH", b"patch"),
        ("BREW", None),
    ],
)
def test_methods_not_allowed_http_client(
    server: RunningServer, method: str, body: bytes | None
) -> None:
    conn = http_client(server)
    try:
        conn.request(method, "/one.bin", body=body)
        response = conn.getresponse()
        payload = response.read()
        sock = conn.sock
        assert response.status == 405
        assert response.getheader("Allow") == "GET, HEAD, OPTIONS"
        assert payload == error_body(405)
        # the file was not touched and the connection is still good
        conn.request("GET", "/one.bin")
        again = conn.getresponse()
        assert again.status == 200
        assert again.read() == site_bytes(server, "one.bin")
        assert conn.sock is sock
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["FOO-BAR", "get", "TRACE", "CONNECT", "PROPFIND"])
def test_methods_not_allowed_raw(server: RunningServer, method: str) -> None:
    target = "127.0.0.1:80" if method == "CONNECT" else "/one.bin"
    with RawClient(server) as client:
        client.send(request_bytes(method, target) + request_bytes("GET", "/one.bin"))
        response = client.read_response()
        assert response.status == 405
        assert response.header("allow") == "GET, HEAD, OPTIONS"
        assert response.body == error_body(405)
        follow = client.read_response()
        assert follow.status == 200
        assert follow.body == site_bytes(server, "one.bin")
        client.assert_open()


def test_options_is_204_and_keeps_the_connection(server: RunningServer) -> None:
    conn = http_client(server)
    try:
        conn.request("OPTIONS", "/one.bin")
        response = conn.getresponse()
        assert response.status == 204
        assert response.getheader("Allow") == "GET, HEAD, OPTIONS"
        assert response.getheader("Content-Length") is None
        assert response.read() == b""
        conn.request("GET", "/one.bin")
        assert conn.getresponse().read() == site_bytes(server, "one.bin")
    finally:
        conn.close()


@pytest.mark.curl
def test_delete_with_curl(server: RunningServer) -> None:
    result = curl("-X", "DELETE", "-D", "-", server.url("/one.bin"))
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    ((status, fields),) = parse_curl_headers(head + b"\r\n\r\n")
    assert status == 405
    assert fields["allow"] == "GET, HEAD, OPTIONS"
    assert body == error_body(405)
    assert (server.root / "one.bin").exists()


def test_head_of_missing_file_has_no_body(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send_once(
            request_bytes("HEAD", "/no-such-file")
            + request_bytes("GET", "/kib.bin", headers=("Connection: close",))
        )
        head = client.read_response(head=True)
        assert head.status == 404
        assert head.header("content-length") == str(len(error_body(404)))
        assert head.body == b""
        get = client.read_response()  # parsing fails if any 404 body bytes came first
        assert get.raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert get.body == site_bytes(server, "kib.bin")
        client.assert_closed()


def test_head_of_missing_file_httpx(server: RunningServer) -> None:
    with httpx_client(server) as client:
        response = client.head("/no-such-file")
    assert response.status_code == 404
    assert response.content == b""
    assert response.headers["content-length"] == str(len(error_body(404)))


# --- 4. redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/sub", "/sub/"),
        ("/noindex", "/noindex/"),
        ("/sub?x=1", "/sub/?x=1"),
        ("/sub?a=1&b=%2F%2F", "/sub/?a=1&b=%2F%2F"),
        ("/noindex?", "/noindex/"),
        ("/./sub", "/sub/"),
        ("/noindex/../sub", "/sub/"),
        ("/%73ub", "/sub/"),
    ],
)
def test_redirect_to_slash_http_client(server: RunningServer, target: str, location: str) -> None:
    conn = http_client(server)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 308
    assert response.getheader("Location") == location
    assert body == error_body(308)


def test_redirect_followed_by_httpx(server: RunningServer) -> None:
    with httpx_client(server, follow_redirects=True) as client:
        response = client.get("/sub?x=1")
    assert [r.status_code for r in response.history] == [308]
    assert response.history[0].headers["location"] == "/sub/?x=1"
    assert response.status_code == 200
    assert str(response.url) == server.url("/sub/?x=1")
    assert response.content == site_bytes(server, "sub/index.html")


@pytest.mark.curl
def test_redirect_not_followed_by_curl(server: RunningServer) -> None:
    result = curl("-D", "-", "-o", "/dev/null", server.url("/sub?x=1"))
    assert result.returncode == 0, result.stderr
    ((status, fields),) = parse_curl_headers(result.stdout)
    assert status == 308
    assert fields["location"] == "/sub/?x=1"


@pytest.fixture
def evil_dir(server: RunningServer) -> Iterator[str]:
    """A directory in the root named like a host, so that ``//<name>`` redirects."""
    name = f"evil-{secrets.token_hex(4)}.example"
    path = server.root / name
    path.mkdir()
    with in_root(server, path):
        yield name


@pytest.mark.parametrize(
    ("target", "status", "location"),
    [
        ("//{evil}", 308, "/{evil}/"),
        ("//{evil}?x=1", 308, "/{evil}/?x=1"),
        ("///{evil}", 308, "/{evil}/"),
        ("/%2F{evil}", 308, "/{evil}/"),
        ("/%2f%2f{evil}", 308, "/{evil}/"),
        ("//{evil}/../sub", 308, "/sub/"),
        ("//evil.example/../sub", 308, "/sub/"),
        ("//sub", 308, "/sub/"),
        ("//sub?//evil.example", 308, "/sub/?//evil.example"),
        ("http://evil.example//sub", 308, "/sub/"),
        ("http://evil.example//{evil}", 308, "/{evil}/"),
        ("//evil.example", 404, None),
        ("//evil.example/", 404, None),
        ("/%2F%2Fevil.example", 404, None),
        ("/\\evil.example", 400, None),
        ("/%5C%5Cevil.example", 400, None),
        ("/%09/evil.example", 400, None),
    ],
)
def test_redirect_never_protocol_relative(
    server: RunningServer, evil_dir: str, target: str, status: int, location: str | None
) -> None:
    response = get_raw(server, target.format(evil=evil_dir))
    assert response.status == status
    got = response.header("location")
    if location is None:
        assert got is None
    else:
        assert got == location.format(evil=evil_dir)
        assert got.startswith("/")
        assert not got.startswith("//")
        assert "\\" not in got


# --- 5. directory index ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "relative"),
    [
        ("/", "index.html"),
        ("/sub/", "sub/index.html"),
        ("/sub/index.html", "sub/index.html"),
        ("/?q=1", "index.html"),
        ("/sub/.", "sub/index.html"),
        ("/sub/page.txt/..", "sub/index.html"),
    ],
)
def test_index_served(server: RunningServer, target: str, relative: str) -> None:
    response = get_raw(server, target)
    assert response.status == 200
    assert response.body == site_bytes(server, relative)
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert response.header("etag") == expected_etag(server.root / relative)


def test_index_httpx(server: RunningServer) -> None:
    with httpx_client(server) as client:
        root = client.get("/")
        sub = client.get("/sub/")
    assert root.status_code == sub.status_code == 200
    assert root.content == site_bytes(server, "index.html")
    assert sub.content == site_bytes(server, "sub/index.html")


@pytest.mark.parametrize("target", ["/noindex/", "/noindex/?x=1", "/index.html/"])
def test_no_index_is_404(server: RunningServer, target: str) -> None:
    response = get_raw(server, target)
    assert response.status == 404
    assert response.body == error_body(404)


# --- 6. keep-alive ---------------------------------------------------------------------------


ROTATION = ["kib.bin", "one.bin", "empty.bin", "index.html", "sub/page.txt", "style.css"]


def test_keepalive_50_http_client(server: RunningServer) -> None:
    conn = http_client(server)
    try:
        conn.connect()
        sock = conn.sock
        local = sock.getsockname()
        for i in range(50):
            name = ROTATION[i % len(ROTATION)]
            conn.request("GET", "/" + name)
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == site_bytes(server, name)
            assert response.getheader("Connection") is None
            assert not response.will_close
            assert conn.sock is sock
        assert sock.getsockname() == local
    finally:
        conn.close()


def test_keepalive_50_raw(server: RunningServer) -> None:
    with RawClient(server) as client:
        for i in range(50):
            name = ROTATION[i % len(ROTATION)]
            method = "HEAD" if i % 7 == 3 else "GET"
            client.send(request_bytes(method, "/" + name))
            response = client.read_response(head=method == "HEAD")
            assert response.status == 200
            assert response.header("connection") is None
            expected = b"" if method == "HEAD" else site_bytes(server, name)
            assert response.body == expected
        client.assert_open()
        client.send(request_bytes(target="/one.bin", headers=("Connection: close",)))
        assert client.read_response().body == site_bytes(server, "one.bin")
        client.assert_closed()


def test_httpx_reuses_connection(server: RunningServer) -> None:
    addresses = set()
    with httpx_client(server) as client:
        for i in range(20):
            name = ROTATION[i % len(ROTATION)]
            response = client.get("/" + name)
            assert response.status_code == 200
            assert response.content == site_bytes(server, name)
            addresses.add(response.extensions["network_stream"].get_extra_info("client_addr"))
        big = client.get("/" + TEN_MIB)
        assert big.content == site_bytes(server, TEN_MIB)
        addresses.add(big.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(addresses) == 1


@pytest.mark.curl
def test_curl_reuses_connection(server: RunningServer) -> None:
    result = curl(
        "-w",
        "%{http_code} %{num_connects}\\n",
        "-o",
        "/dev/null",
        server.url("/kib.bin"),
        "-o",
        "/dev/null",
        server.url("/" + TEN_MIB),
        "-o",
        "/dev/null",
        server.url("/nope"),
        "-o",
        "/dev/null",
        server.url("/one.bin"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\n") == ["200 1", "200 0", "404 0", "200 0", ""]


# --- 7. pipelining ---------------------------------------------------------------------------


def test_pipelined_mixed_three_h11(server: RunningServer) -> None:
    with RawClient(server) as client:
        results, leftover = h11_pipeline(
            client.sock, [("GET", "/kib.bin"), ("GET", "/no-such-file"), ("HEAD", "/" + TEN_MIB)]
        )
        (kib, kib_body), (missing, missing_body), (head, head_body) = results
        assert kib.status_code == 200
        assert kib_body == site_bytes(server, "kib.bin")
        assert h11_header(kib, b"etag") == expected_etag(server.root / "kib.bin").encode()
        assert missing.status_code == 404
        assert missing_body == error_body(404)
        assert head.status_code == 200
        assert h11_header(head, b"content-length") == str(TEN_MIB_SIZE).encode()
        assert head_body == b""
        assert leftover == b""
        client.assert_open()
        # the connection is still in sync afterwards
        client.send(request_bytes(target="/one.bin"))
        assert client.read_response().body == site_bytes(server, "one.bin")


def test_pipelined_mixed_three_raw_bytes(server: RunningServer) -> None:
    """The same exchange checked byte for byte on the wire, HEAD in the middle."""
    with RawClient(server) as client:
        client.send_once(
            request_bytes(target="/style.css")
            + request_bytes("HEAD", "/kib.bin")
            + request_bytes(target="/missing.txt", headers=("Connection: close",))
        )
        first = client.read_response()
        second = client.read_response(head=True)
        third = client.read_response()
        client.assert_closed()
    assert (first.status, second.status, third.status) == (200, 200, 404)
    assert first.body == site_bytes(server, "style.css")
    assert second.header("content-length") == "1024"
    assert third.body == error_body(404)
    assert third.header("connection") == "close"


def test_pipelined_three_ten_mib(server: RunningServer) -> None:
    expected = site_bytes(server, TEN_MIB)
    with RawClient(server) as client:
        client.send_once(request_bytes(target="/" + TEN_MIB) * 3)
        for _ in range(3):
            response = client.read_response()
            assert response.status == 200
            assert response.header("content-length") == str(TEN_MIB_SIZE)
            assert response.body == expected
        client.assert_open()


def test_pipelined_ten_mib_with_h11(server: RunningServer) -> None:
    expected = site_bytes(server, TEN_MIB)
    with RawClient(server) as client:
        results, leftover = h11_pipeline(client.sock, [("GET", "/" + TEN_MIB)] * 3, last_close=True)
        assert [r.status_code for r, _ in results] == [200, 200, 200]
        assert all(body == expected for _, body in results)
        assert leftover == b""


def test_accepted_connections_have_nodelay(server: RunningServer) -> None:
    """Small responses must not wait for Nagle: the loops set TCP_NODELAY, zerohttp relies on it."""

    def nodelay() -> list[int]:
        return [
            connection.transport.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY
            )
            for connection in server.server.state.connections
            if connection.transport is not None
        ]

    with RawClient(server) as client:
        client.send(request_bytes(target="/kib.bin"))
        assert client.read_response().status == 200
        values = server.call(nodelay)
    assert values
    assert all(values)


def test_pipelined_alternating_simple_and_h11_requests(server: RunningServer) -> None:
    """One write mixing heads the simple reader takes with heads only h11 reads: each cycle
    hands its leftover bytes to the next, whichever reader that is."""
    with RawClient(server) as client:
        client.send_once(
            request_bytes(target="/kib.bin")  # simple
            + request_bytes(target="/style.css", headers=("Content-Length: 3",))  # h11
            + b"GET"  # the discarded body: looks like a request, must not be read as one
            + request_bytes(target="/one.bin")  # simple, after an h11 cycle
            + b"GET /kib.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"  # h11: no Host
            + request_bytes("OPTIONS", "/")  # h11
            + b"GET /style.css HTTP/1.1\nHost: x\n\n"  # h11: bare LF
            + request_bytes(target="/one.bin")  # simple
        )
        expected = ["kib.bin", "style.css", "one.bin", "kib.bin", None, "style.css", "one.bin"]
        for name in expected:
            response = client.read_response()
            if name is None:
                assert response.status == 204
            else:
                assert response.status == 200
                assert response.body == site_bytes(server, name)
        client.assert_open()


def test_pipelined_hundred_small(server: RunningServer) -> None:
    names = [ROTATION[i % len(ROTATION)] for i in range(100)]
    with RawClient(server) as client:
        client.send(b"".join(request_bytes(target="/" + n) for n in names))
        for name in names:
            response = client.read_response()
            assert response.status == 200
            assert response.body == site_bytes(server, name)
        client.assert_open()


# --- 8. HTTP/1.0 -----------------------------------------------------------------------------


def test_http10_closes(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(
            request_bytes(target="/kib.bin", version="HTTP/1.0", host=False)
            + request_bytes(target="/one.bin", version="HTTP/1.0", host=False)
        )
        response = client.read_response()
        assert response.status == 200
        assert response.body == site_bytes(server, "kib.bin")
        assert response.header("connection") == "close"
        client.assert_closed()  # the second request is never answered


def test_http10_keep_alive(server: RunningServer) -> None:
    with RawClient(server) as client:
        for _ in range(3):
            client.send(
                request_bytes(
                    target="/kib.bin", version="HTTP/1.0", headers=("Connection: keep-alive",)
                )
            )
            response = client.read_response()
            assert response.status == 200
            assert response.header("connection") == "keep-alive"
            assert response.body == site_bytes(server, "kib.bin")
            client.assert_open()
        client.send(request_bytes(target="/" + TEN_MIB, version="HTTP/1.0"))
        last = client.read_response()
        assert last.header("connection") == "close"
        assert last.body == site_bytes(server, TEN_MIB)
        client.assert_closed()


def test_http10_http_client(server: RunningServer) -> None:
    class HTTP10Connection(http.client.HTTPConnection):
        _http_vsn = 10
        _http_vsn_str = "HTTP/1.0"

    conn = HTTP10Connection(server.host, server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/style.css")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == site_bytes(server, "style.css")
        assert response.getheader("Connection") == "close"
        assert response.will_close
    finally:
        conn.close()


# --- 9. Connection: close ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "CLOSE , foo"])
def test_connection_close_http11(server: RunningServer, value: str) -> None:
    with RawClient(server) as client:
        client.send(
            request_bytes(target="/kib.bin", headers=(f"Connection: {value}",))
            + request_bytes(target="/one.bin")
        )
        response = client.read_response()
        assert response.status == 200
        assert response.body == site_bytes(server, "kib.bin")
        assert response.header("connection") == "close"
        client.assert_closed()


def test_connection_close_ten_mib(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/" + TEN_MIB, headers=("Connection: close",)))
        response = client.read_response()
        assert response.body == site_bytes(server, TEN_MIB)
        client.assert_closed()


def test_connection_close_http_client(server: RunningServer) -> None:
    conn = http_client(server)
    try:
        conn.request("GET", "/kib.bin", headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.read() == site_bytes(server, "kib.bin")
        assert response.getheader("Connection") == "close"
        assert response.will_close
    finally:
        conn.close()


# --- 10. request bodies on GET and Expect: 100-continue -----------------------------------------


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def test_expect_100_continue_raw(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(
            request_bytes(target="/kib.bin", headers=("Expect: 100-continue", "Content-Length: 5"))
        )
        assert client.read_exact(len(CONTINUE)) == CONTINUE
        client.assert_quiet()  # nothing else until the body is sent (a probe would be the body)
        client.send(b"hello")
        response = client.read_response()
        assert response.status == 200
        assert response.body == site_bytes(server, "kib.bin")
        assert response.header("connection") is None
        client.assert_open()
        # still usable, and a second Expect cycle works as well
        client.send(request_bytes(target="/one.bin"))
        assert client.read_response().body == site_bytes(server, "one.bin")
        client.send(
            request_bytes(
                target="/style.css", headers=("Expect: 100-continue", "Content-Length: 3")
            )
        )
        assert client.read_exact(len(CONTINUE)) == CONTINUE
        client.send(b"abc")
        assert client.read_response().body == site_bytes(server, "style.css")
        client.assert_open()


def test_expect_100_continue_body_already_sent(server: RunningServer) -> None:
    """A client that does not wait may get the 100 or not, but exactly one final answer."""
    with RawClient(server) as client:
        client.send(
            request_bytes(target="/kib.bin", headers=("Expect: 100-continue", "Content-Length: 5"))
            + b"hello"
            + request_bytes(target="/one.bin", headers=("Connection: close",))
        )
        first = client.read_response()
        if first.status == 100:
            first = client.read_response()
        assert first.status == 200
        assert first.body == site_bytes(server, "kib.bin")
        second = client.read_response()
        assert second.body == site_bytes(server, "one.bin")
        client.assert_closed()


@pytest.mark.curl
def test_expect_100_continue_curl(server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "body"
    result = curl(
        "-v",
        "-X",
        "GET",
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "5",
        "--data-binary",
        "hello",
        "-o",
        str(out),
        "-w",
        "%{http_code}",
        server.url("/kib.bin"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"200"
    assert b"< HTTP/1.1 100 Continue" in result.stderr
    assert out.read_bytes() == site_bytes(server, "kib.bin")


@pytest.mark.parametrize("size", [1, 5, 4096, 65536])
def test_small_get_body_discarded_then_pipelined_request(server: RunningServer, size: int) -> None:
    with RawClient(server) as client:
        client.send(
            request_bytes(target="/kib.bin", headers=(f"Content-Length: {size}",))
            + b"G" * size  # looks like the start of a request: must not be parsed as one
            + request_bytes(target="/style.css")
        )
        first = client.read_response()
        assert first.status == 200
        assert first.body == site_bytes(server, "kib.bin")
        assert first.header("connection") is None
        second = client.read_response()
        assert second.status == 200
        assert second.body == site_bytes(server, "style.css")
        client.assert_open()


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("Content-Length: 65537", b"x" * 65537),  # over the discard limit
        ("Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n"),
    ],
    ids=["body-over-discard-limit", "chunked-body"],
)
def test_get_with_a_body_we_will_not_read_closes(
    server: RunningServer, framing: str, body: bytes
) -> None:
    with RawClient(server) as client:
        client.send(
            request_bytes(target="/kib.bin", headers=(framing,))
            + body
            + request_bytes(target="/style.css")
        )
        response = client.read_response()
        assert response.status == 200
        assert response.body == site_bytes(server, "kib.bin")
        assert response.header("connection") == "close"
        client.assert_closed()
    assert_server_healthy(server)


def test_http10_body_discarded_keep_alive(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(
            request_bytes(
                target="/one.bin",
                version="HTTP/1.0",
                headers=("Connection: keep-alive", "Content-Length: 3"),
            )
            + b"abc"
            + request_bytes(target="/kib.bin", version="HTTP/1.0")
        )
        first = client.read_response()
        assert first.header("connection") == "keep-alive"
        assert first.body == site_bytes(server, "one.bin")
        second = client.read_response()
        assert second.header("connection") == "close"
        assert second.body == site_bytes(server, "kib.bin")
        client.assert_closed()


# --- 11. traversal ---------------------------------------------------------------------------

# (target, status). {f}: a file next to the root; {d}: a directory next to the root whose
# name starts with the root's own name; {root}: the root's name; {abs}: the outside file's
# absolute path without its leading slash. Per the README, ".." climbing out, NUL, control
# characters, backslashes and invalid or overlong UTF-8 are 400; dot-segments that are not
# exactly "." or ".." are hidden names (404); anything else simply does not exist (404).
TRAVERSAL = [
    ("/../{f}", 400),
    ("/..%2f{f}", 400),
    ("/..%2F{f}", 400),
    ("/%2e%2e/{f}", 400),
    ("/%2e%2e%2f{f}", 400),
    ("/.%2e/{f}", 400),
    ("/%2e./{f}", 400),
    ("/%2E%2E/{f}", 400),
    ("/%2e%2e", 400),
    ("/%2e%2e/", 400),
    ("/..", 400),
    ("/../", 400),
    ("/sub/../../{f}", 400),
    ("/sub/../sub/../../{f}", 400),
    ("/nonexistent/../../{f}", 400),
    ("/./../{f}", 400),
    ("/sub/./../.././{f}", 400),
    ("/sub/%2e%2e/%2e%2e/{f}", 400),
    ("/sub/..%2f..%2f{f}", 400),
    ("/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400),
    ("/../{root}/../{f}", 400),
    ("/../{d}/secret.txt", 400),
    ("/../{d}/", 400),
    ("/..\\{f}", 400),
    ("/..%5c{f}", 400),
    ("/..%5C{f}", 400),
    ("/%2e%2e%5c{f}", 400),
    ("/sub\\..\\..\\{f}", 400),
    ("/%c0%ae%c0%ae/{f}", 400),
    ("/%c0%ae%c0%ae%c0%af{f}", 400),
    ("/..%c0%af{f}", 400),
    ("/%e0%80%ae%e0%80%ae/{f}", 400),
    ("/%e0%80%ae", 400),
    ("/%f0%80%80%ae%f0%80%80%ae/{f}", 400),
    ("/%00", 400),
    ("/x%00.html", 400),
    ("/one.bin%00.html", 400),
    ("/sub/..%00/", 400),
    ("/%2e%2e%00/{f}", 400),
    ("/%0d%0a/{f}", 400),
    ("/%u002e%u002e/{f}", 400),
    ("/%%32%65%%32%65/{f}", 400),
    ("/%2", 400),
    ("%2e%2e/{f}", 400),
    ("../{f}", 400),
    ("*", 400),
    ("http://host/../{f}", 400),
    ("http://host/%2e%2e/{f}", 400),
    ("HTTPS://host/..%2f{f}", 400),
    ("http://host/sub/../../{f}", 400),
    ("//etc/passwd", 404),
    ("//{abs}", 404),
    ("/{abs}", 404),
    ("/..;/{f}", 404),
    ("/sub/..;/..;/{f}", 404),
    ("/%252e%252e/{f}", 404),
    ("/%252e%252e%252f{f}", 404),
    ("/..%252f{f}", 404),
    ("/....//{f}", 404),
    ("/.../{f}", 404),
    ("/. ./{f}".replace(" ", "%20"), 404),
    ("/%ef%bc%8e%ef%bc%8e/{f}", 404),
    ("/%e2%80%a5/{f}", 404),
    ("/{f}", 404),
    ("/{d}/secret.txt", 404),
    ("/..{f}", 404),
]


@pytest.mark.parametrize(("template", "status"), TRAVERSAL, ids=[t for t, _ in TRAVERSAL])
def test_traversal_never_leaks(
    server: RunningServer, outside: Outside, template: str, status: int
) -> None:
    target = template.format(
        f=outside.file.name,
        d=outside.directory.name,
        root=server.root.name,
        abs=str(outside.file).lstrip("/"),
    )
    with RawClient(server) as client:
        client.send(request_bytes(target=target, headers=("Connection: close",)))
        wire = client.read_until_close()
    assert outside.token.encode() not in wire
    assert wire.startswith(f"HTTP/1.1 {status} ".encode()), wire[:200]
    assert wire.endswith(b"\r\n\r\n" + error_body(status))
    assert wire.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize(
    "target",
    [
        b"/..\x00/x",
        b"/\xc0\xae\xc0\xae/x",
        b"/\x2e\x2e\x09/x",
        b"/sub/..\r/x",
    ],
    ids=["raw-nul", "raw-overlong", "raw-tab", "raw-cr"],
)
def test_traversal_raw_bytes_in_target(
    server: RunningServer, outside: Outside, target: bytes
) -> None:
    with RawClient(server) as client:
        client.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        wire = client.read_until_close()
    assert outside.token.encode() not in wire
    assert wire.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert wire.endswith(b"Connection: close\r\n\r\n" + error_body(400))


def test_traversal_kept_alive_after_path_400(server: RunningServer, outside: Outside) -> None:
    """A clean 400 for a bad path leaves the framing intact: later requests still work."""
    with RawClient(server) as client:
        client.send(
            request_bytes(target="/../" + outside.file.name)
            + request_bytes(target="/%2e%2e/" + outside.file.name)
            + request_bytes(target="/one.bin", headers=("Connection: close",))
        )
        wire = client.read_until_close()
    assert outside.token.encode() not in wire
    assert wire.count(b"HTTP/1.1 400 Bad Request\r\n") == 2
    assert wire.endswith(b"\r\n\r\n" + site_bytes(server, "one.bin"))


# --- 12. symlinks ------------------------------------------------------------------------------


def test_symlink_to_file_outside(server: RunningServer, outside: Outside) -> None:
    link = server.root / f"link-{secrets.token_hex(4)}.txt"
    link.symlink_to(outside.file)
    with in_root(server, link):
        for method in ("GET", "HEAD"):
            with RawClient(server) as client:
                client.send(request_bytes(method, "/" + link.name, headers=("Connection: close",)))
                wire = client.read_until_close()
            assert outside.token.encode() not in wire
            assert wire.startswith(b"HTTP/1.1 404 Not Found\r\n")
        with httpx_client(server) as client:
            response = client.get("/" + link.name)
        assert response.status_code == 404
        assert outside.token.encode() not in response.content


def test_symlink_to_directory_outside(server: RunningServer, outside: Outside) -> None:
    link = server.root / f"linkdir-{secrets.token_hex(4)}"
    link.symlink_to(outside.directory, target_is_directory=True)
    with in_root(server, link):
        for target in (
            f"/{link.name}/secret.txt",
            f"/{link.name}/index.html",
            f"/{link.name}/",
            f"/{link.name}",
            f"/{link.name}/./secret.txt",
            f"/sub/../{link.name}/secret.txt",
        ):
            with RawClient(server) as client:
                client.send(request_bytes(target=target, headers=("Connection: close",)))
                wire = client.read_until_close()
            assert outside.token.encode() not in wire, target
            assert wire.startswith(b"HTTP/1.1 404 Not Found\r\n"), (target, wire[:100])


def test_relative_symlink_climbing_out(server: RunningServer, outside: Outside) -> None:
    link = server.root / "sub" / f"rel-{secrets.token_hex(4)}"
    link.symlink_to(Path("..") / ".." / outside.file.name)
    with in_root(server, link):
        response = get_raw(server, f"/sub/{link.name}")
    assert response.status == 404
    assert outside.token.encode() not in response.raw


def test_symlink_to_dotfile_inside(server: RunningServer) -> None:
    link = server.root / f"pub-{secrets.token_hex(4)}"
    link.symlink_to(server.root / ".secret")
    dlink = server.root / f"pubdir-{secrets.token_hex(4)}"
    dlink.symlink_to(server.root / ".git", target_is_directory=True)
    with in_root(server, link, dlink):
        for target in (f"/{link.name}", f"/{dlink.name}/config"):
            response = get_raw(server, target)
            assert response.status == 404, target
            assert b"hidden" not in response.raw


def test_symlink_inside_root_is_served(server: RunningServer) -> None:
    """Control: a symlink whose target stays inside the root works, so the 404s above mean it."""
    link = server.root / f"alias-{secrets.token_hex(4)}.bin"
    link.symlink_to(server.root / "kib.bin")
    with in_root(server, link):
        response = get_raw(server, "/" + link.name)
    assert response.status == 200
    assert response.body == site_bytes(server, "kib.bin")


def test_symlink_loop(server: RunningServer) -> None:
    name = f"loop-{secrets.token_hex(4)}"
    link = server.root / name
    link.symlink_to(server.root / name)
    with in_root(server, link):
        assert get_raw(server, "/" + name).status == 404
        assert get_raw(server, f"/{name}/x").status == 404


# --- 13. dotfiles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/.secret",
        "/.git/config",
        "/.git/",
        "/.git",
        "/%2esecret",
        "/%2Esecret",
        "/%2egit/config",
        "/.git%2fconfig",
        "/sub/../.secret",
        "/sub/%2e%2e/.secret",
        "/./.secret",
        "//.secret",
        "/.secret?x=1",
        "http://host/.secret",
        "/.well-known/",
        "/sub/.secret",
    ],
)
def test_dotfiles_hidden(server: RunningServer, target: str) -> None:
    response = get_raw(server, target)
    assert response.status == 404
    assert response.body == error_body(404)
    assert b"hidden" not in response.raw
    assert response.header("location") is None


@pytest.mark.curl
def test_dotfile_with_curl(server: RunningServer) -> None:
    result = curl("--path-as-is", "-w", "\\n%{http_code}", server.url("/sub/../.secret"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == error_body(404) + b"\n404"


# --- 14. malformed requests ------------------------------------------------------------------


BIG_HEADERS = b"".join(b"X-Fill-%03d: %s\r\n" % (i, b"v" * 190) for i in range(105))
MALFORMED = [
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, id="tls-hello"),
    pytest.param(b"HELLO THERE\r\n\r\n", 400, id="garbage-line"),
    pytest.param(b"GET /\r\n\r\n", 400, id="http09-no-version"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="missing-host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="two-hosts"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", 400, id="no-colon"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX(: y\r\n\r\n", 400, id="bad-name"),
    pytest.param(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, id="space-before-colon"),
    pytest.param(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="space-in-target"),
    pytest.param(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="double-space"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, id="nul-in-header"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, id="bare-cr-in-header"),
    pytest.param(b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400, id="bare-cr-request-line"),
    pytest.param(
        b"GET /one.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /kib.bin HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
        id="cl-then-te",
    ),
    pytest.param(
        b"GET /one.bin HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 40\r\n\r\n0\r\n\r\nGET /kib.bin HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
        id="te-then-cl",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
        id="conflicting-cl",
    ),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab", 400, id="cl-list"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, id="negative-cl"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400, id="plus-cl"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400, id="hex-cl"
    ),
    pytest.param(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, id="http2.0"),
    pytest.param(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, id="http1.2"),
    pytest.param(b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, id="http0.9"),
    pytest.param(b"GET / HTTP/3.0\r\n\r\n", 505, id="http3.0-no-host"),
    pytest.param(b"GET / http/1.1\r\nHost: a\r\n\r\n", 400, id="lowercase-version"),
    pytest.param(b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, id="version-1.10"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, id="te-gzip"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        id="te-gzip-chunked",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        501,
        id="te-chunked-twice",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\n" + BIG_HEADERS + b"\r\n", 431, id="20k-headers-one-send"
    ),
    pytest.param(b"GET /" + b"a" * 20480 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 431, id="20k-target"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 20480 + b"\r\n\r\n",
        431,
        id="20k-single-header",
    ),
]


# The parser is the same code under every loop and body path; what differs is the request
# reader (the simple-head reader, else h11) and how the loop hands over the bytes. So the
# malformed battery runs on two variants, not five: asyncio with the simple-head reader
# (h11 behind it) and uvloop with h11 alone. The body path only moves file bytes, and an
# error response has none.
PARSER_VARIANTS = [("asyncio", "sendfile", "simple"), ("uvloop", "sendfile", "h11")]


@pytest.mark.parametrize(
    "server", PARSER_VARIANTS, indirect=True, ids=["asyncio-sendfile", "uvloop-sendfile-h11only"]
)
@pytest.mark.parametrize(("data", "status"), MALFORMED)
def test_malformed_request(server: RunningServer, data: bytes, status: int) -> None:
    """Each malformed request gets its error, closes, and leaves the server healthy (on
    PARSER_VARIANTS only: see there)."""
    assert len(BIG_HEADERS) > 20000
    with RawClient(server) as client:
        client.send_once(data)
        response = client.read_response()
        assert response.status == status
        assert response.body == error_body(status)
        assert response.header("connection") == "close"
        assert response.names == [*ERROR_HEADER_NAMES, "connection"]
        client.assert_closed()  # and nothing pipelined behind it is ever answered
    assert_server_healthy(server)


def test_header_block_dribbled_in_pieces_431(server: RunningServer) -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\n" + BIG_HEADERS + b"\r\n"
    pieces = [data[i : i + 1024] for i in range(0, len(data), 1024)]
    sent = 0
    with RawClient(server) as client:
        for piece in pieces:
            readable, _, _ = select.select([client.sock], [], [], 0.02)
            if readable:
                break  # the server has answered already: stop feeding it
            try:
                client.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        response = client.read_response()
        assert response.status == 431
        assert response.body == error_body(431)
        assert response.header("connection") == "close"
        client.assert_closed()
    assert sent > 16384 - 1024  # it answered once the limit was passed, not before
    assert_server_healthy(server)


def test_header_block_just_under_limit_accepted(server: RunningServer) -> None:
    """The limit is the documented 16384 bytes, not less: a 15 KiB head is served."""
    filler = b"".join(b"X-Fill-%03d: %s\r\n" % (i, b"v" * 100) for i in range(130))
    assert 14000 < len(filler) < 15500
    for pieces in (1, 15):
        data = b"GET /kib.bin HTTP/1.1\r\nHost: a\r\n" + filler + b"\r\n"
        step = -(-len(data) // pieces)
        with RawClient(server) as client:
            for i in range(0, len(data), step):
                client.send(data[i : i + step])
                time.sleep(0.005)
            response = client.read_response()
            assert response.status == 200
            assert response.body == site_bytes(server, "kib.bin")
            client.assert_open()


def test_malformed_after_good_request_on_same_connection(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/one.bin") + b"BROKEN\r\n\r\n" + request_bytes())
        good = client.read_response()
        assert good.body == site_bytes(server, "one.bin")
        bad = client.read_response()
        assert bad.status == 400
        assert bad.header("connection") == "close"
        client.assert_closed()


def test_cl_te_smuggled_request_never_answered(server: RunningServer) -> None:
    """Whatever the status of the first response, the smuggled request is never answered."""
    with RawClient(server) as client:
        client.send_once(
            b"GET /one.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /kib.bin HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        response = client.read_response()
        assert response.header("connection") == "close"
        client.assert_closed()
    assert_server_healthy(server)


# --- 15. half-close --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["one.bin", "kib.bin", TEN_MIB, "empty.bin"])
def test_half_close_still_gets_response(server: RunningServer, name: str) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/" + name))
        client.sock.shutdown(socket.SHUT_WR)
        response = client.read_response()
        assert response.status == 200
        assert response.body == site_bytes(server, name)
        client.assert_closed()
        assert not client.reset


def test_half_close_after_pipelined_requests(server: RunningServer) -> None:
    names = [TEN_MIB, "kib.bin", "nope", TEN_MIB]
    with RawClient(server) as client:
        client.send(b"".join(request_bytes(target="/" + n) for n in names))
        client.sock.shutdown(socket.SHUT_WR)
        for name in names:
            response = client.read_response()
            if name == "nope":
                assert response.status == 404
            else:
                assert response.status == 200
                assert response.body == site_bytes(server, name)
        client.assert_closed()
        assert not client.reset


def test_half_close_with_expect_body(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/kib.bin", headers=("Content-Length: 5",)) + b"hello")
        client.sock.shutdown(socket.SHUT_WR)
        response = client.read_response()
        assert response.body == site_bytes(server, "kib.bin")
        client.assert_closed()


def test_connect_and_close_without_request(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.sock.shutdown(socket.SHUT_WR)
        assert client.read_until_close() == b""
    assert_server_healthy(server)


# --- robustness ------------------------------------------------------------------------------


def open_connections(server: RunningServer) -> int:
    return server.call(lambda: len(server.server.state.connections))  # type: ignore[no-any-return]


def wait_for_connections(server: RunningServer, count: int) -> int:
    deadline = time.monotonic() + 5
    while (now := open_connections(server)) != count and time.monotonic() < deadline:
        time.sleep(0.02)
    return now


def test_request_dribbled_byte_by_byte(server: RunningServer) -> None:
    data = request_bytes(target="/kib.bin", headers=("User-Agent: slow",))
    with RawClient(server) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            client.send(data[i : i + 1])
            if i % 8 == 0:
                time.sleep(0.001)
        response = client.read_response()
        assert response.status == 200
        assert response.body == site_bytes(server, "kib.bin")
        client.assert_open()


def test_many_pipelined_behind_a_large_response(server: RunningServer) -> None:
    """More than max_header_bytes of complete requests queue up while 10 MiB is sent."""
    small = [ROTATION[i % len(ROTATION)] for i in range(400)]
    wire = request_bytes(target="/" + TEN_MIB) + b"".join(
        request_bytes(target="/" + n) for n in small
    )
    assert len(wire) > 16384
    with RawClient(server) as client:
        client.send(wire)
        assert client.read_response().body == site_bytes(server, TEN_MIB)
        for name in small:
            response = client.read_response()
            assert response.status == 200
            assert response.body == site_bytes(server, name)
        client.assert_open()


class SweepWitness:
    """Stands in the server's connection set until the deadline sweeper next runs: its
    deadline has always passed, so the sweep calls ``on_deadline``, which takes it out.
    A sweep looks at every connection in one pass on the loop thread, so once this one
    is seen, the whole pass has run before the server reads anything we send next."""

    deadline = float("-inf")

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.connections = server.server.state.connections
        self.seen = threading.Event()

    def on_deadline(self) -> None:
        self.connections.discard(self)
        self.seen.set()

    def wait(self, timeout: float = 10) -> None:
        self.server.call(self.connections.add, self)
        try:
            assert self.seen.wait(timeout), "the deadline sweeper did not run"
        finally:
            self.server.call(self.connections.discard, self)


def test_idle_keep_alive_connection_survives_a_pause(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/one.bin"))
        assert client.read_response().status == 200
        SweepWitness(server).wait()  # the sweeper that closes idle ones has looked at it
        client.assert_open()
        client.send(request_bytes(target="/kib.bin"))
        assert client.read_response().body == site_bytes(server, "kib.bin")


def test_client_abort_mid_transfer(server: RunningServer) -> None:
    with RawClient(server) as client:
        client.send(request_bytes(target="/" + TEN_MIB) * 2)
        client.read_head()
        client.read_exact(1 << 20)
        # reset, not a polite close: the server's next write fails with EPIPE/ECONNRESET
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert wait_for_connections(server, 0) == 0
    assert_server_healthy(server)
    assert wait_for_connections(server, 0) == 0


def test_concurrent_clients(server: RunningServer) -> None:
    big = site_bytes(server, TEN_MIB)

    def fetch(i: int) -> bool:
        with RawClient(server) as client:
            client.send(request_bytes(target="/" + TEN_MIB) + request_bytes(target="/kib.bin"))
            first = client.read_response()
            second = client.read_response()
            return first.body == big and second.body == site_bytes(server, "kib.bin")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert all(pool.map(fetch, range(8)))
    assert wait_for_connections(server, 0) == 0


@pytest.mark.parametrize(
    ("target", "status", "relative"),
    [
        ("/kib.bin?v=1", 200, "kib.bin"),
        ("/kib.bin?../../etc/passwd", 200, "kib.bin"),
        ("/%6Bib.bin", 200, "kib.bin"),
        ("/sub%2Fpage.txt", 200, "sub/page.txt"),  # decoded once, then normalised
        ("/kib.bin#frag", 400, None),
        ("/kib.bin%", 400, None),
        ("/kib.bin%zz", 400, None),
    ],
)
def test_query_and_escapes(
    server: RunningServer, target: str, status: int, relative: str | None
) -> None:
    response = get_raw(server, target)
    assert response.status == status
    if relative is not None:
        assert response.body == site_bytes(server, relative)
    else:
        assert response.body == error_body(status)


def test_non_ascii_names_and_encoded_location(server: RunningServer) -> None:
    tag = secrets.token_hex(4)
    name = f"ünï cödé-{tag}.txt"
    directory = f"a b?c-{tag}"
    (server.root / name).write_text("unicode\n")
    (server.root / directory).mkdir()
    (server.root / directory / "index.html").write_text("dir with space\n")
    with in_root(server, server.root / name, server.root / directory):
        quoted = urllib.parse.quote(name)
        response = get_raw(server, "/" + quoted)
        assert response.status == 200
        assert response.body == b"unicode\n"
        assert response.header("content-type") == "text/plain; charset=utf-8"
        # the Location is percent-encoded from the clean segments
        redirect = get_raw(server, "/" + urllib.parse.quote(directory) + "?q=1")
        assert redirect.status == 308
        assert redirect.header("location") == f"/a%20b%3Fc-{tag}/?q=1"
        with httpx_client(server, follow_redirects=True) as client:
            followed = client.get("/" + urllib.parse.quote(directory))
        assert followed.status_code == 200
        assert followed.content == b"dir with space\n"
