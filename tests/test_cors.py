"""CORS around the static handler: ``--cors-allow-origin``, ``--cors-allow-headers``,
``--cors-max-age``.

Units for the pure parts (origins, the fields added, the cached head kept), then real
sockets: every kind of answer of the static handler (200, 206, 304, 404) to an allowed
origin, preflights, another origin, no origin, ``Vary`` merged with ``Accept-Encoding``,
``*``, and a ``--mount`` beside an application.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server
from helpers import RawClient, RawResponse, request_bytes

from zerohttp import Config
from zerohttp.access.cors import (
    ANY_ORIGIN,
    CORSHandler,
    CORSPolicy,
    allowance,
    cors_stack,
    parse_origin,
    request_header_names,
)
from zerohttp.errors import ConfigError
from zerohttp.message.response import RequestHead, Response, rendered
from zerohttp.stack import static_stack
from zerohttp.static.handler import StaticHandler
from zerohttp.static.rules.site import SiteRules

ORIGIN = "http://app.example:8080"
OTHER = "http://evil.example"

# --- units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("*", "*"),
        ("https://example.com", "https://example.com"),
        ("HTTPS://Example.COM", "https://example.com"),  # as browsers serialise it
        ("https://example.com:443", "https://example.com"),  # the default port is left out
        ("http://example.com:80", "http://example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("chrome-extension://abcdef", "chrome-extension://abcdef"),
    ],
)
def test_origins(text: str, origin: str) -> None:
    assert parse_origin(text) == origin


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://example.com/", "no path"),
        ("https://example.com/app", "no path"),
        ("https://example.com?x", "no path"),
        ("example.com", "scheme://host"),
        ("https://", "scheme://host"),
        ("https://user@example.com", "scheme://host"),
        ("https://example.com:99999", "port"),
        ("null", "null origin"),
        ("https://exämple.com", "ASCII"),
    ],
)
def test_bad_origins(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_origin(text)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cors_allow_origin": ("https://a.example/",)}, "--cors-allow-origin 'https://a.exa"),
        ({"cors_allow_origin": ("*", "https://a.example")}, r"--cors-allow-origin \*"),
        ({"cors_allow_headers": ("X-Ok", "Bad Name")}, "--cors-allow-headers 'Bad Name'"),
        ({"cors_max_age": -1}, "--cors-max-age -1"),
    ],
)
def test_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**settings)


def test_settings_that_work() -> None:
    Config(cors_allow_origin=("*",), cors_allow_headers=("X-Requested-With",), cors_max_age=0)
    Config(cors_allow_origin=("https://a.example", "http://localhost:3000"))


def test_request_header_names_echo_only_tokens() -> None:
    assert request_header_names(b"x-one, Content-Type") == "x-one, Content-Type"
    assert request_header_names(b"x-one, bad name, ,x-two") == "x-one, x-two"
    assert request_header_names(b" , ") is None


def test_vary_is_merged_and_the_cached_head_extended() -> None:
    fields = (("Content-Length", "3"), ("ETag", '"x"'))
    response = Response(200, fields, b"abc", rendered=rendered(fields))
    allowed, change = allowance((("Access-Control-Allow-Origin", ORIGIN),))
    out = change.apply(response)
    again_cached = rendered(fields)
    assert out.fields == (*fields, *allowed, ("Vary", "Origin"))
    assert out.rendered is not None and out.rendered.fields is out.fields
    assert out.field_lines() == rendered(out.fields).data  # the extended bytes are right

    # the next response from the same cached head gets the same rendering, made once
    again = change.apply(Response(200, fields, b"abc", rendered=rendered(fields)))
    repeat = change.apply(Response(200, fields, b"abc", rendered=again_cached))
    assert repeat.rendered is not None and repeat.field_lines() == out.field_lines()
    assert change.apply(Response(200, fields, rendered=again_cached)).rendered is repeat.rendered
    assert again.field_lines() == out.field_lines()
    # another origin's fields, from the same cached head: its own rendering
    second, second_change = allowance((("Access-Control-Allow-Origin", "https://second.example"),))
    other = second_change.apply(Response(200, fields, rendered=again_cached))
    assert other.fields == (*fields, *second, ("Vary", "Origin"))
    assert other.field_lines() == rendered(other.fields).data

    merged = change.apply(Response(200, (("Vary", "Accept-Encoding"),)))
    assert merged.fields == (("Vary", "Accept-Encoding, Origin"), *allowed)
    already = change.apply(Response(200, (("Vary", "origin"),)))
    assert already.fields == (("Vary", "origin"), *allowed)
    star = change.apply(Response(200, (("Vary", "*"),)))
    assert star.fields == (("Vary", "*"), *allowed)
    anyone = allowance(ANY_ORIGIN)[1].apply(Response(200, fields, rendered=rendered(fields)))
    assert anyone.fields == (*fields, ("Access-Control-Allow-Origin", "*"))  # no Vary for *
    assert anyone.field_lines() == rendered(anyone.fields).data

    # a _headers rule set Allow-Origin already: left as the rule made it
    ruled = (("Access-Control-Allow-Origin", "https://rule.example"),)
    assert change.apply(Response(200, ruled)).fields == ruled


class Fixed:
    """An inner handler that answers one response and counts its calls."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.calls = 0

    def handle(self, request: RequestHead) -> Response:
        self.calls += 1
        return self.response


def head(method: bytes = b"GET", *headers: tuple[bytes, bytes]) -> RequestHead:
    return RequestHead(method, b"/x", b"1.1", ((b"host", b"a"), *headers))


def test_the_handler() -> None:
    fields = (("Content-Length", "3"),)
    cached = rendered(fields)
    inner = Fixed(Response(200, fields, b"abc", rendered=cached))
    handler = CORSHandler(inner, CORSPolicy([ORIGIN], (), 600))
    # no Origin: the inner response as it is, cached head and all
    plain = handler.handle(head())
    assert plain.fields is fields and plain.rendered is cached
    # another origin: untouched too
    other = handler.handle(head(b"GET", (b"origin", OTHER.encode())))
    assert other.fields is fields
    # a preflight from another origin goes to the handler (which knows no CORS)
    request = head(
        b"OPTIONS", (b"origin", OTHER.encode()), (b"access-control-request-method", b"GET")
    )
    calls = inner.calls
    handler.handle(request)
    assert inner.calls == calls + 1
    # an allowed preflight is answered here
    request = head(
        b"OPTIONS", (b"origin", ORIGIN.encode()), (b"access-control-request-method", b"GET")
    )
    preflight = handler.handle(request)
    assert inner.calls == calls + 1
    assert preflight.status == 204
    assert preflight.field("Access-Control-Allow-Origin") == ORIGIN
    assert preflight.field("Access-Control-Max-Age") == "600"
    assert preflight.field("Access-Control-Allow-Headers") is None  # none asked
    assert preflight.field("Vary") == "Origin"


def test_no_wrapper_without_origins(tmp_path: Path) -> None:
    bare = Config(root=str(tmp_path), site_rules=False)
    static = StaticHandler(bare)
    assert static_stack(bare, static) is static
    assert cors_stack(static, bare) is static
    wrapped = static_stack(bare.replace(cors_allow_origin=(ORIGIN,)), static)
    assert isinstance(wrapped, CORSHandler) and wrapped.inner is static
    # with the site's rules: CORS stands outside them
    ruled = static_stack(Config(root=str(tmp_path), cors_allow_origin=(ORIGIN,)), static)
    assert isinstance(ruled, CORSHandler) and isinstance(ruled.inner, SiteRules)


# --- end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cors_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cors") / "root"
    root.mkdir()
    (root / "data.json").write_text('{"hello": "world"}\n' * 20)
    text = "body { color: red }\n" * 200
    (root / "style.css").write_text(text)
    (root / "style.css.gz").write_bytes(gzip.compress(text.encode()))
    return root


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def cors_server(request: pytest.FixtureRequest, cors_site: Path) -> Iterator[RunningServer]:
    with start_server(
        cors_site,
        request.param,
        cors_allow_origin=(ORIGIN, "https://second.example"),
        cors_max_age=600,
    ) as server:
        yield server


def ask(server: RunningServer, method: str, target: str, *headers: str) -> RawResponse:
    with RawClient(server) as client:
        client.send(request_bytes(method, target, headers=headers))
        return client.read_response(head=method == "HEAD")


def assert_allowed(response: RawResponse, origin: str = ORIGIN) -> None:
    assert response.header("access-control-allow-origin") == origin
    assert response.header("vary") is not None
    assert "Origin" in [v.strip() for v in response.header("vary").split(",")]  # type: ignore[union-attr]


def assert_no_cors(response: RawResponse) -> None:
    assert not any(name.startswith("access-control-") for name in response.names)
    assert "Origin" not in (response.header("vary") or "")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_allowed_origin_gets_cors_on_every_answer(
    cors_server: RunningServer, method: str
) -> None:
    origin = f"Origin: {ORIGIN}"
    ok = ask(cors_server, method, "/data.json", origin)
    assert ok.status == 200
    assert_allowed(ok)
    etag = ok.header("etag")
    assert etag is not None
    # the same again: now from the open-file cache's pre-rendered head
    again = ask(cors_server, method, "/data.json", origin)
    assert again.names == ok.names
    assert_allowed(again)
    not_modified = ask(cors_server, method, "/data.json", origin, f"If-None-Match: {etag}")
    assert not_modified.status == 304
    assert_allowed(not_modified)
    partial = ask(cors_server, method, "/data.json", origin, "Range: bytes=0-9")
    assert partial.status == 206
    assert_allowed(partial)
    assert method == "HEAD" or partial.body == b'{"hello": '
    missing = ask(cors_server, method, "/missing.json", origin)
    assert missing.status == 404
    assert_allowed(missing)
    second = ask(cors_server, method, "/data.json", "Origin: https://second.example")
    assert_allowed(second, "https://second.example")


def test_other_origins_and_none_get_no_cors(cors_server: RunningServer) -> None:
    for headers in ((f"Origin: {OTHER}",), (), ("Origin: null",), (f"Origin: {ORIGIN}/",)):
        response = ask(cors_server, "GET", "/data.json", *headers)
        assert response.status == 200
        assert_no_cors(response)
    # nor does a preflight from another origin: the handler's own OPTIONS answer
    preflight = ask(
        cors_server,
        "OPTIONS",
        "/data.json",
        f"Origin: {OTHER}",
        "Access-Control-Request-Method: GET",
    )
    assert preflight.status == 204
    assert_no_cors(preflight)


def test_preflight(cors_server: RunningServer) -> None:
    response = ask(
        cors_server,
        "OPTIONS",
        "/data.json",
        f"Origin: {ORIGIN}",
        "Access-Control-Request-Method: GET",
        "Access-Control-Request-Headers: x-requested-with, content-type",
    )
    assert response.status == 204
    assert response.header("access-control-allow-origin") == ORIGIN
    assert response.header("access-control-allow-methods") == "GET, HEAD, OPTIONS"
    assert response.header("access-control-allow-headers") == "x-requested-with, content-type"
    assert response.header("access-control-max-age") == "600"
    assert response.header("vary") == "Origin"
    assert response.body == b"" and response.header("content-length") is None
    # an OPTIONS without Access-Control-Request-Method is no preflight: the handler's 204
    plain = ask(cors_server, "OPTIONS", "/data.json", f"Origin: {ORIGIN}")
    assert plain.status == 204 and plain.header("allow") == "GET, HEAD, OPTIONS"
    assert plain.header("access-control-allow-methods") is None
    assert_allowed(plain)


def test_vary_is_merged_with_accept_encoding(cors_server: RunningServer) -> None:
    for _ in range(2):  # the second from the open-file cache
        response = ask(
            cors_server, "GET", "/style.css", f"Origin: {ORIGIN}", "Accept-Encoding: gzip"
        )
        assert response.status == 200 and response.header("content-encoding") == "gzip"
        assert response.header("vary") == "Accept-Encoding, Origin"  # one field
        assert response.header("access-control-allow-origin") == ORIGIN
    plain = ask(cors_server, "GET", "/style.css", "Accept-Encoding: gzip")
    assert plain.header("vary") == "Accept-Encoding"


def test_any_origin_and_configured_headers(cors_site: Path) -> None:
    with start_server(
        cors_site, cors_allow_origin=("*",), cors_allow_headers=("X-One", "X-Two")
    ) as server:
        response = ask(server, "GET", "/data.json", f"Origin: {OTHER}")
        assert response.header("access-control-allow-origin") == "*"
        assert response.header("vary") is None  # * is the same for everyone
        preflight = ask(
            server,
            "OPTIONS",
            "/data.json",
            f"Origin: {OTHER}",
            "Access-Control-Request-Method: GET",
            "Access-Control-Request-Headers: x-other",
        )
        assert preflight.status == 204
        assert preflight.header("access-control-allow-origin") == "*"
        assert preflight.header("access-control-allow-headers") == "X-One, X-Two"
        assert preflight.header("access-control-max-age") == "7200"
        assert preflight.header("vary") is None


async def plain_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"3")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"app"})


def test_a_mount_gets_cors_and_the_app_brings_its_own(cors_site: Path, tmp_path: Path) -> None:
    with start_server(
        tmp_path,
        app=plain_app,
        lifespan="off",
        mount=(f"/static={cors_site}",),
        cors_allow_origin=(ORIGIN,),
    ) as server:
        mounted = ask(server, "GET", "/static/data.json", f"Origin: {ORIGIN}")
        assert mounted.status == 200
        assert_allowed(mounted)
        app = ask(server, "GET", "/api", f"Origin: {ORIGIN}")
        assert app.status == 200 and app.body == b"app"
        assert_no_cors(app)


def test_cors_stands_outside_the_site_rules(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text("{}\n")
    (tmp_path / "_headers").write_text("/*\n  X-Rule: yes\n  Vary: Cookie\n")
    with start_server(tmp_path, cors_allow_origin=(ORIGIN,)) as server:
        for target, status in (("/data.json", 200), ("/missing", 404)):
            response = ask(server, "GET", target, f"Origin: {ORIGIN}")
            assert response.status == status
            assert response.header("x-rule") == "yes"
            assert response.header("access-control-allow-origin") == ORIGIN
            assert response.header("vary") == "Cookie, Origin"
