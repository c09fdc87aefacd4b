"""End-to-end HTTP semantics over real sockets: ranges, conditionals, precompressed
siblings, autoindex, SPA fallback, 404 page, cache headers and OPTIONS.

Every test runs against four servers (uvloop/asyncio x sendfile/fallback) serving one
module-scoped site; a second set of "plain" servers (no SPA, no autoindex) gives the
contrast. Raw-socket exchanges always end with ``Connection: close`` and require the
connection to end exactly where the last response's framing says, so every one of them
also checks framing. Precompressed bodies are read with raw sockets, http.client or curl,
and httpx only where its decoding them is the point. Tests marked ``curl`` run the curl
binary and are skipped when it is not installed; what they check without curl is also
checked by a raw-socket, http.client or httpx test that always runs.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import email.utils
import gzip
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from conftest import BODY_PATHS, CURL, LOOPS, STRACE, RunningServer, start_server
from helpers import RawClient

REPO = Path(__file__).resolve().parents[1]
COMBOS = [(lp, bp) for lp in LOOPS for bp in BODY_PATHS]
COMBO_IDS = [f"{lp}-{bp}" for lp, bp in COMBOS]
TIMEOUT = 10.0

BIG_SIZE = 10 * 1024 * 1024
T0 = 1_700_000_000  # whole seconds; mtimes below are set relative to it
XSS_NAME = "<img src=x onerror=alert(1)>.txt"
JS_TYPE = "text/javascript; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
ALLOW = "GET, HEAD, OPTIONS"
MULTI = "bytes=0-9,1000-1999,5000000-5000099"
MULTI_SPANS = [(0, 9), (1000, 1999), (5000000, 5000099)]


# --- the site ------------------------------------------------------------------------------


@dataclass
class Site:
    root: Path
    files: dict[str, bytes]

    def __getitem__(self, name: str) -> bytes:
        return self.files[name]


def _write(root: Path, name: str, data: bytes, mtime: float | None = None) -> bytes:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        ns = int(mtime * 1_000_000_000)
        os.utime(path, ns=(ns, ns))
    return data


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("e2e-semantics") / "root"
    root.mkdir()
    files: dict[str, bytes] = {}

    def add(name: str, data: bytes, mtime: float | None = None) -> None:
        files[name] = _write(root, name, data, mtime)

    add("big.bin", os.urandom(BIG_SIZE), T0 + 0.75)  # fractional: Last-Modified truncates
    add("kib.bin", os.urandom(1024), T0)
    add("app.js", b"/* identity */\n" + b"console.log('identity app.js');\n" * 40, T0)
    # Siblings no older than app.js (one exactly as old), each recognisably different.
    add("app.js.br", b"BROTLI-SIBLING:" + os.urandom(600), T0 + 5)
    add("app.js.zst", b"ZSTD-SIBLING:" + os.urandom(500), T0 + 5)
    add("app.js.gz", gzip.compress(b"gzip sibling of app.js\n", mtime=0), T0)
    add("stale.js", b"console.log('stale identity');\n", T0)
    add("stale.js.gz", gzip.compress(b"outdated gzip\n", mtime=0), T0 - 3600)
    add("app.3f9a1c2e.js", b"console.log('fingerprinted');\n", T0)
    add("index.html", b"<!doctype html><title>spa root index</title>\n", T0)
    add("404.html", b"<!doctype html><h1>custom not found page</h1>\n", T0)
    add(f"listing/{XSS_NAME}", b"served despite its name\n", T0)
    add("listing/aaa.txt", b"aaa\n", T0)
    add("listing/.hidden-file", b"hidden\n", T0)
    add("future.txt", b"from the future\n", time.time() + 86400)  # clock skew, odd archives
    (root / "listing" / "Zdir").mkdir()
    (root / "listing" / ".hidden-dir").mkdir()
    return Site(root, files)


@pytest.fixture(scope="module")
def servers(site: Site) -> Iterator[dict[tuple[str, str], RunningServer]]:
    """One configured server per (loop, body path), all running for the whole module."""
    with contextlib.ExitStack() as stack:
        running = {
            combo: stack.enter_context(
                start_server(
                    site.root,
                    combo[0],
                    combo[1],
                    autoindex=True,
                    spa=True,
                    immutable_pattern=r"\.[0-9a-f]{8}\.\w+$",
                    cache_control="no-cache",
                )
            )
            for combo in COMBOS
        }
        yield running


@pytest.fixture(scope="module")
def plain_servers(site: Site) -> Iterator[dict[tuple[str, str], RunningServer]]:
    """Default configuration (no SPA, no autoindex, no Cache-Control) for contrast."""
    with contextlib.ExitStack() as stack:
        yield {combo: stack.enter_context(start_server(site.root, *combo)) for combo in COMBOS}


@pytest.fixture(params=COMBOS, ids=COMBO_IDS)
def srv(request: pytest.FixtureRequest, servers: dict) -> RunningServer:
    return servers[request.param]


@pytest.fixture(params=COMBOS, ids=COMBO_IDS)
def plain(request: pytest.FixtureRequest, plain_servers: dict) -> RunningServer:
    return plain_servers[request.param]


# --- raw HTTP/1.1 client -----------------------------------------------------------------


@dataclass
class Raw:
    status: int
    headers: list[tuple[str, str]]  # (lower-case name, value), in order
    body: bytes

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def h(self, name: str) -> str | None:
        """The value of a field that must appear at most once."""
        values = self.all(name)
        assert len(values) <= 1, f"{name} repeated: {values}"
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return bool(self.all(name))


Request = tuple[str, str, dict[str, str]]


def build_request(method: str, target: str, headers: dict[str, str], close: bool) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(srv: RunningServer, *requests: Request) -> list[Raw]:
    """Pipeline ``requests`` on one connection, the last with ``Connection: close``.

    Asserts the server closes right after the last response: not one stray byte.
    """
    data = b"".join(
        build_request(m, t, h, close=i == len(requests) - 1) for i, (m, t, h) in enumerate(requests)
    )
    with RawClient(srv, TIMEOUT) as client:
        client.send(data)
        responses = []
        for method, _, _ in requests:
            response = client.read_response(head=method == "HEAD")
            responses.append(Raw(response.status, response.headers, response.body))
        rest = client.read_until_close()
        assert not client.reset, "the server reset the connection"
    assert rest == b"", f"bytes after the last response: {rest[:200]!r}"
    assert responses[-1].h("connection") == "close"
    return responses


def get(srv: RunningServer, target: str, method: str = "GET", **headers: str) -> Raw:
    names = {k.replace("_", "-"): v for k, v in headers.items()}
    (response,) = exchange(srv, (method, target, names))
    return response


def curl(url: str, *args: str) -> Raw:
    """Run curl; status, headers and the body exactly as received (no decoding).

    Only from tests marked ``curl``, which are skipped when it is not installed.
    """
    assert CURL is not None
    with tempfile.TemporaryDirectory() as tmp:
        head, body = Path(tmp) / "head", Path(tmp) / "body"
        subprocess.run(
            [CURL, "-sS", "--max-time", "10", "-D", str(head), "-o", str(body), *args, url],
            check=True,
            timeout=20,
        )
        lines = head.read_bytes().decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = [
            (n.strip().lower(), v.strip()) for n, _, v in (x.partition(":") for x in lines[1:] if x)
        ]
        return Raw(status, headers, body.read_bytes())


def client(srv: RunningServer) -> httpx.Client:
    # identity: httpx would otherwise be sent a precompressed sibling and decode it
    return httpx.Client(
        base_url=srv.base_url, timeout=TIMEOUT, headers={"Accept-Encoding": "identity"}
    )


def parse_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """A strict multipart/byteranges parser: every byte must be where RFC 9110 §14.6 says."""
    delimiter = b"--" + boundary.encode("ascii")
    parts: list[tuple[dict[str, str], bytes]] = []
    pos = 0
    while True:
        if parts:
            assert body[pos : pos + 2] == b"\r\n", f"no CRLF before delimiter at {pos}"
            pos += 2
        assert body[pos : pos + len(delimiter)] == delimiter, f"no delimiter at {pos}"
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            assert body[pos:] == b"--\r\n", f"junk after the close delimiter: {body[pos:]!r}"
            return parts
        assert body[pos : pos + 2] == b"\r\n"
        pos += 2
        end = body.index(b"\r\n\r\n", pos)
        fields: dict[str, str] = {}
        for line in body[pos:end].decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        pos = end + 4
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", fields["content-range"])
        assert match, fields
        length = int(match[2]) - int(match[1]) + 1
        parts.append((fields, body[pos : pos + length]))
        pos += length


def boundary_of(response: Raw) -> str:
    content_type = response.h("content-type") or ""
    match = re.fullmatch(
        r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,\-./:=?]+)", content_type
    )
    assert match, content_type
    return match[1]


def http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)


# --- 1. ranges -----------------------------------------------------------------------------


def test_multipart_byteranges_three_parts(srv: RunningServer, site: Site) -> None:
    response = get(srv, "/big.bin", Range=MULTI)
    assert response.status == 206
    assert response.h("content-length") == str(len(response.body))
    assert not response.has("content-range")  # only the parts carry one
    assert response.h("accept-ranges") == "bytes"
    boundary = boundary_of(response)
    parts = parse_multipart(response.body, boundary)
    assert len(parts) == len(MULTI_SPANS)
    for (fields, data), (start, end) in zip(parts, MULTI_SPANS, strict=True):
        assert fields == {
            "content-type": "application/octet-stream",
            "content-range": f"bytes {start}-{end}/{BIG_SIZE}",
        }
        assert data == site["big.bin"][start : end + 1]

    # Cross-check with the standard library's MIME parser.
    message = email.message_from_bytes(
        f"Content-Type: {response.h('content-type')}\r\n\r\n".encode() + response.body,
        policy=email.policy.HTTP,
    )
    assert message.is_multipart()
    mime_parts = list(message.iter_parts())
    assert [p["Content-Range"] for p in mime_parts] == [
        f"bytes {s}-{e}/{BIG_SIZE}" for s, e in MULTI_SPANS
    ]
    for part, (start, end) in zip(mime_parts, MULTI_SPANS, strict=True):
        assert part.get_payload(decode=True) == site["big.bin"][start : end + 1]


def test_multipart_head_matches_get_framing(srv: RunningServer) -> None:
    """HEAD of a multipart range: the GET's Content-Length, no body; the next GET parses."""
    head, after = exchange(
        srv, ("HEAD", "/big.bin", {"Range": MULTI}), ("GET", "/kib.bin", {"Range": "bytes=0-0"})
    )
    assert head.status == 206 and head.body == b""
    full = get(srv, "/big.bin", Range=MULTI)
    assert int(head.h("content-length")) == len(full.body)
    assert after.status == 206 and after.h("content-range") == "bytes 0-0/1024"


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=10485000-", 10485000, BIG_SIZE - 1),  # open-ended
        ("bytes=-500", BIG_SIZE - 500, BIG_SIZE - 1),  # suffix
        ("bytes=10485700-99999999", 10485700, BIG_SIZE - 1),  # last clipped to the size
        ("bytes=0-99,50-149", 0, 149),  # overlapping: coalesced into one part
        ("bytes=200-299,0-99", 0, 299),  # out of order and close together: one part
    ],
)
def test_single_range(srv: RunningServer, site: Site, value: str, start: int, end: int) -> None:
    response = get(srv, "/big.bin", Range=value)
    assert response.status == 206
    assert response.h("content-range") == f"bytes {start}-{end}/{BIG_SIZE}"
    assert response.h("content-type") == "application/octet-stream"
    assert response.h("content-length") == str(end - start + 1)
    assert response.body == site["big.bin"][start : end + 1]


def test_single_range_with_http_client(srv: RunningServer, site: Site) -> None:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/big.bin", headers={"Range": "bytes=-10"})
        response = conn.getresponse()
        assert response.status == 206
        assert (
            response.getheader("Content-Range")
            == f"bytes {BIG_SIZE - 10}-{BIG_SIZE - 1}/{BIG_SIZE}"
        )
        assert response.read() == site["big.bin"][-10:]
        conn.request("GET", "/kib.bin")  # same connection: the range left nothing behind
        response = conn.getresponse()
        assert response.status == 200 and response.read() == site["kib.bin"]
    finally:
        conn.close()


@pytest.mark.curl
def test_single_range_with_curl(srv: RunningServer, site: Site) -> None:
    result = curl(srv.url("/big.bin"), "-r", "4096-8191")
    assert result.status == 206
    assert result.h("content-range") == f"bytes 4096-8191/{BIG_SIZE}"
    assert result.body == site["big.bin"][4096:8192]


@pytest.mark.parametrize("value", ["bytes=-0", f"bytes={BIG_SIZE}-", "bytes=20000000-20000010"])
def test_unsatisfiable_range_is_416(srv: RunningServer, value: str) -> None:
    response = get(srv, "/big.bin", Range=value)
    assert response.status == 416
    assert response.h("content-range") == f"bytes */{BIG_SIZE}"
    assert len(response.body) < 200  # a short error text, never the file


@pytest.mark.parametrize(
    "value",
    ["bytes=abc", "bytes=5-1", "bytes=-", "items=0-9", "bytes 0-9", "bytes=0-9;x", "bytes=1--2"],
)
def test_invalid_range_syntax_serves_whole_file(srv: RunningServer, site: Site, value: str) -> None:
    response = get(srv, "/kib.bin", Range=value)
    assert response.status == 200
    assert not response.has("content-range")
    assert response.body == site["kib.bin"]


def test_range_costing_more_than_the_file_is_served_whole(srv: RunningServer, site: Site) -> None:
    # Five parts just over a part's overhead apart: 616 bytes of data + 5 x 100 > 1024.
    value = "bytes=0-149,252-401,504-653,756-905,1008-1023"
    response = get(srv, "/kib.bin", Range=value)
    assert response.status == 200
    assert response.body == site["kib.bin"]


# --- 2. If-Range --------------------------------------------------------------------------


def _validators(srv: RunningServer, target: str = "/big.bin", **headers: str) -> tuple[str, str]:
    response = get(srv, target, method="HEAD", **headers)
    assert response.status == 200
    return response.h("etag"), response.h("last-modified")


def test_if_range(srv: RunningServer, site: Site) -> None:
    etag, last_modified = _validators(srv)
    assert etag.startswith('"') and last_modified == http_date(T0)
    part = site["big.bin"][100:200]
    for good in (etag, last_modified):
        response = get(srv, "/big.bin", Range="bytes=100-199", If_Range=good)
        assert response.status == 206, good
        assert response.h("content-range") == f"bytes 100-199/{BIG_SIZE}"
        assert response.body == part
    for bad in ('"not-the-etag"', "W/" + etag, http_date(T0 - 86400), http_date(T0 + 1)):
        response = get(srv, "/big.bin", Range="bytes=100-199", If_Range=bad)
        assert response.status == 200, bad
        assert not response.has("content-range")
        assert response.h("content-length") == str(BIG_SIZE)
        assert response.body == site["big.bin"]


def test_if_range_with_multipart(srv: RunningServer, site: Site) -> None:
    etag, _ = _validators(srv)
    response = get(srv, "/big.bin", Range=MULTI, If_Range=etag)
    assert response.status == 206
    assert len(parse_multipart(response.body, boundary_of(response))) == 3


def test_last_modified_never_after_date(srv: RunningServer) -> None:
    response = get(srv, "/future.txt")
    assert response.status == 200
    date = email.utils.parsedate_to_datetime(response.h("date"))
    last_modified = email.utils.parsedate_to_datetime(response.h("last-modified"))
    assert last_modified <= date


# --- 3. conditionals -------------------------------------------------------------------------


def test_if_none_match_304_then_pipelined_response(srv: RunningServer, site: Site) -> None:
    etag, last_modified = _validators(srv, "/kib.bin")
    not_modified, after = exchange(
        srv, ("GET", "/kib.bin", {"If-None-Match": etag}), ("GET", "/app.3f9a1c2e.js", {})
    )
    assert not_modified.status == 304
    assert not_modified.h("etag") == etag
    assert not_modified.h("last-modified") == last_modified == http_date(T0)
    assert not_modified.h("cache-control") == "no-cache"
    assert not not_modified.has("content-type")
    assert after.status == 200
    assert after.body == site["app.3f9a1c2e.js"]


@pytest.mark.parametrize(
    "template", ["{etag}", "W/{etag}", '"other", {etag}', "*", ' "x" ,  W/{etag} ']
)
def test_if_none_match_forms(srv: RunningServer, template: str) -> None:
    etag, _ = _validators(srv, "/kib.bin")
    response = get(srv, "/kib.bin", If_None_Match=template.format(etag=etag))
    assert response.status == 304
    assert response.body == b""


def test_if_none_match_other_tag_is_200(srv: RunningServer, site: Site) -> None:
    response = get(srv, "/kib.bin", If_None_Match='"nope", W/"also-nope"')
    assert response.status == 200 and response.body == site["kib.bin"]


def test_if_none_match_wins_over_if_modified_since(srv: RunningServer, site: Site) -> None:
    response = get(srv, "/kib.bin", If_None_Match='"nope"', If_Modified_Since=http_date(T0 + 3600))
    assert response.status == 200 and response.body == site["kib.bin"]


def test_if_match(srv: RunningServer, site: Site) -> None:
    etag, _ = _validators(srv, "/kib.bin")
    assert get(srv, "/kib.bin", If_Match='"wrong"').status == 412
    assert get(srv, "/kib.bin", If_Match="W/" + etag).status == 412  # strong comparison
    ok = get(srv, "/kib.bin", If_Match=etag)
    assert ok.status == 200 and ok.body == site["kib.bin"]
    assert get(srv, "/kib.bin", If_Match="*").status == 200


def test_if_match_wrong_on_range_is_412_not_206(srv: RunningServer) -> None:
    response = get(srv, "/big.bin", If_Match='"wrong"', Range="bytes=0-9")
    assert response.status == 412
    assert not response.has("content-range")


def test_if_modified_since(srv: RunningServer, site: Site) -> None:
    _, last_modified = _validators(srv)  # big.bin: mtime T0.75 s, truncated to T0
    same = get(srv, "/big.bin", If_Modified_Since=last_modified)
    assert same.status == 304 and same.body == b""
    assert same.h("last-modified") == last_modified
    later = get(srv, "/big.bin", If_Modified_Since=http_date(T0 + 100))
    assert later.status == 304
    earlier = get(srv, "/kib.bin", If_Modified_Since=http_date(T0 - 1))
    assert earlier.status == 200 and earlier.body == site["kib.bin"]


@pytest.mark.parametrize("garbage", ["yesterday", "Mon, 99 Foo 2023 25:61:61 GMT", "0", ""])
def test_if_modified_since_garbage_is_ignored(srv: RunningServer, site: Site, garbage: str) -> None:
    response = get(srv, "/kib.bin", If_Modified_Since=garbage)
    assert response.status == 200
    assert response.body == site["kib.bin"]


def test_if_unmodified_since(srv: RunningServer, site: Site) -> None:
    assert get(srv, "/kib.bin", If_Unmodified_Since=http_date(T0 - 1)).status == 412
    ok = get(srv, "/kib.bin", If_Unmodified_Since=http_date(T0))
    assert ok.status == 200 and ok.body == site["kib.bin"]


def test_conditionals_with_httpx(srv: RunningServer, site: Site) -> None:
    with client(srv) as http:
        first = http.get("/kib.bin")
        assert first.status_code == 200 and first.content == site["kib.bin"]
        second = http.get("/kib.bin", headers={"If-None-Match": first.headers["etag"]})
        assert second.status_code == 304 and second.content == b""
        third = http.get("/kib.bin", headers={"If-Modified-Since": first.headers["last-modified"]})
        assert third.status_code == 304


# --- 4. precompressed siblings -----------------------------------------------------------------


def _identity_etag(srv: RunningServer) -> str:
    response = get(srv, "/app.js", method="HEAD", Accept_Encoding="identity")
    assert not response.has("content-encoding")
    return response.h("etag")


@pytest.mark.parametrize(
    ("accept", "coding", "name"),
    [
        ("br, gzip, zstd", "br", "app.js.br"),
        ("gzip, zstd, br", "br", "app.js.br"),  # ties go to the server's order
        ("gzip;q=0, br;q=0, zstd", "zstd", "app.js.zst"),
        ("gzip", "gzip", "app.js.gz"),
        ("GZIP;Q=0.5, br;q=0.4", "gzip", "app.js.gz"),
        ("*", "br", "app.js.br"),
        ("*;q=0.1, gzip;q=0.2", "gzip", "app.js.gz"),
    ],
)
def test_precompressed_sibling_chosen(
    srv: RunningServer, site: Site, accept: str, coding: str, name: str
) -> None:
    response = get(srv, "/app.js", Accept_Encoding=accept)
    assert response.status == 200
    assert response.body == site[name]
    assert response.h("content-encoding") == coding
    assert response.h("content-length") == str(len(site[name]))
    assert response.h("content-type") == JS_TYPE
    assert response.h("vary") == "Accept-Encoding"
    assert response.h("cache-control") == "no-cache"
    assert response.h("x-content-type-options") == "nosniff"
    etag = response.h("etag")
    assert etag and etag != _identity_etag(srv)


@pytest.mark.parametrize(
    "accept",
    [None, "gzip;q=0", "identity", "deflate, compress", "br;q=0, gzip;q=0, zstd;q=0", "*;q=0"],
)
def test_identity_when_no_acceptable_sibling(
    srv: RunningServer, site: Site, accept: str | None
) -> None:
    headers = {} if accept is None else {"Accept-Encoding": accept}
    (response,) = exchange(srv, ("GET", "/app.js", headers))
    assert response.status == 200
    assert response.body == site["app.js"]
    assert not response.has("content-encoding")
    assert response.h("content-type") == JS_TYPE
    assert response.h("vary") == "Accept-Encoding"  # the choice still depended on it


def test_older_sibling_is_never_served(srv: RunningServer, site: Site) -> None:
    response = get(srv, "/stale.js", Accept_Encoding="gzip, br, zstd")
    assert response.status == 200
    assert response.body == site["stale.js"]
    assert not response.has("content-encoding")


def test_range_applies_to_the_encoded_bytes(srv: RunningServer, site: Site) -> None:
    br = site["app.js.br"]
    response = get(srv, "/app.js", Accept_Encoding="br", Range="bytes=10-49")
    assert response.status == 206
    assert response.h("content-encoding") == "br"
    assert response.h("content-range") == f"bytes 10-49/{len(br)}"
    assert response.h("vary") == "Accept-Encoding"
    assert response.body == br[10:50]

    multi = get(srv, "/app.js", Accept_Encoding="br", Range="bytes=0-14,300-399")
    assert multi.status == 206 and multi.h("content-encoding") == "br"
    parts = parse_multipart(multi.body, boundary_of(multi))
    assert [(f["content-type"], f["content-range"]) for f, _ in parts] == [
        (JS_TYPE, f"bytes 0-14/{len(br)}"),
        (JS_TYPE, f"bytes 300-399/{len(br)}"),
    ]
    assert [d for _, d in parts] == [b"BROTLI-SIBLING:", br[300:400]]


def test_if_range_and_if_none_match_use_the_encoded_etag(srv: RunningServer, site: Site) -> None:
    br_etag = get(srv, "/app.js", method="HEAD", Accept_Encoding="br").h("etag")
    identity_etag = _identity_etag(srv)
    hit = get(srv, "/app.js", Accept_Encoding="br", Range="bytes=0-3", If_Range=br_etag)
    assert hit.status == 206 and hit.body == b"BROT"
    miss = get(srv, "/app.js", Accept_Encoding="br", Range="bytes=0-3", If_Range=identity_etag)
    assert miss.status == 200 and miss.body == site["app.js.br"]
    cached = get(srv, "/app.js", Accept_Encoding="br", If_None_Match=br_etag)
    assert cached.status == 304 and cached.h("vary") == "Accept-Encoding"
    assert cached.h("etag") == br_etag
    stale = get(srv, "/app.js", Accept_Encoding="br", If_None_Match=identity_etag)
    assert stale.status == 200 and stale.body == site["app.js.br"]


def test_precompressed_with_http_client_and_httpx(srv: RunningServer, site: Site) -> None:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/app.js", headers={"Accept-Encoding": "zstd"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Encoding") == "zstd"
        assert response.read() == site["app.js.zst"]
        conn.request("GET", "/app.js")  # http.client sends Accept-Encoding: identity
        response = conn.getresponse()
        assert response.getheader("Content-Encoding") is None
        assert response.read() == site["app.js"]
    finally:
        conn.close()
    # a client that decodes what it asked for (as curl --compressed, below)
    with httpx.Client(
        base_url=srv.base_url, timeout=TIMEOUT, headers={"Accept-Encoding": "gzip"}
    ) as decoding:
        decoded = decoding.get("/app.js")
    assert decoded.status_code == 200 and decoded.headers["content-encoding"] == "gzip"
    assert decoded.content == b"gzip sibling of app.js\n"


@pytest.mark.curl
def test_precompressed_with_curl(srv: RunningServer, site: Site) -> None:
    result = curl(srv.url("/app.js"), "-H", "Accept-Encoding: gzip")
    assert result.status == 200 and result.h("content-encoding") == "gzip"
    assert result.body == site["app.js.gz"]
    assert gzip.decompress(result.body) == b"gzip sibling of app.js\n"
    decoded = curl(srv.url("/app.js"), "--compressed", "-H", "Accept-Encoding: gzip")
    assert decoded.body == b"gzip sibling of app.js\n"


def test_unsatisfiable_range_on_encoded_representation(srv: RunningServer) -> None:
    response = get(srv, "/app.js", Accept_Encoding="br", Range="bytes=99999-")
    assert response.status == 416
    assert response.h("vary") == "Accept-Encoding"


def test_416_error_body_is_not_labelled_as_encoded(srv: RunningServer) -> None:
    response = get(srv, "/app.js", Accept_Encoding="br", Range="bytes=99999-")
    assert response.status == 416
    assert response.h("content-type") == "text/plain; charset=utf-8"
    assert not response.has("content-encoding"), response.body


def test_416_has_single_nosniff(srv: RunningServer) -> None:
    response = get(srv, "/big.bin", Range="bytes=-0")
    assert response.status == 416
    assert response.all("x-content-type-options") == ["nosniff"]


# --- 5. autoindex ----------------------------------------------------------------------------


def test_autoindex_escapes_names_and_links_work(srv: RunningServer, site: Site) -> None:
    response = get(srv, "/listing/")
    assert response.status == 200
    assert response.h("content-type") == HTML_TYPE
    assert response.h("x-content-type-options") == "nosniff"
    page = response.body.decode("utf-8")
    assert "<img" not in page.lower()
    assert "onerror=alert(1)&gt;.txt" in page
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in page
    assert "hidden" not in page  # neither .hidden-file nor .hidden-dir
    hrefs = re.findall(r'<a href="([^"]*)">', page)
    assert "../" in hrefs
    assert hrefs.index("./Zdir/") < hrefs.index("./aaa.txt")  # directories first
    (xss_href,) = [h for h in hrefs if "img" in h]
    assert re.fullmatch(r"\./[A-Za-z0-9%._\-~]+", xss_href), xss_href  # fully percent-encoded
    followed = get(srv, "/listing/" + xss_href[2:])
    assert followed.status == 200
    assert followed.body == site[f"listing/{XSS_NAME}"]
    assert followed.h("content-type") == "text/plain; charset=utf-8"


@pytest.mark.curl
def test_autoindex_link_followed_by_curl(srv: RunningServer, site: Site) -> None:
    page = get(srv, "/listing/").body.decode("utf-8")
    (xss_href,) = [h for h in re.findall(r'<a href="([^"]*)">', page) if "img" in h]
    via_curl = curl(srv.url("/listing/" + xss_href[2:]))
    assert via_curl.status == 200 and via_curl.body == site[f"listing/{XSS_NAME}"]


def test_autoindex_directory_without_slash_redirects(srv: RunningServer) -> None:
    response = get(srv, "/listing")
    assert response.status == 308
    assert response.h("location") == "/listing/"


def test_autoindex_off_on_plain_server(plain: RunningServer, site: Site) -> None:
    response = get(plain, "/listing/")
    assert response.status == 404
    assert response.body == site["404.html"]


# --- 6. SPA ----------------------------------------------------------------------------------


def test_spa_route_serves_root_index(srv: RunningServer, site: Site) -> None:
    with client(srv) as http:
        for route in ("/some/route", "/users/42", "/deep/a/b/c?x=1"):
            response = http.get(route)
            assert response.status_code == 200, route
            assert response.content == site["index.html"]
            assert response.headers["content-type"] == HTML_TYPE
            assert response.headers["cache-control"] == "no-cache"


def test_spa_missing_asset_is_404_page(srv: RunningServer, site: Site) -> None:
    for target in ("/missing.js", "/some/route/", "/assets/logo.png"):
        response = get(srv, target)
        assert response.status == 404, target
        assert response.body == site["404.html"]
        assert response.h("content-type") == HTML_TYPE
        assert response.h("content-length") == str(len(site["404.html"]))


def test_spa_methods(srv: RunningServer, site: Site) -> None:
    with client(srv) as http:
        response = http.post("/some/route", content=b"x=1")
        assert response.status_code == 405
        assert response.headers["allow"] == ALLOW
    head, after = exchange(srv, ("HEAD", "/some/route", {}), ("GET", "/some/route", {}))
    assert head.status == 200 and head.body == b""
    assert head.h("content-length") == str(len(site["index.html"]))
    assert after.status == 200 and after.body == site["index.html"]


def test_spa_off_on_plain_server(plain: RunningServer, site: Site) -> None:
    response = get(plain, "/some/route")
    assert response.status == 404
    assert response.body == site["404.html"]


# --- 7. 404 page ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/nope.txt", "/.hidden", "/listing/.hidden-file", "/a/b.c"])
def test_404_page_body(plain: RunningServer, site: Site, target: str) -> None:
    response = get(plain, target)
    assert response.status == 404
    assert response.body == site["404.html"]
    assert response.h("content-type") == HTML_TYPE
    assert response.h("x-content-type-options") == "nosniff"


def test_404_page_head_and_pipelining(plain: RunningServer, site: Site) -> None:
    head, missing, found = exchange(
        plain, ("HEAD", "/nope", {}), ("GET", "/nope.css", {}), ("GET", "/kib.bin", {})
    )
    assert head.status == 404 and head.body == b""
    assert head.h("content-length") == str(len(site["404.html"]))
    assert missing.status == 404 and missing.body == site["404.html"]
    assert found.status == 200 and found.body == site["kib.bin"]


def test_404_page_with_httpx(srv: RunningServer, site: Site) -> None:
    with client(srv) as http:
        response = http.get("/missing.js")
        assert response.status_code == 404
        assert response.content == site["404.html"]


# --- 8. cache headers -----------------------------------------------------------------------


def test_cache_headers(srv: RunningServer, site: Site) -> None:
    with client(srv) as http:
        fingerprinted = http.get("/app.3f9a1c2e.js")
        assert fingerprinted.status_code == 200
        assert fingerprinted.content == site["app.3f9a1c2e.js"]
        assert fingerprinted.headers["cache-control"] == IMMUTABLE
        assert fingerprinted.headers["x-content-type-options"] == "nosniff"
        for path in ("/app.js", "/kib.bin", "/index.html", "/", "/stale.js"):
            response = http.get(path)
            assert response.status_code == 200, path
            assert response.headers.get_list("cache-control") == ["no-cache"], path
            assert response.headers["x-content-type-options"] == "nosniff", path
        # not fingerprinted: 7 hex digits, or not hex
        assert "immutable" not in (get(srv, "/app.js").h("cache-control") or "")


def test_plain_server_sends_no_cache_control(plain: RunningServer) -> None:
    response = get(plain, "/app.3f9a1c2e.js")
    assert response.status == 200
    assert not response.has("cache-control")
    assert response.h("x-content-type-options") == "nosniff"


# --- 9. OPTIONS -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/kib.bin", "*", "/no/such/thing", "/listing/"])
def test_options(srv: RunningServer, site: Site, target: str) -> None:
    options, after = exchange(srv, ("OPTIONS", target, {}), ("GET", "/kib.bin", {}))
    assert options.status == 204
    assert options.h("allow") == ALLOW
    assert not options.has("content-length")
    assert options.body == b""
    assert after.status == 200 and after.body == site["kib.bin"]


# --- 10. identical bytes from every body path -----------------------------------------------

SAME_BYTES_REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("/big.bin", {"Range": MULTI}),
    ("/big.bin", {"Range": "bytes=1000-1999"}),
    ("/big.bin", {"Range": "bytes=-100000"}),
    ("/big.bin", {}),
    ("/app.js", {"Accept-Encoding": "br"}),
    ("/app.js", {"Accept-Encoding": "zstd", "Range": "bytes=5-20,300-400"}),
    ("/app.js", {"Accept-Encoding": "gzip", "Range": "bytes=3-"}),
    ("/some/route", {}),
    ("/missing.js", {}),
]


def _normalised(response: Raw) -> tuple[int, list[tuple[str, str]], bytes]:
    body = response.body
    headers = [(k, v) for k, v in response.headers if k != "date"]
    if (response.h("content-type") or "").startswith("multipart/"):
        boundary = boundary_of(response)
        body = body.replace(boundary.encode(), b"BOUNDARY")
        headers = [(k, v.replace(boundary, "BOUNDARY")) for k, v in headers]
    return response.status, headers, body


@pytest.mark.parametrize(("target", "headers"), SAME_BYTES_REQUESTS)
def test_body_paths_send_identical_bytes(
    servers: dict, site: Site, target: str, headers: dict[str, str]
) -> None:
    results = {
        combo: _normalised(exchange(s, ("GET", target, headers))[0]) for combo, s in servers.items()
    }
    reference = results[("asyncio", "fallback")]
    assert reference[0] in (200, 206, 404)
    assert len(reference[2]) > 0
    for combo, result in results.items():
        assert result[0] == reference[0], combo
        assert result[1] == reference[1], combo
        assert result[2] == reference[2], combo


def test_multipart_boundary_is_fresh(srv: RunningServer) -> None:
    first = boundary_of(get(srv, "/big.bin", Range=MULTI))
    second = boundary_of(get(srv, "/big.bin", Range=MULTI))
    assert first != second
    assert 1 <= len(first) <= 70


# --- 11. strace: the body really goes out through sendfile(2) -----------------------------------


def _child_pids(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            children.append(int(entry))
    return children


def _wait_for_banner(proc: subprocess.Popen, deadline: float) -> tuple[int | None, str]:
    lines: list[str] = []
    found: list[int] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if match:
                found.append(int(match[1]))
                done.set()
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    done.wait(max(0.0, deadline - time.monotonic()))
    return (found[0] if found else None), "".join(lines)


@pytest.mark.strace
@pytest.mark.usefixtures("tmp_sendfile")
def test_strace_multipart_goes_out_through_sendfile(site: Site) -> None:
    assert STRACE is not None
    pytest.importorskip("uvloop")
    log = site.root.parent / "strace.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [STRACE, "-f", "-s", "160", "-e", "trace=sendfile,sendto", "-o", str(log)]
    command += [sys.executable, "-m", "zerohttp", str(site.root), "--port", "0", "--loop", "uvloop"]
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        port, stderr = _wait_for_banner(proc, time.monotonic() + 20)
        if port is None:
            if "ptrace" in stderr.lower() or "not permitted" in stderr.lower():
                pytest.skip(f"ptrace not permitted: {stderr.strip()}")
            pytest.fail(f"no banner from zerohttp under strace: {stderr}")
        srv_stub = RunningServer("127.0.0.1", port, site.root, "uvloop", "sendfile", None, None)  # type: ignore[arg-type]
        response = get(srv_stub, "/big.bin", Range=MULTI)
        assert response.status == 206
        parts = parse_multipart(response.body, boundary_of(response))
        assert [d for _, d in parts] == [site["big.bin"][s : e + 1] for s, e in MULTI_SPANS]
    finally:
        for child in _child_pids(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    lines = log.read_text(errors="replace").splitlines()
    start = next(i for i, line in enumerate(lines) if "HTTP/1.1 206 Partial Content" in line)
    end = next(
        i for i in range(start, len(lines)) if "sendto(" in lines[i] and '--\\r\\n"' in lines[i]
    )
    relevant = lines[start : end + 1]
    print("\n--- strace: the multipart/byteranges response ---")
    for line in relevant:
        print(line)

    sendfiles = [
        tuple(int(x) for x in m.groups())
        for m in (
            re.search(r"sendfile\(\d+, \d+, \[(\d+)\] => \[\d+\], (\d+)\) = (\d+)", line)
            for line in relevant
        )
        if m
    ]
    assert sendfiles == [(s, e - s + 1, e - s + 1) for s, e in MULTI_SPANS]
    corked = [line for line in relevant if "sendto(" in line and "MSG_MORE" in line]
    assert "HTTP/1.1 206" in corked[0]
    assert len(corked) == 1 + len(MULTI_SPANS)  # the head, then one per part header
    for line, (s, e) in zip(corked[1:], MULTI_SPANS, strict=True):
        assert f"Content-Range: bytes {s}-{e}/{BIG_SIZE}" in line, line
    closing = relevant[-1]
    assert "MSG_MORE" not in closing  # the last segment pushes: nothing left corked
