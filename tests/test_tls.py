"""HTTPS end to end: a CA and a leaf made by trustme, verifying clients, byte-exact bodies
and ranges over TLS, keep-alive, ALPN, client certificates, junk on the TLS port, bounded
memory for a slow TLS reader, and the ASGI scheme."""

from __future__ import annotations

import hashlib
import http.client
import os
import platform
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from conftest import SIZES, RunningServer, start_server
from serverprocs import zerohttp

from zerohttp import Config
from zerohttp.errors import ConfigError
from zerohttp.server import Server
from zerohttp.tls import keep_buffers_on_the_heap, ktls_unavailable_reason

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = {
        "cert": str(folder / "cert.pem"),
        "key": str(folder / "key.pem"),
        "ca": str(folder / "ca.pem"),
        "client": str(folder / "client.pem"),
    }
    for blob in leaf.cert_chain_pems:
        with open(paths["cert"], "ab") as out:
            out.write(blob.bytes())
    leaf.private_key_pem.write_to_path(paths["key"])
    ca.cert_pem.write_to_path(paths["ca"])
    ca.issue_cert("client@example.test").private_key_and_cert_chain_pem.write_to_path(
        paths["client"]
    )
    return paths


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def tls_server(
    request: pytest.FixtureRequest, site: Path, pki: dict[str, str]
) -> Iterator[RunningServer]:
    with start_server(
        site, request.param, ssl_certfile=pki["cert"], ssl_keyfile=pki["key"]
    ) as running:
        yield running


def client_context(pki: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki["ca"])
    context.set_alpn_protocols(["http/1.1"])
    return context


@pytest.mark.parametrize("name", sorted(SIZES))
def test_bodies_are_byte_exact_over_tls(
    tls_server: RunningServer, pki: dict[str, str], name: str
) -> None:
    with httpx.Client(verify=client_context(pki), timeout=10) as client:
        response = client.get(f"https://127.0.0.1:{tls_server.port}/{name}")
    assert response.status_code == 200
    assert response.content == (tls_server.root / name).read_bytes()
    assert response.headers["content-length"] == str(SIZES[name])


def test_ranges_over_tls(tls_server: RunningServer, pki: dict[str, str]) -> None:
    data = (tls_server.root / "ten-mib.bin").read_bytes()
    with httpx.Client(verify=client_context(pki), timeout=10) as client:
        url = f"https://127.0.0.1:{tls_server.port}/ten-mib.bin"
        single = client.get(url, headers={"Range": "bytes=1000000-2999999"})
        multi = client.get(url, headers={"Range": "bytes=0-9,5000000-5000009"})
    assert single.status_code == 206
    assert single.content == data[1000000:3000000]
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert data[:10] in multi.content and data[5000000:5000010] in multi.content


def test_keep_alive_and_alpn_over_tls(tls_server: RunningServer, pki: dict[str, str]) -> None:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", tls_server.port, context=client_context(pki), timeout=10
    )
    for _ in range(20):
        connection.request("GET", "/kib.bin")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == (tls_server.root / "kib.bin").read_bytes()
    sock = connection.sock
    assert isinstance(sock, ssl.SSLSocket)
    assert sock.selected_alpn_protocol() == "http/1.1"
    assert sock.version() in ("TLSv1.2", "TLSv1.3")
    connection.close()


@pytest.mark.parametrize(
    "junk",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello" * 20, b"\x00" * 4096, b""],
    ids=["plain-http", "bad-handshake", "zeros", "eof"],
)
def test_junk_on_the_tls_port_is_closed_and_harms_no_one(
    tls_server: RunningServer, pki: dict[str, str], junk: bytes
) -> None:
    good = http.client.HTTPSConnection(
        "127.0.0.1", tls_server.port, context=client_context(pki), timeout=10
    )
    good.request("GET", "/one.bin")
    assert good.getresponse().read() == (tls_server.root / "one.bin").read_bytes()
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as bad:
        bad.sendall(junk)
        bad.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := bad.recv(65536):
            received += chunk
        assert b"HTTP/1.1 200" not in received  # never served in the clear
    good.request("GET", "/kib.bin")  # the other connection is untouched
    assert good.getresponse().read() == (tls_server.root / "kib.bin").read_bytes()
    good.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_old_protocols_are_refused(tls_server: RunningServer, pki: dict[str, str]) -> None:
    context = client_context(pki)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with (
        pytest.raises((ssl.SSLError, ConnectionError)),
        socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as raw,
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_client_certificates_when_required(site: Path, pki: dict[str, str]) -> None:
    with start_server(
        site,
        ssl_certfile=pki["cert"],
        ssl_keyfile=pki["key"],
        ssl_ca_certs=pki["ca"],
        ssl_cert_reqs=2,
    ) as server:
        url = f"https://127.0.0.1:{server.port}/one.bin"
        with_cert = client_context(pki)
        with_cert.load_cert_chain(pki["client"])
        assert httpx.get(url, verify=with_cert, timeout=10).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, verify=client_context(pki), timeout=10)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ssl_certfile": "/nonexistent.pem"}, "no such file"),
        ({"ssl_keyfile": "key.pem"}, "need --ssl-certfile"),
        ({"ssl_cert_reqs": 3}, "must be 0, 1 or 2"),
    ],
)
def test_bad_tls_settings_are_config_errors(
    site: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Server(Config(root=str(site), **fields))


def test_a_key_that_does_not_match_is_a_config_error(
    site: Path, pki: dict[str, str], ca: trustme.CA, tmp_path: Path
) -> None:
    other = tmp_path / "other-key.pem"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other))
    with pytest.raises(ConfigError, match="is not the key of the certificate"):
        Server(Config(root=str(site), ssl_certfile=pki["cert"], ssl_keyfile=str(other)))


def test_ktls_reason_names_what_is_missing() -> None:
    assert "no 'tls' ULP" in ktls_unavailable_reason("mptcp\n")
    assert "no 'tls' ULP" not in ktls_unavailable_reason("mptcp tls\n")
    assert "memory BIO" in ktls_unavailable_reason("tls")


def test_asgi_scope_scheme_is_https(tmp_path: Path, pki: dict[str, str]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["scheme"].encode()})

    with start_server(
        tmp_path, app=app, ssl_certfile=pki["cert"], ssl_keyfile=pki["key"], lifespan="off"
    ) as server:
        response = httpx.get(
            f"https://127.0.0.1:{server.port}/", verify=client_context(pki), timeout=10
        )
    assert response.content == b"https"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_tls_reader_of_a_large_file_keeps_memory_bounded(
    tmp_path: Path, pki: dict[str, str]
) -> None:
    """256 MiB read slowly over TLS: the server's RSS grows by far less than the file."""
    root = tmp_path / "root"
    root.mkdir()
    size = 256 * 1024 * 1024
    with open(root / "big.bin", "wb") as out:
        out.truncate(size)  # sparse: zeros, no disk
    args = [str(root), "--port", "0", "--ssl-certfile", pki["cert"], "--ssl-keyfile", pki["key"]]
    with zerohttp(args) as server:
        baseline = rss_kib(server.proc.pid)
        context = client_context(pki)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        digest = hashlib.sha256()
        received = 0
        peak = baseline
        deadline = time.monotonic() + 60
        while received < 48 * 1024 * 1024 and time.monotonic() < deadline:
            chunk = tls.recv(256 * 1024)
            assert chunk
            received += len(chunk)
            digest.update(chunk)
            if received % (4 * 1024 * 1024) < len(chunk):
                time.sleep(0.05)  # slow reader: the server must wait, not buffer
                peak = max(peak, rss_kib(server.proc.pid))
        tls.close()
        assert received >= 48 * 1024 * 1024
        assert (peak - baseline) < 64 * 1024, f"RSS grew by {(peak - baseline) // 1024} MiB"
        assert server.stop() == 0
    assert os.path.getsize(root / "big.bin") == size


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc's mallopt only",
)
def test_tls_bodies_keep_their_buffers_on_the_heap() -> None:
    """The allocator settings a TLS server makes (a 1 GiB body without them spent most
    of its CPU faulting in fresh pages per chunk: RESULTS.md, "Issue 21") take on glibc."""
    assert keep_buffers_on_the_heap()
