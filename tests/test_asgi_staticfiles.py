"""``zerohttp.StaticFiles``, the ASGI app: in-process against a fake host, then end to end.

The in-process part calls the app with hand-built scopes and records what it sends, once per
body path a host can offer (zerocopysend, pathsend, neither): the message sequences, offsets
and counts, descriptors released on every way out (finished, send raising, cancelled, a
pre-2.4 host reporting a disconnect), root_path routing, HEAD and the constructor's checks.

The differential part asks the same questions over TCP of the plain CLI server and of the
app mounted at /static in a Starlette app, run by uvicorn and by ``zerohttp --app`` (with
and without ``--mount``), and requires the same status, fields and bodies.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import make_site
from helpers import RawClient, free_port, open_fds
from serverprocs import REPO, Reply, fetch, server_process

from zerohttp import StaticFiles
from zerohttp.asgi.static_plan import (
    PATHSEND,
    ZEROCOPYSEND,
    Delivery,
    FileRange,
    ReadSegments,
    delivery_for,
    location_prefix,
    plan_messages,
    request_head,
    route_path,
    same_file_size,
)
from zerohttp.asgi.staticfiles import DirectoryNotFound
from zerohttp.body.fallback import CHUNK_SIZE
from zerohttp.errors import ConfigError
from zerohttp.message.response import ByteRange, FileBody, Response, lowered_pairs
from zerohttp.static.handler import under_prefix

Message = dict[str, Any]

MODES: dict[str, dict[str, dict[str, Any]] | None] = {
    "zerocopysend": {ZEROCOPYSEND: {}},
    "pathsend": {PATHSEND: {}},
    "none": None,
}
BIG = 3 * 1024 * 1024 + 17  # several fallback chunks, not a multiple of one
HUGE = 256 * 1024 * 1024


def build_site(root: Path) -> Path:
    """conftest's site plus what these tests need: a gzip sibling, a 404 page, a big file."""
    make_site(root)
    style = (root / "style.css").read_bytes()
    (root / "style.css.gz").write_bytes(gzip.compress(style, mtime=0))
    (root / "404.html").write_text("<!doctype html><title>not here</title>\n")
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "with space.txt").write_text("spaced out\n")
    (root / "100%.txt").write_text("all of it\n")
    with open(root / "huge.bin", "wb") as huge:  # sparse: more than socket buffers hold
        huge.truncate(HUGE)
    for path in root.rglob("*"):  # in the past, so the open-file cache takes every file
        os.utime(path, (1_600_000_000, 1_600_000_000))
    future = time.time() + 86400  # never cached: every GET opens (and must close) its own fd
    os.utime(root / "huge.bin", (future, future))
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(tmp_path_factory.mktemp("asgi") / "site")


# --- a fake ASGI host ---------------------------------------------------------------------


@dataclass
class Exchange:
    """What the app sent for one request, with file messages resolved to their bytes."""

    messages: list[Message] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def types(self) -> list[str]:
        return [m["type"].removeprefix("http.response.") for m in self.messages]


class FakeHost:
    """Records messages like a host would see them; ``on_send`` may raise or block."""

    def __init__(
        self,
        on_send: Callable[[Message, int], Awaitable[None]] | None = None,
        receive_messages: list[Message] | None = None,
    ) -> None:
        self.exchange = Exchange()
        self.on_send = on_send
        self.inbox = list(receive_messages or [])
        self.sends = 0

    async def receive(self) -> Message:
        if self.inbox:
            return self.inbox.pop(0)
        await asyncio.Event().wait()  # nothing more to say: a host blocks here
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        self.sends += 1
        if self.on_send is not None:
            await self.on_send(message, self.sends)
        recorded = dict(message)
        kind = message["type"]
        if kind == "http.response.body":
            self.exchange.body += message.get("body", b"")
        elif kind == ZEROCOPYSEND:
            assert {"offset", "count"} <= message.keys(), "the fd may be shared: no position"
            fd = message["file"].fileno()
            recorded["file"] = fd
            self.exchange.body += os.pread(fd, message["count"], message["offset"])
        elif kind == PATHSEND:
            assert os.path.isabs(message["path"])
            self.exchange.body += Path(message["path"]).read_bytes()
        self.exchange.messages.append(recorded)


def make_scope(
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: bytes = b"",
    root_path: str = "",
    prefixed: bool = True,
    mode: str = "none",
    spec_version: str = "2.4",
    raw_path: bytes | None = None,
    drop_raw_path: bool = False,
) -> dict[str, Any]:
    """An HTTP scope; ``prefixed`` says whether ``path`` includes ``root_path`` (uvicorn,
    Starlette) or not (hypercorn, granian)."""
    full = root_path + path if prefixed else path
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": full,
        "raw_path": raw_path or full.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": root_path,
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    if drop_raw_path:
        del scope["raw_path"]
    extensions = MODES[mode]
    if extensions is not None:
        scope["extensions"] = extensions
    return scope


def call(app: StaticFiles, path: str, host: FakeHost | None = None, **scope: Any) -> Exchange:
    host = host or FakeHost()
    asyncio.run(app(make_scope(path, **scope), host.receive, host.send))
    return host.exchange


@pytest.fixture(scope="module")
def app(site: Path) -> StaticFiles:
    return StaticFiles(site, html=True)  # html=True: answers as the CLI server does


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def multipart_parts(content_type: bytes | str, body: bytes) -> list[tuple[str, str, bytes]]:
    """(Content-Type, Content-Range, data) of each part of a multipart/byteranges body."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode()
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        fields = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n") if b": " in line)
        parts.append((fields.get("Content-Type", ""), fields.get("Content-Range", ""), data[:-2]))
    return parts


# --- the pure plan ------------------------------------------------------------------------


def file_response(status: int, segments: tuple[bytes | ByteRange, ...], path: str) -> Response:
    return Response(status, (("Content-Length", "1"),), FileBody(999, path, segments))


def test_delivery_prefers_zerocopy_then_pathsend() -> None:
    assert delivery_for(None) is Delivery.STREAM
    assert delivery_for({}) is Delivery.STREAM
    assert delivery_for({PATHSEND: {}}) is Delivery.PATHSEND
    assert delivery_for({PATHSEND: {}, ZEROCOPYSEND: {}}) is Delivery.ZEROCOPY
    assert delivery_for({"http.response.trailers": {}}) is Delivery.STREAM


def test_plan_bytes_body_is_one_message() -> None:
    response = Response(404, (("Content-Type", "text/plain"), ("Content-Length", "3")), b"no\n")
    for delivery in Delivery:
        start, body = plan_messages(response, delivery)
        assert start == {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")],
        }
        assert body == {"type": "http.response.body", "body": b"no\n", "more_body": False}


def test_plan_file_body_without_segments_is_empty() -> None:
    response = file_response(304, (), "/srv/a.txt")
    for delivery in Delivery:
        assert plan_messages(response, delivery, path_size=10)[1:] == [
            {"type": "http.response.body", "body": b"", "more_body": False}
        ]


def test_plan_pathsend_only_for_the_whole_file_still_at_its_path() -> None:
    whole = (ByteRange(0, 9),)
    plan = plan_messages(file_response(200, whole, "/srv/a.txt"), Delivery.PATHSEND, path_size=10)
    assert plan[1:] == [{"type": PATHSEND, "path": "/srv/a.txt"}]
    streamed = [
        ReadSegments(whole),
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]
    for response, size in [
        (file_response(200, whole, "/srv/a.txt"), None),  # replaced on disk
        (file_response(200, whole, "/srv/a.txt"), 11),  # size changed
        (file_response(206, whole, "/srv/a.txt"), 20),  # a range
        (file_response(404, whole, "/srv/404.html"), 10),  # only 200s
        (file_response(200, whole, "a.txt"), 10),  # never a relative path
    ]:
        assert plan_messages(response, Delivery.PATHSEND, path_size=size)[1:] == streamed


def test_plan_zerocopy_interleaves_part_headers_and_ranges() -> None:
    segments = (b"--b\r\n\r\n", ByteRange(0, 9), b"\r\n--b\r\n\r\n", ByteRange(100, 104), b"--b--")
    plan = plan_messages(file_response(206, segments, "/srv/a"), Delivery.ZEROCOPY)
    assert plan[1:] == [
        {"type": "http.response.body", "body": b"--b\r\n\r\n", "more_body": True},
        FileRange(0, 10, True),
        {"type": "http.response.body", "body": b"\r\n--b\r\n\r\n", "more_body": True},
        FileRange(100, 5, True),
        {"type": "http.response.body", "body": b"--b--", "more_body": False},
    ]
    whole = plan_messages(file_response(200, (ByteRange(0, 9),), "/srv/a"), Delivery.ZEROCOPY)
    assert whole[1:] == [FileRange(0, 10, False)]


def test_plan_stream_reads_then_ends_the_body() -> None:
    segments = (b"x", ByteRange(0, 9))
    plan = plan_messages(file_response(206, segments, "/srv/a"), Delivery.STREAM)
    assert plan[1:] == [
        ReadSegments(segments),
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]


def test_headers_lower_case_and_location_under_the_mount() -> None:
    fields = (("Content-Type", "text/plain"), ("Location", "/sub/?a=1"), ("X-Y", "a: b"))
    assert lowered_pairs(fields) == [
        (b"content-type", b"text/plain"),
        (b"location", b"/sub/?a=1"),
        (b"x-y", b"a: b"),
    ]

    def under(root_path: str) -> tuple[bytes, bytes]:
        response = under_prefix(Response(308, fields), location_prefix(root_path))
        return lowered_pairs(response.fields)[1]

    assert under("") == (b"location", b"/sub/?a=1")
    assert under("/static") == (b"location", b"/static/sub/?a=1")
    assert under("/static/") == (b"location", b"/static/sub/?a=1")
    assert under("/my files") == (b"location", b"/my%20files/sub/?a=1")


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/a/b", "", "/a/b"),
        ("/static/a", "/static", "/a"),
        ("/static", "/static", ""),
        ("/static/", "/static", "/"),
        ("/staticfoo/a", "/static", "/staticfoo/a"),  # not on a "/" boundary
        ("/a", "/static", "/a"),  # a host that does not prefix path with root_path
    ],
)
def test_route_path_is_starlettes(path: str, root_path: str, expected: str) -> None:
    assert route_path({"path": path, "root_path": root_path}) == expected


def test_request_head_requotes_the_route_path() -> None:
    scope = make_scope(
        "/with space/%zz/ü",
        query=b"a=%20b",
        headers={"Range": "bytes=0-1", "X-Thing": "v"},
    )
    head = request_head(scope, route_path(scope))
    assert head.target == b"/with%20space/%25zz/%C3%BC?a=%20b"
    assert head.method == b"GET" and head.http_version == b"1.1"
    assert head.headers == ((b"range", b"bytes=0-1"), (b"x-thing", b"v"))


# --- in process, per host mode ------------------------------------------------------------


def test_whole_file(app: StaticFiles, site: Path, mode: str) -> None:
    exchange = call(app, "/kib.bin", mode=mode)
    assert exchange.status == 200
    assert bytes(exchange.body) == (site / "kib.bin").read_bytes()
    assert exchange.headers[b"content-length"] == b"1024"
    assert exchange.headers[b"content-type"] == b"application/octet-stream"
    assert b"date" not in exchange.headers and b"server" not in exchange.headers
    last = exchange.messages[-1]
    if mode == "zerocopysend":
        assert exchange.types == ["start", "zerocopysend"]
        assert (last["offset"], last["count"], last["more_body"]) == (0, 1024, False)
    elif mode == "pathsend":
        assert exchange.types == ["start", "pathsend"]
        assert last["path"] == os.path.realpath(site / "kib.bin")
    else:
        assert exchange.types == ["start", "body", "body"]
        assert exchange.messages[1]["more_body"] is True
        assert last == {"type": "http.response.body", "body": b"", "more_body": False}


def test_big_file_streams_in_bounded_chunks(app: StaticFiles, site: Path) -> None:
    exchange = call(app, "/big.bin", mode="none")
    assert bytes(exchange.body) == (site / "big.bin").read_bytes()
    chunks = [m["body"] for m in exchange.messages[1:-1]]
    assert len(chunks) == -(-BIG // CHUNK_SIZE)
    assert all(0 < len(c) <= CHUNK_SIZE for c in chunks)
    assert all(m["more_body"] for m in exchange.messages[1:-1])


def test_empty_file(app: StaticFiles, mode: str) -> None:
    exchange = call(app, "/empty.bin", mode=mode)
    assert exchange.status == 200 and exchange.headers[b"content-length"] == b"0"
    assert exchange.types == ["start", "body"] and exchange.body == b""


def test_single_range(app: StaticFiles, site: Path, mode: str) -> None:
    exchange = call(app, "/kib.bin", mode=mode, headers={"Range": "bytes=100-199"})
    assert exchange.status == 206
    assert exchange.headers[b"content-range"] == b"bytes 100-199/1024"
    assert bytes(exchange.body) == (site / "kib.bin").read_bytes()[100:200]
    if mode == "zerocopysend":
        assert exchange.types == ["start", "zerocopysend"]
        assert (exchange.messages[1]["offset"], exchange.messages[1]["count"]) == (100, 100)
    else:  # pathsend has no offset: ranges stream
        assert exchange.types == ["start", "body", "body"]


def test_multipart_ranges(app: StaticFiles, site: Path, mode: str) -> None:
    exchange = call(app, "/kib.bin", mode=mode, headers={"Range": "bytes=0-9,500-509,-4"})
    assert exchange.status == 206
    content = (site / "kib.bin").read_bytes()
    parts = multipart_parts(exchange.headers[b"content-type"], bytes(exchange.body))
    assert parts == [
        ("application/octet-stream", "bytes 0-9/1024", content[:10]),
        ("application/octet-stream", "bytes 500-509/1024", content[500:510]),
        ("application/octet-stream", "bytes 1020-1023/1024", content[1020:]),
    ]
    assert int(exchange.headers[b"content-length"]) == len(exchange.body)
    if mode == "zerocopysend":
        body_or_file = ["body", "zerocopysend"] * 3 + ["body"]
        assert exchange.types == ["start", *body_or_file]
        files = [m for m in exchange.messages if m["type"] == ZEROCOPYSEND]
        assert [(m["offset"], m["count"]) for m in files] == [(0, 10), (500, 10), (1020, 4)]
        assert [m["more_body"] for m in exchange.messages[1:]] == [True] * 6 + [False]
    else:
        assert PATHSEND not in [m["type"] for m in exchange.messages]
        assert exchange.messages[-1] == {
            "type": "http.response.body",
            "body": b"",
            "more_body": False,
        }


def test_head_has_get_fields_and_no_body(app: StaticFiles, mode: str) -> None:
    for headers in ({}, {"Range": "bytes=0-9"}, {"Accept-Encoding": "gzip"}):
        get = call(app, "/style.css", mode=mode, headers=headers)
        head = call(app, "/style.css", mode=mode, method="HEAD", headers=headers)
        assert head.status == get.status
        assert head.headers == get.headers
        assert head.types == ["start", "body"] and head.body == b""


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Range": "bytes=5000-6000"}, 416),
        ({"If-Match": '"nope"'}, 412),
        ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, 304),
    ],
)
def test_no_file_bytes_for_refusals(
    app: StaticFiles, mode: str, headers: dict[str, str], status: int
) -> None:
    exchange = call(app, "/kib.bin", mode=mode, headers=headers)
    assert exchange.status == status
    assert exchange.types == ["start", "body"]
    if status == 416:
        assert exchange.headers[b"content-range"] == b"bytes */1024"


def test_not_found_page_is_a_file_body_but_never_pathsent(app: StaticFiles, mode: str) -> None:
    exchange = call(app, "/missing.txt", mode=mode)
    assert exchange.status == 404
    assert exchange.body == b"<!doctype html><title>not here</title>\n"
    assert PATHSEND not in [m["type"] for m in exchange.messages]


def test_precompressed_sibling(app: StaticFiles, site: Path, mode: str) -> None:
    exchange = call(app, "/style.css", mode=mode, headers={"Accept-Encoding": "gzip, br;q=0"})
    assert exchange.headers[b"content-encoding"] == b"gzip"
    assert exchange.headers[b"vary"] == b"Accept-Encoding"
    assert exchange.headers[b"content-type"] == b"text/css; charset=utf-8"
    assert bytes(exchange.body) == (site / "style.css.gz").read_bytes()
    if mode == "pathsend":
        assert exchange.messages[1]["path"] == os.path.realpath(site / "style.css.gz")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/../../etc/passwd", 400),  # what a host makes of /..%2f..%2fetc/passwd
        ("/../", 400),  # ... and of /%2e%2e/
        ("/sub/../../x", 400),
        ("/.secret", 404),
        ("/.git/config", 404),
        ("/sub/../.secret", 404),
        ("/a\\b", 400),
        ("/nul\x00", 400),
    ],
)
def test_refusals(app: StaticFiles, mode: str, path: str, status: int) -> None:
    assert call(app, path, mode=mode).status == status
    assert call(app, path, mode=mode, root_path="/static").status == status


def test_methods(app: StaticFiles) -> None:
    post = call(app, "/kib.bin", method="POST")
    assert post.status == 405 and post.headers[b"allow"] == b"GET, HEAD, OPTIONS"
    options = call(app, "/kib.bin", method="OPTIONS")
    assert options.status == 204 and options.headers[b"allow"] == b"GET, HEAD, OPTIONS"


def test_index_and_space(app: StaticFiles, site: Path) -> None:
    assert call(app, "/", root_path="/static").body == (site / "index.html").read_bytes()
    assert call(app, "/with space.txt").body == b"spaced out\n"


@pytest.mark.parametrize("prefixed", [True, False], ids=["path-prefixed", "path-unprefixed"])
def test_root_path_routing_and_location(app: StaticFiles, site: Path, prefixed: bool) -> None:
    def get(path: str, **kw: Any) -> Exchange:
        return call(app, path, root_path="/static", prefixed=prefixed, **kw)

    assert get("/sub/page.txt").body == (site / "sub" / "page.txt").read_bytes()
    redirect = get("/sub", query=b"x=1&y=%20")
    assert redirect.status == 308
    assert redirect.headers[b"location"] == b"/static/sub/?x=1&y=%20"
    assert get("/sub", method="HEAD").body == b""
    nested = call(app, "/noindex", root_path="/a b/static", prefixed=prefixed)
    assert nested.headers[b"location"] == b"/a%20b/static/noindex/"


def test_mount_point_itself_redirects_to_its_slash(app: StaticFiles) -> None:
    exchange = call(app, "/static", root_path="/static", prefixed=False, query=b"q=1")
    assert exchange.status == 308 and exchange.headers[b"location"] == b"/static/?q=1"
    head = call(app, "/static", root_path="/static", prefixed=False, method="HEAD")
    assert head.status == 308 and head.body == b""
    assert call(app, "/static", root_path="/static", prefixed=False, method="POST").status == 405


@pytest.mark.parametrize(
    ("path", "raw_path"),
    [
        ("/%zz", b"/%zz"),  # uvicorn and zerohttp keep a malformed escape as text
        ("/\ufffd.txt", b"/%ff.txt"),  # ... and decode bad UTF-8 with replacement
        ("/bad\udcff.txt", b"/bad%ff.txt"),  # surrogateescape
        ("/bad\udcff.txt", None),  # ... with no raw_path to tell
    ],
)
def test_paths_a_host_decoded_lossily_are_refused_like_the_cli(
    app: StaticFiles, path: str, raw_path: bytes | None
) -> None:
    """The CLI answers 400 (paths.parse_target); the route alone would name another file."""
    drop = raw_path is None
    assert call(app, path, raw_path=raw_path, drop_raw_path=drop).status == 400
    head = call(app, path, raw_path=raw_path, drop_raw_path=drop, method="HEAD")
    assert head.status == 400 and head.body == b""
    post = call(app, path, raw_path=raw_path, drop_raw_path=drop, method="POST")
    assert post.status == 405  # as the CLI: the method is refused before the path is read
    under_mount = call(app, path, root_path="/static", raw_path=b"/static" + (raw_path or b""))
    assert under_mount.status == 400


def test_a_percent_sign_in_a_name_is_served(app: StaticFiles) -> None:
    assert call(app, "/100%.txt", raw_path=b"/100%25.txt").body == b"all of it\n"


# --- descriptors ------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [0, 16])
def test_no_descriptor_leak(site: Path, mode: str, cache: int) -> None:
    app = StaticFiles(site, open_file_cache=cache)
    requests: list[dict[str, Any]] = [
        {},
        {"headers": {"Range": "bytes=0-9"}},
        {"headers": {"Range": "bytes=0-9,500-509"}},
        {"headers": {"Accept-Encoding": "gzip"}},
        {"method": "HEAD"},
        {"headers": {"If-Match": '"x"'}},
    ]
    for kw in requests:  # warm the cache: it keeps descriptors open on purpose
        call(app, "/style.css", mode=mode, **kw)
    before = open_fds()
    for _ in range(3):
        for kw in requests:
            call(app, "/style.css", mode=mode, **kw)
        call(app, "/missing.txt", mode=mode)
    assert open_fds() == before
    if app.handler.cache is not None:
        assert all(e.file.refs == 0 for e in app.handler.cache._entries.values())


async def _broken_pipe(message: Message, count: int) -> None:
    if count >= 2:  # the start goes out, the first body message finds the client gone
        raise ConnectionResetError("client went away")


@pytest.mark.parametrize("cache", [0, 16])
def test_send_raising_releases_the_file(site: Path, mode: str, cache: int) -> None:
    app = StaticFiles(site, open_file_cache=cache)
    call(app, "/big.bin", mode=mode)  # cached, when the cache is on
    before = open_fds()
    for headers in ({}, {"Range": "bytes=0-9,2000000-2000009"}):
        with pytest.raises(ConnectionResetError):
            call(app, "/big.bin", FakeHost(_broken_pipe), mode=mode, headers=headers)
    assert open_fds() == before
    if app.handler.cache is not None:
        assert all(e.file.refs == 0 for e in app.handler.cache._entries.values())


def test_cancelled_mid_stream_releases_the_file(site: Path, mode: str) -> None:
    app = StaticFiles(site, open_file_cache=0)
    before = open_fds()

    async def stall(message: Message, count: int) -> None:
        if count >= 3:
            await asyncio.Event().wait()

    async def main() -> None:
        inside = open_fds()  # the loop has descriptors of its own
        host = FakeHost(stall)
        scope = make_scope("/big.bin", mode=mode, headers={"Range": "bytes=0-9,2000000-2000009"})
        task = asyncio.ensure_future(app(scope, host.receive, host.send))
        while host.sends < 3:
            await asyncio.sleep(0.01)
        assert open_fds() == inside + 1  # the file
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert open_fds() == before


def test_pre_2_4_host_disconnect_stops_the_stream(site: Path) -> None:
    """uvicorn ignores a send after the client left; only ``receive`` tells."""
    app = StaticFiles(site, open_file_cache=0)
    before = open_fds()

    class LeavingHost(FakeHost):
        """The client leaves during the third send, which then never returns."""

        def __init__(self) -> None:
            super().__init__(self.third_send_hangs)
            self.left = asyncio.Event()
            self.told = False

        async def third_send_hangs(self, message: Message, count: int) -> None:
            if count == 3:
                self.left.set()
                await asyncio.Event().wait()

        async def receive(self) -> Message:
            if not self.told:
                self.told = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.left.wait()
            return {"type": "http.disconnect"}

    async def main() -> LeavingHost:
        host = LeavingHost()  # its Event belongs to this loop
        scope = make_scope("/big.bin", spec_version="2.3")
        await asyncio.wait_for(app(scope, host.receive, host.send), 10)  # else: hangs
        return host

    host = asyncio.run(main())  # returns: a disconnect is not an error
    assert host.sends == 3  # not the ~13 chunks of the file
    assert host.exchange.types == ["start", "body"]  # never completed
    assert open_fds() == before


def test_pre_2_4_host_receive_failing_is_an_error(site: Path) -> None:
    app = StaticFiles(site, open_file_cache=0)
    before = open_fds()

    class BrokenHost(FakeHost):
        async def receive(self) -> Message:
            raise RuntimeError("receive broke")

    with pytest.raises(RuntimeError, match="receive broke"):
        call(app, "/big.bin", BrokenHost(), spec_version="2.3")
    assert open_fds() == before


def test_post_2_4_host_is_not_watched(site: Path) -> None:
    """From 2.4 a send after a disconnect raises, so receive is left alone."""
    app = StaticFiles(site)

    class MuteHost(FakeHost):
        async def receive(self) -> Message:
            raise AssertionError("receive called")

    exchange = call(app, "/big.bin", MuteHost(), spec_version="2.4")
    assert len(exchange.body) == BIG


def test_zerocopysend_file_works_with_os_sendfile(site: Path) -> None:
    """The spec asks for a file whose fd ``os.sendfile`` accepts (not a BytesIO)."""
    app = StaticFiles(site)
    left, right = socket.socketpair()
    received = bytearray()

    async def via_sendfile(message: Message, count: int) -> None:
        if message["type"] == ZEROCOPYSEND:
            file = message["file"]
            sent = os.sendfile(left.fileno(), file.fileno(), message["offset"], message["count"])
            assert sent == message["count"]
            received.extend(right.recv(65536))

    with left, right:
        call(app, "/kib.bin", FakeHost(via_sendfile), mode="zerocopysend")
    assert bytes(received) == (site / "kib.bin").read_bytes()


def test_cached_descriptor_is_shared_and_sent_by_offset(site: Path) -> None:
    """Two responses in flight on one cached fd: positions would collide, offsets do not."""
    app = StaticFiles(site, open_file_cache=16)
    call(app, "/kib.bin", mode="zerocopysend")  # cache it
    seen: list[tuple[int, int, int]] = []

    async def note(message: Message, count: int) -> None:
        if message["type"] == ZEROCOPYSEND:
            file = message["file"]
            seen.append((file.fileno(), message["offset"], message["count"]))
            await asyncio.sleep(0.01)  # let the other response run in between

    async def main() -> None:
        hosts = [FakeHost(note), FakeHost(note)]
        scopes = [
            make_scope("/kib.bin", mode="zerocopysend", headers={"Range": "bytes=100-199"}),
            make_scope("/kib.bin", mode="zerocopysend"),
        ]
        await asyncio.gather(
            *(app(s, h.receive, h.send) for s, h in zip(scopes, hosts, strict=True))
        )

    asyncio.run(main())
    assert {fd for fd, _, _ in seen} == {seen[0][0]}  # one descriptor
    assert sorted((offset, count) for _, offset, count in seen) == [(0, 1024), (100, 100)]
    assert os.lseek(seen[0][0], 0, os.SEEK_CUR) == 0  # nobody moved the position


def test_same_file_size_notices_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"12345")
    fd = os.open(path, os.O_RDONLY)
    body = FileBody(fd, str(path), (ByteRange(0, 4),))
    try:
        assert same_file_size(body) == 5
        replacement = tmp_path / "b.txt"
        replacement.write_bytes(b"12345")
        os.replace(replacement, path)
        assert same_file_size(body) is None
        path.unlink()
        assert same_file_size(body) is None
    finally:
        body.close()


# --- constructor, other scope types, framework mounts ---------------------------------------


def test_constructor_forms(site: Path) -> None:
    assert StaticFiles(site).directory == os.path.realpath(site)
    assert StaticFiles(directory=str(site)).directory == os.path.realpath(site)
    app = StaticFiles(
        site,
        html=True,
        index=["home.html", "index.html"],
        autoindex=True,
        spa=True,
        precompressed=["gzip"],
        cache_control="max-age=60",
        immutable_pattern=r"\.bin$",
        mime=["bin=application/x-test"],
        open_file_cache=0,
    )
    assert app.options.index == ("home.html", "index.html")
    assert app.options.precompressed == ("gzip",)
    assert app.handler.cache is None
    listing = call(app, "/noindex/")
    assert listing.status == 200 and b"file.txt" in listing.body
    assert call(app, "/style.css").headers[b"cache-control"] == b"max-age=60"
    immutable = call(app, "/kib.bin").headers
    assert immutable[b"content-type"] == b"application/x-test"
    assert b"immutable" in immutable[b"cache-control"]
    assert call(app, "/users/42").body == (site / "index.html").read_bytes()  # spa


def test_missing_directory_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        StaticFiles(tmp_path / "nope")
    with pytest.raises(ConfigError, match="does not exist"):
        StaticFiles(directory=tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DirectoryNotFound, match="is not a directory"):
        StaticFiles(tmp_path / "file")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"index": "index.html"}, "list or tuple of str"),
        ({"index": ["a/b"]}, "--index"),
        ({"precompressed": ["xz"]}, "--precompressed"),
        ({"precompressed": "gzip"}, "list or tuple"),
        ({"mime": ["md"]}, "--mime"),
        ({"immutable_pattern": "("}, "--immutable-pattern"),
        ({"open_file_cache": -1}, "--open-file-cache"),
        ({"open_file_cache": "8"}, "expected int"),
        ({"open_file_cache": True}, "expected int"),
        ({"autoindex": 1}, "expected bool"),
        ({"cache_control": 5}, "expected str"),
    ],
)
def test_bad_options_fail_at_construction(
    site: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        StaticFiles(site, **options)


def test_unknown_option_is_a_type_error(site: Path) -> None:
    with pytest.raises(TypeError):
        StaticFiles(site, colour=True)  # type: ignore[call-arg]


def test_lifespan_is_answered(app: StaticFiles) -> None:
    host = FakeHost(receive_messages=[{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, host.receive, host.send))
    assert [m["type"] for m in host.exchange.messages] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_websocket_is_closed_and_unknown_scopes_raise(app: StaticFiles) -> None:
    host = FakeHost(receive_messages=[{"type": "websocket.connect"}])
    asyncio.run(app({"type": "websocket", "path": "/"}, host.receive, host.send))
    assert [m["type"] for m in host.exchange.messages] == ["websocket.close"]
    with pytest.raises(ValueError, match="HTTP only"):
        asyncio.run(app({"type": "telepathy"}, host.receive, host.send))


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_fastapi_mount_in_process(site: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    api = FastAPI()
    api.mount("/static", StaticFiles(directory=site, html=True), name="static")
    with TestClient(api) as client:
        ok = client.get("/static/sub/page.txt")
        assert ok.status_code == 200 and ok.content == b"nested page\n"
        moved = client.get("/static/sub", follow_redirects=False)
        assert moved.status_code == 308 and moved.headers["location"] == "/static/sub/"
        part = client.get("/static/kib.bin", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == (site / "kib.bin").read_bytes()[10:20]


# --- differential, over TCP ---------------------------------------------------------------

OLD_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"
# Compared as they are; Location is compared under the mount prefix.
COMPARED = (
    "content-type",
    "content-length",
    "etag",
    "last-modified",
    "content-range",
    "content-encoding",
    "vary",
    "accept-ranges",
    "cache-control",
    "allow",
    "x-content-type-options",
)

# (id, method, path below the mount, headers); {etag} and {date} are kib.bin's validators.
CASES: list[tuple[str, str, str, dict[str, str]]] = [
    ("get", "GET", "/kib.bin", {}),
    ("get-big", "GET", "/big.bin", {}),
    ("get-empty", "GET", "/empty.bin", {}),
    ("get-query", "GET", "/kib.bin?v=1&w=%20", {}),
    ("get-root-index", "GET", "/", {}),
    ("get-sub-index", "GET", "/sub/", {}),
    ("get-space", "GET", "/with%20space.txt", {}),
    ("get-percent", "GET", "/100%25.txt", {}),
    ("head", "HEAD", "/kib.bin", {}),
    ("head-big", "HEAD", "/big.bin", {}),
    ("range-single", "GET", "/kib.bin", {"Range": "bytes=0-99"}),
    ("range-open", "GET", "/kib.bin", {"Range": "bytes=1000-"}),
    ("range-suffix", "GET", "/kib.bin", {"Range": "bytes=-100"}),
    ("range-multi", "GET", "/kib.bin", {"Range": "bytes=0-9,500-509,-10"}),
    ("range-multi-big", "GET", "/big.bin", {"Range": "bytes=0-99,2000000-2400000"}),
    ("range-416", "GET", "/kib.bin", {"Range": "bytes=5000-6000"}),
    ("range-head", "HEAD", "/kib.bin", {"Range": "bytes=0-99"}),
    ("etag-304", "GET", "/kib.bin", {"If-None-Match": "{etag}"}),
    ("date-304", "GET", "/kib.bin", {"If-Modified-Since": "{date}"}),
    ("date-200", "GET", "/kib.bin", {"If-Modified-Since": OLD_DATE}),
    ("if-range-match", "GET", "/kib.bin", {"Range": "bytes=0-99", "If-Range": "{etag}"}),
    ("if-range-stale", "GET", "/kib.bin", {"Range": "bytes=0-99", "If-Range": '"other"'}),
    ("if-range-date", "GET", "/kib.bin", {"Range": "bytes=0-99", "If-Range": "{date}"}),
    ("if-match-412", "GET", "/kib.bin", {"If-Match": '"nope"'}),
    ("gzip", "GET", "/style.css", {"Accept-Encoding": "gzip"}),
    ("gzip-head", "HEAD", "/style.css", {"Accept-Encoding": "gzip"}),
    ("gzip-range", "GET", "/style.css", {"Accept-Encoding": "gzip", "Range": "bytes=0-9"}),
    ("gzip-refused", "GET", "/style.css", {"Accept-Encoding": "gzip;q=0"}),
    ("identity", "GET", "/style.css", {}),
    ("404", "GET", "/missing.txt", {}),
    ("404-head", "HEAD", "/missing.txt", {}),
    ("traversal-encoded-slash", "GET", "/..%2f..%2fetc/passwd", {}),
    ("traversal-dots", "GET", "/%2e%2e/", {}),
    ("traversal-deep", "GET", "/sub/..%2f..%2f..%2fetc/passwd", {}),
    ("traversal-backslash", "GET", "/..%5c..%5cetc/passwd", {}),
    ("bad-escape", "GET", "/%zz", {}),
    ("bad-utf8", "GET", "/%ff.txt", {}),
    ("bad-escape-post", "POST", "/%zz", {}),
    ("nul", "GET", "/kib.bin%00", {}),
    ("dotfile", "GET", "/.secret", {}),
    ("dotdir", "GET", "/.git/config", {}),
    ("dotfile-escaped", "GET", "/%2esecret", {}),
    ("dir-no-slash", "GET", "/sub", {}),
    ("dir-no-slash-query", "GET", "/sub?a=1", {}),
    ("dir-no-index", "GET", "/noindex/", {}),
    ("post", "POST", "/kib.bin", {}),
    ("options", "OPTIONS", "/kib.bin", {}),
]


@dataclass
class Target:
    base_url: str
    prefix: str  # where the files are mounted
    pid: int


@pytest.fixture(scope="module")
def reference(site: Path) -> Iterator[Target]:
    """The plain CLI server over the same directory: the answers to match."""
    with server_process(["-m", "zerohttp", str(site), "--port", "0"]) as server:
        yield Target(server.base_url, "", server.proc.pid)


@pytest.fixture(scope="module")
def validators(reference: Target) -> dict[str, str]:
    reply = fetch(reference.base_url, "GET", "/kib.bin")
    return {"etag": reply.headers["etag"], "date": reply.headers["last-modified"]}


APP = "apps.static_mount:app"
VARIANTS = ["uvicorn", "zerohttp-app", "zerohttp-app-pathsend", "zerohttp-app-mount"]


@pytest.fixture(scope="module", params=VARIANTS)
def candidate(request: pytest.FixtureRequest, site: Path) -> Iterator[Target]:
    """The Starlette app with StaticFiles at /static, under one of the hosts: uvicorn (no
    extensions: bodies stream), zerohttp's (zerocopysend; pathsend when zerocopysend is
    hidden), and zerohttp's with its own ``--mount`` in front of the app."""
    env = {"ZEROHTTP_TEST_STATIC": str(site)}
    tests = REPO / "tests"
    if request.param == "uvicorn":
        port = free_port()
        args = ["-m", "uvicorn", APP, "--app-dir", str(tests), "--host", "127.0.0.1"]
        args += ["--port", str(port), "--log-level", "warning"]
        with server_process(args, port=port, env=env) as server:
            yield Target(server.base_url, "/static", server.proc.pid)
        return
    app = APP.replace(":app", ":pathsend_app") if request.param.endswith("pathsend") else APP
    args = ["-m", "zerohttp", "--app", app, "--port", "0"]
    if request.param == "zerohttp-app-mount":
        args += ["--mount", f"/static={site}"]
    with server_process(args, cwd=tests, env=env) as server:
        yield Target(server.base_url, "/static", server.proc.pid)


def comparable(reply: Reply, prefix: str) -> dict[str, Any]:
    """Status, the compared fields and the body; multipart bodies as parsed parts (their
    boundaries are random) and Location without the mount prefix."""
    fields = {name: reply.headers.get(name) for name in COMPARED}
    body: Any = reply.body
    content_type = fields["content-type"] or ""
    if content_type.startswith("multipart/byteranges"):
        body = multipart_parts(content_type, reply.body)
        fields["content-type"] = "multipart/byteranges; boundary=*"
    location = reply.headers.get("location")
    if location is not None:
        assert location.startswith(prefix + "/"), location
        location = location[len(prefix) :]
    return {"status": reply.status, **fields, "location": location, "body": body}


@pytest.mark.parametrize(
    ("method", "path", "headers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_same_answer_as_the_cli_server(
    reference: Target,
    candidate: Target,
    validators: dict[str, str],
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    sent = {name: value.format(**validators) for name, value in headers.items()}
    expected = fetch(reference.base_url, method, path, sent)
    got = fetch(candidate.base_url, method, candidate.prefix + path, sent)
    assert comparable(got, candidate.prefix) == comparable(expected, "")


def test_client_leaving_mid_body_releases_the_file(candidate: Target) -> None:
    """The server process is back to its descriptors once a client leaves a huge download.

    huge.bin is dated in the future, so the open-file cache never keeps it: a descriptor left
    open by a response shows. The count is taken on a connection idle after a HEAD; after
    the reset only that connection's socket may be gone, never more or fewer.
    """
    target = candidate.prefix + "/huge.bin"
    request = f"{{}} {target} HTTP/1.1\r\nHost: x\r\n\r\n"

    def server_fds() -> int:
        return open_fds(candidate.pid)

    def settled(expected: int | None = None) -> int:
        """The count once it stops moving (connections of earlier tests finish closing)."""
        deadline = time.monotonic() + 15
        last = server_fds()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = server_fds()
            if now == last and expected in (None, now):
                break
            last = now
        return last

    host, port = candidate.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(request.format("HEAD").encode())
        assert RawClient(client).read_response(head=True).status == 200
        baseline = settled()
        client.sendall(request.format("GET").encode())
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert settled(baseline - 1) == baseline - 1


def test_json_route_next_to_the_mount(candidate: Target) -> None:
    reply = fetch(candidate.base_url, "GET", "/health")
    assert reply.status == 200 and reply.body == b'{"ok":true}'
