"""The ASGI host's own rules: response framing and head rendering (sans-IO), targets and
mounts, app loading, the Config fields, and the Python API serving an app object over TCP.

The conformance battery against uvicorn is ``test_asgi_conformance.py``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import start_server
from serverprocs import zerohttp

from zerohttp import Config
from zerohttp.asgi.host import ASGIHost, Mount, split_target
from zerohttp.asgi.loader import ASGI2Adapter, import_from_string, is_asgi3, load_app
from zerohttp.asgi.websocket import WebSocketSession
from zerohttp.errors import ConfigError
from zerohttp.http.http11 import (
    LAST_CHUNK,
    InvalidResponse,
    app_response_framing,
    chunk,
    render_app_head,
)
from zerohttp.message.response import RequestHead, Response
from zerohttp.static.handler import StaticHandler
from zerohttp.websocket.driver import WebSocketSettings
from zerohttp.websocket.handshake import is_upgrade

REPO = Path(__file__).resolve().parent.parent
DATE = b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"


# --- framing and head (sans-IO) ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "version", "status", "headers", "keep", "expected"),
    [
        (b"GET", b"1.1", 200, [(b"content-length", b"5")], True, (5, False, False, True)),
        (b"GET", b"1.1", 200, [], True, (None, True, False, True)),
        (b"GET", b"1.0", 200, [], True, (None, False, False, False)),
        (b"GET", b"1.0", 200, [(b"content-length", b"0")], True, (0, False, False, True)),
        (b"HEAD", b"1.1", 200, [], True, (None, True, True, True)),
        (b"HEAD", b"1.1", 200, [(b"content-length", b"9")], True, (9, False, True, True)),
        (b"GET", b"1.1", 204, [], True, (None, False, True, True)),
        (b"GET", b"1.1", 304, [], True, (None, False, True, True)),
        (b"GET", b"1.0", 304, [], True, (None, False, True, True)),
        (b"GET", b"1.1", 200, [(b"connection", b"Close")], True, (None, True, False, False)),
        (b"GET", b"1.1", 200, [(b"content-length", b"1")], False, (1, False, False, False)),
    ],
)
def test_framing(
    method: bytes,
    version: bytes,
    status: int,
    headers: list[tuple[bytes, bytes]],
    keep: bool,
    expected: tuple[int | None, bool, bool, bool],
) -> None:
    framing = app_response_framing(method, version, status, headers, keep_alive=keep)
    assert (framing.length, framing.chunked, framing.bodiless, framing.keep_alive) == expected


def test_framing_refuses_a_bad_content_length() -> None:
    with pytest.raises(InvalidResponse):
        app_response_framing(b"GET", b"1.1", 200, [(b"content-length", b"-1")], keep_alive=True)


def test_head_keeps_app_fields_in_order_and_owns_the_framing_fields() -> None:
    headers = [
        (b"x-b", b"2"),
        (b"transfer-encoding", b"gzip"),
        (b"connection", b"keep-alive"),
        (b"x-a", b"1"),
        (b"x-a", b"again"),
    ]
    framing = app_response_framing(b"GET", b"1.1", 200, headers, keep_alive=True)
    head = render_app_head(200, headers, DATE, framing, http10=False)
    assert head == (
        b"HTTP/1.1 200 OK\r\n" + DATE + b"Server: zerohttp\r\n"
        b"x-b: 2\r\nx-a: 1\r\nx-a: again\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


def test_head_does_not_duplicate_the_apps_date_or_server() -> None:
    headers = [(b"date", b"Fri, 02 Jan 2026 00:00:00 GMT"), (b"server", b"mine")]
    framing = app_response_framing(b"GET", b"1.0", 200, headers, keep_alive=True)
    head = render_app_head(200, headers, DATE, framing, http10=True)
    assert DATE not in head and b"zerohttp" not in head
    assert head.endswith(b"server: mine\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-evil", b"a\r\nSet-Cookie: b")],
        [(b"x-evil", b"a\nb")],
        [(b"x-nul", b"a\x00")],
        [(b"bad name", b"v")],
        [(b"", b"v")],
        [(b"x:y", b"v")],
    ],
)
def test_head_refuses_fields_that_could_split_it(headers: list[tuple[bytes, bytes]]) -> None:
    framing = app_response_framing(b"GET", b"1.1", 200, headers, keep_alive=True)
    with pytest.raises(InvalidResponse):
        render_app_head(200, headers, DATE, framing, http10=False)


@pytest.mark.parametrize("status", [0, 99, 1000, -200])
def test_head_refuses_impossible_status(status: int) -> None:
    framing = app_response_framing(b"GET", b"1.1", 200, [], keep_alive=True)
    with pytest.raises(InvalidResponse):
        render_app_head(status, [], DATE, framing, http10=False)


def test_chunks() -> None:
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert chunk(b"") == b""  # an empty chunk would end the body early
    assert LAST_CHUNK == b"0\r\n\r\n"


# --- targets, mounts, upgrade --------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/a/b?x=1&y=%20", (b"/a/b", b"x=1&y=%20")),
        (b"/a%2Fb", (b"/a%2Fb", b"")),
        (b"/?", (b"/", b"")),
        (b"http://example.com/p?q", (b"/p", b"q")),
        (b"HTTPS://example.com", (b"/", b"")),
        (b"http://example.com?q=1", (b"/", b"q=1")),
        (b"*", (b"*", b"")),
    ],
)
def test_split_target(target: bytes, expected: tuple[bytes, bytes]) -> None:
    assert split_target(target) == expected


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("a\n")
    yield Mount(b"/static", StaticHandler(Config(root=str(tmp_path), open_file_cache=0)))


@pytest.mark.parametrize(
    ("target", "matches"),
    [
        (b"/static", True),
        (b"/static/", True),
        (b"/static/a.txt", True),
        (b"/static?x", True),
        (b"/staticx", False),
        (b"/stat", False),
        (b"/", False),
    ],
)
def test_mount_matches_on_a_segment_boundary(mount: Mount, target: bytes, matches: bool) -> None:
    assert mount.matches(target) is matches


def get(handler: Any, target: bytes) -> Response:
    response = handler.handle(RequestHead(b"GET", target, b"1.1", ((b"host", b"x"),)))
    assert isinstance(response, Response)
    response.release()
    return response


def test_mount_serves_below_its_prefix_and_redirects_with_it(mount: Mount) -> None:
    assert get(mount, b"/static/a.txt").status == 200
    assert get(mount, b"/static/missing").status == 404
    redirect = get(mount, b"/static/sub?q=1")
    assert redirect.status == 308
    assert b"Location: /static/sub/?q=1\r\n" in redirect.field_lines()
    bare = get(mount, b"/static?q")
    assert bare.status == 308 and b"Location: /static/?q\r\n" in bare.field_lines()
    assert get(mount, b"/static/../../etc/passwd").status in (400, 404)


HANDSHAKE = (
    (b"upgrade", b"WebSocket"),
    (b"connection", b"keep-alive, Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
)


def test_host_routes_mounts_and_websockets_and_defers_the_rest(mount: Mount) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called by handle()")

    host = ASGIHost(app, mounts=[mount], websocket=WebSocketSettings())
    assert get(host, b"/static/a.txt").status == 200
    assert host.handle(RequestHead(b"GET", b"/api", b"1.1", ())) is host
    upgrade = RequestHead(b"GET", b"/ws", b"1.1", HANDSHAKE)
    assert isinstance(host.handle(upgrade), WebSocketSession)
    broken = RequestHead(b"GET", b"/ws", b"1.1", HANDSHAKE[:3])  # no version
    refused = host.handle(broken)
    assert isinstance(refused, Response) and refused.status == 426
    assert is_upgrade(((b"upgrade", b"h2c"),)) is False


def test_websocket_off_is_a_501_that_says_why() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called by handle()")

    refused = ASGIHost(app, websocket=None).handle(RequestHead(b"GET", b"/ws", b"1.1", HANDSHAKE))
    assert isinstance(refused, Response) and refused.status == 501
    assert refused.body == b"WebSocket is off on this server (--ws none)\n"


# --- loading -------------------------------------------------------------------------


async def asgi3_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"three"})


class ASGI2App:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"two"})


def make_app() -> Any:
    return asgi3_app


def test_import_from_string() -> None:
    assert import_from_string("test_asgi_host:asgi3_app") is asgi3_app
    assert import_from_string("os.path:join.__name__") == "join"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "expected MODULE:ATTRIBUTE"),
        (":app", "expected MODULE:ATTRIBUTE"),
        ("mod:", "expected MODULE:ATTRIBUTE"),
        ("no_such_module_zh:app", "no module named 'no_such_module_zh'"),
        ("test_asgi_host:missing", "has no 'missing'"),
    ],
)
def test_import_errors_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        import_from_string(spec)


def test_interface_detection_and_factory() -> None:
    assert is_asgi3(asgi3_app)
    assert not is_asgi3(ASGI2App)
    assert isinstance(load_app(ASGI2App), ASGI2Adapter)
    assert load_app("test_asgi_host:make_app", factory=True) is asgi3_app
    with pytest.raises(ConfigError, match="--factory"):
        load_app(asgi3_app, factory=True)
    with pytest.raises(ConfigError, match="not callable"):
        load_app("test_asgi_host:DATE")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mount": ("/s=/tmp",)}, "--mount needs --app"),
        ({"app": "m:a", "mount": ("static=/tmp",)}, "expected /PREFIX=DIR"),
        ({"app": "m:a", "mount": ("/static",)}, "expected /PREFIX=DIR"),
        ({"app": "m:a", "root_path": "api"}, "must start with /"),
        ({"app": "m:a", "lifespan": "maybe"}, "--lifespan"),
    ],
)
def test_config_refuses(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**fields)


def test_config_mounts() -> None:
    config = Config(app="m:a", mount=("/static/=public", "/a/b=/srv/x=y"))
    assert config.mounts == [("/static", "public"), ("/a/b", "/srv/x=y")]


# --- the Python API: an app object served over TCP ------------------------------------


def lifespan_app() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["started"] = "yes"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps({"state": scope["state"], "path": scope["path"]}).encode()
        scope["state"]["leak"] = "must not reach the next request"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_server_hosts_an_app_object(tmp_path: Path, loop: str) -> None:
    with start_server(tmp_path, loop, app=lifespan_app(), root_path="/api") as server:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
        for _ in range(2):  # the second request sees a fresh copy of the state
            connection.request("GET", "/x%20y")
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == {
                "state": {"started": "yes"},
                "path": "/api/x y",
            }
        connection.close()


def gathering_app(count: int) -> Any:
    """Answers once ``count`` requests are in at the same time (so their responders run
    side by side and their last writes are batched: ``ExchangeSide.finish_soon``)."""
    waiting: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/together":
            event = asyncio.Event()
            waiting.append(event)
            if len(waiting) == count:
                for each in waiting:
                    each.set()
                waiting.clear()
            await event.wait()
        body = scope["path"].encode() * 100
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_responses_finished_in_one_loop_pass_go_out_whole_and_in_order(
    tmp_path: Path, loop: str
) -> None:
    count = 6
    with start_server(tmp_path, loop, app=gathering_app(count)) as server:

        def client(i: int) -> list[bytes]:
            connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
            got = []
            for path in ("/together", f"/after{i}"):  # keep-alive: the next one follows
                headers = {"Connection": "close"} if i == 0 and path != "/together" else {}
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                assert response.status == 200
                got.append(response.read())
            connection.close()
            return got

        with ThreadPoolExecutor(count) as pool:
            results = list(pool.map(client, range(count)))
    for i, got in enumerate(results):
        assert got == [b"/together" * 100, f"/after{i}".encode() * 100]


# --- the example ---------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_asgi_host_example_serves_pathsend_and_mount(workers: str) -> None:
    args = ["--app", "examples.asgi_host:app", "--mount", "/static=examples/site"]
    with zerohttp([*args, "--port", "0", "--workers", workers], cwd=REPO) as server:
        assert "serving ASGI app examples.asgi_host:app" in server.banner, server.banner
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/report")
        report = connection.getresponse()
        assert report.status == 200
        assert report.read() == (REPO / "examples/site/index.html").read_bytes()
        connection.request("GET", "/static/css/style.css")
        css = connection.getresponse()
        assert css.status == 200
        assert css.read() == (REPO / "examples/site/css/style.css").read_bytes()
        for _ in range(4):  # new connections: with 2 workers, both are likely to answer
            connection.close()
            connection.request("GET", "/hello")
            assert json.loads(connection.getresponse().read()) == {"hello": "world"}
        connection.close()
        assert server.stop() == 0
