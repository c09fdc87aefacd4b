"""Where the µs of one 1 KiB keep-alive GET over TLS go, stage by stage, in-process.

    taskset -c 0 python benchmarks/tls_stages.py

No event loop and no TCP: the TLS stages run OpenSSL over memory BIOs (what both loops'
SSL transports do), with the session of a real TLS 1.3 handshake; zerohttp's stages run
its ``data_received`` path over a transport that only collects what is written, as it
runs on an SSL transport (zero-copy off: the fallback body path). The SSL transport's own
Python/Cython work (buffers, the BIO shuffling, the socket write) is not here: it is what
``tls_floor.py`` measures under load, against a bare protocol without TLS.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zerohttp.body.fallback import render_cached
from zerohttp.config import Config
from zerohttp.http.connection import HTTPConnection, ServerState
from zerohttp.http.http11 import render_head
from zerohttp.message.dates import DateHeader
from zerohttp.message.response import FileBody, RequestHead
from zerohttp.static.handler import StaticHandler

REQUEST = b"GET /small.html HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n"
N = 20000


def per_call(func: Callable[[], Any], number: int = N) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


class Collector:
    """A transport that keeps what is written (an SSL transport, as the driver sees it)."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return object() if name == "sslcontext" else default

    def set_write_buffer_limits(self, high: int = 0, low: int = 0) -> None: ...
    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


def tls_pair(
    work: Path, records: int
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO, list[bytes]]:
    """A server SSLObject after a TLS 1.3 handshake over memory BIOs, its BIOs, and
    ``records`` request records as the client sent them, in order."""
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out)
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.write(b"x")  # settle the session tickets both ways
    s_in.write(c_out.read())
    server.read(65536)
    c_in.write(s_out.read())
    sent = []
    for _ in range(records):
        client.write(REQUEST)
        sent.append(c_out.read())
    return server, s_in, s_out, sent


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="zerohttp-tls-stages-"))
    server, s_in, s_out, records = tls_pair(work, N * 5)
    record = iter(records)

    root = work / "root"
    root.mkdir()
    (root / "small.html").write_bytes(os.urandom(1024))
    config = Config(root=str(root))
    app = StaticHandler(config)
    head = RequestHead(b"GET", b"/small.html", b"1.1", ((b"host", b"127.0.0.1:8443"),))
    response = app.handle(head)
    date = DateHeader()
    rendered = render_head(response, date.line(), keep_alive=True, http10=False)
    body = response.body
    assert isinstance(body, FileBody)
    segments = [rendered, *body.segments]
    fd = body.fd
    whole = render_cached(fd, segments, 65536)
    assert whole is not None

    def decrypt() -> None:
        s_in.write(next(record))
        server.read(65536)

    def encrypt() -> None:
        server.write(whole)
        s_out.read()

    def handle() -> None:
        app.handle(head).release()

    def full_path() -> float:
        async def run() -> float:
            state = ServerState(config, app, zero_copy=False)
            connection = HTTPConnection(state)
            collector = Collector()
            connection.connection_made(collector)  # type: ignore[arg-type]

            def one() -> None:
                connection.data_received(REQUEST)
                collector.written.clear()

            return per_call(one)

        return asyncio.run(run())

    stages = [
        ("TLS: decrypt one request record (BIO write + SSLObject.read)", per_call(decrypt)),
        (
            f"TLS: encrypt the {len(whole)}-byte response (SSLObject.write + BIO read)",
            per_call(encrypt),
        ),
        ("StaticHandler.handle, cache hit", per_call(handle)),
        (
            "render status line + Date + fields",
            per_call(lambda: render_head(response, date.line(), keep_alive=True, http10=False)),
        ),
        (
            "fallback body: render_cached (preadv NOWAIT 1 KiB + join)",
            per_call(lambda: render_cached(fd, segments, 65536)),
        ),
        ("  of which os.preadv(RWF_NOWAIT) alone", per_call(_preadv(fd))),
    ]
    total = full_path()
    print("`taskset -c 0 python benchmarks/tls_stages.py`, best of 5 x 20,000, in-process\n")
    print("| stage | µs |")
    print("|---|---:|")
    for label, micros in stages:
        print(f"| {label} | {micros:.2f} |")
    print(
        f"| **zerohttp's whole `data_received` on an SSL transport (no TLS)** | **{total:.2f}** |"
    )


def _preadv(fd: int) -> Callable[[], Any]:
    buffer = bytearray(1024)
    flag = getattr(os, "RWF_NOWAIT", 0)
    return lambda: os.preadv(fd, [buffer], 0, flag)


if __name__ == "__main__":
    main()
