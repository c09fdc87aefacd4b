"""Site rules over real sockets: ``_headers`` on every kind of response (a cached file, a
304, the 404 page, the SPA fallback, a listing, an error), ``_redirects`` (query carried
over, rewrites that stay inside ROOT), the rules files never served, reload on edit (and
a malformed edit keeping the last good rules), a malformed file at start as one CLI line,
``--no-site-rules``, ``--header``, and the health path untouched by all of it."""

from __future__ import annotations

import http.client
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server
from test_cli import assert_one_line_error

HEADERS = """\
# every response of the site
/*
  X-Site: all
  Content-Security-Policy: default-src 'self'

/*.jpg
  ! Content-Security-Policy

/nocache/*
  Cache-Control: no-store

/page.html
  X-Site: page

/movies/:title
  X-Movie: :title
"""

REDIRECTS = """\
/old /page.html
/temp/* /files/:splat 307
/p/* /files/:splat 200
/docs /files/doc.txt 200
/away https://example.com/landing?src=zh 302
/* /should-never-win-over-health 302
"""

HSTS = "Strict-Transport-Security: max-age=60"


def make_root(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<p>home</p>\n")
    (root / "page.html").write_text("<p>page</p>\n")
    (root / "404.html").write_text("<p>custom missing page</p>\n")
    (root / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "files").mkdir()
    (root / "files" / "doc.txt").write_text("the document\n")
    (root / "nocache").mkdir()
    (root / "nocache" / "x.txt").write_text("fresh\n")
    (root / "listing").mkdir()
    (root / "listing" / "one.txt").write_text("1\n")
    (root / ".env").write_text("SECRET=hunter2\n")
    return root


Answer = tuple[int, dict[str, str], bytes]


def request(
    server: RunningServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Answer:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        fields: dict[str, str] = {}
        for name, value in response.getheaders():
            fields[name.lower()] = (
                f"{fields[name.lower()]}, {value}" if name.lower() in fields else value
            )
        return response.status, fields, body
    finally:
        conn.close()


def raw(server: RunningServer, target: bytes) -> bytes:
    """A request written byte for byte (http.client would normalise the target)."""
    import socket

    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_root(tmp_path_factory.mktemp("rules") / "root")
    (root / "_headers").write_text(HEADERS)
    (root / "_redirects").write_text(
        REDIRECTS.replace("/* /should-never-win-over-health 302\n", "")
    )
    return root


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def server(request: pytest.FixtureRequest, site: Path) -> Iterator[RunningServer]:
    with start_server(
        site, request.param, cache_control="max-age=60", autoindex=True, header=(HSTS,)
    ) as running:
        yield running


# --- _headers on every kind of response ------------------------------------------------


def test_a_file_gets_its_blocks_and_keeps_them_when_cached(server: RunningServer) -> None:
    for _ in range(3):  # the first request fills the open-file cache; the others hit it
        status, fields, body = request(server, "/page.html")
        assert (status, body) == (200, b"<p>page</p>\n")
        assert fields["x-site"] == "all, page"
        assert fields["content-security-policy"] == "default-src 'self'"
        assert fields["strict-transport-security"] == "max-age=60"
        assert fields["cache-control"] == "max-age=60"
        assert fields["content-length"] == "12"


def test_a_304_gets_the_fields(server: RunningServer) -> None:
    _, first, _ = request(server, "/page.html")
    status, fields, body = request(server, "/page.html", {"If-None-Match": first["etag"]})
    assert (status, body) == (304, b"")
    assert fields["x-site"] == "all, page"
    assert fields["strict-transport-security"] == "max-age=60"


def test_the_404_page_and_an_error_get_the_fields(server: RunningServer) -> None:
    status, fields, body = request(server, "/missing.html")
    assert (status, body) == (404, b"<p>custom missing page</p>\n")
    assert fields["x-site"] == "all" and "strict-transport-security" in fields
    status, fields, _ = request(server, "/page.html", method="DELETE")
    assert status == 405 and fields["x-site"] == "all, page"


def test_a_listing_gets_the_fields(server: RunningServer) -> None:
    status, fields, body = request(server, "/listing/")
    assert status == 200 and b"one.txt" in body
    assert fields["x-site"] == "all"


def test_detach_removes_and_a_rules_cache_control_replaces(server: RunningServer) -> None:
    _, fields, _ = request(server, "/a.jpg")
    assert "content-security-policy" not in fields and fields["x-site"] == "all"
    _, fields, _ = request(server, "/nocache/x.txt")
    assert fields["cache-control"] == "no-store"


def test_placeholders_fill_header_values_encoded(server: RunningServer) -> None:
    _, fields, _ = request(server, "/movies/Star%20Wars%0d")
    assert "x-movie" not in fields  # a control character: 400 before any rule
    status, fields, _ = request(server, "/movies/Star%20Wars")
    assert status == 404 and fields["x-movie"] == "Star%20Wars"


def test_spa_fallback_gets_the_fields(site: Path) -> None:
    with start_server(site, spa=True) as running:
        status, fields, body = request(running, "/app/route")
        assert (status, body) == (200, b"<p>home</p>\n")
        assert fields["x-site"] == "all"


# --- _redirects ------------------------------------------------------------------------


def test_redirect_carries_the_query(server: RunningServer) -> None:
    status, fields, _ = request(server, "/old?utm=1&x=%20")
    assert status == 301 and fields["location"] == "/page.html?utm=1&x=%20"
    assert "x-site" not in fields  # the redirect wins over _headers (as on Cloudflare Pages)
    assert fields["strict-transport-security"] == "max-age=60"  # --header: every response
    status, fields, _ = request(server, "/temp/a/b?q")
    assert (status, fields["location"]) == (307, "/files/a/b?q")
    status, fields, _ = request(server, "/away?ref=me")
    assert (status, fields["location"]) == (302, "https://example.com/landing?src=zh&ref=me")


def test_a_crlf_in_the_query_never_reaches_the_head(server: RunningServer) -> None:
    answer = raw(server, b"/old?a=%0d%0aSet-Cookie:%20x=1")
    head = answer.split(b"\r\n\r\n")[0]
    assert b"\r\nLocation: /page.html?a=%0d%0aSet-Cookie:%20x=1\r\n" in head
    assert b"\r\nSet-Cookie" not in head


def test_rewrite_serves_to_under_from(server: RunningServer) -> None:
    status, fields, body = request(server, "/docs")
    assert (status, body) == (200, b"the document\n")
    assert "location" not in fields and fields["x-site"] == "all"
    status, _, body = request(server, "/p/doc.txt?x=1")
    assert (status, body) == (200, b"the document\n")


@pytest.mark.parametrize(
    "target",
    [
        b"/p/.env",
        b"/p/../.env",
        b"/p/%2e%2e/.env",
        b"/p/..%2f.env",
        b"/p/../../etc/passwd",
        b"/p/../_headers",
    ],
)
def test_a_rewrite_never_leaves_root_or_reaches_hidden_files(
    server: RunningServer, target: bytes
) -> None:
    head, _, body = raw(server, target).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert (status, body) in ((404, b"<p>custom missing page</p>\n"), (400, b"400 Bad Request\n"))


@pytest.mark.parametrize(
    "target", ["/_headers", "/_redirects", "/%5Fheaders", "/_redirects?x", "/files/../_headers"]
)
def test_the_rules_files_are_never_served(server: RunningServer, target: str) -> None:
    status, _, body = request(server, target)
    assert status == 404 and body == b"<p>custom missing page</p>\n"


def test_the_rules_files_404_with_no_site_rules(site: Path) -> None:
    with start_server(site, site_rules=False) as running:
        status, fields, _ = request(running, "/_headers")
        assert status == 404 and "x-site" not in fields
        status, fields, _ = request(running, "/old")
        assert status == 404
        status, fields, _ = request(running, "/page.html")
        assert status == 200 and "x-site" not in fields


# --- reload ----------------------------------------------------------------------------


def write_settled(path: Path, text: str, age: float) -> None:
    """``text`` in ``path`` with an mtime ``age`` seconds ago (past the one-second rule:
    the edit is seen by its identity alone)."""
    path.write_text(text)
    past = time.time() - age
    os.utime(path, (past, past))


def test_an_edit_applies_on_the_next_request(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    write_settled(root / "_headers", "/*\n  X-Version: 1\n", 100)
    with start_server(root) as running:
        assert request(running, "/page.html")[1]["x-version"] == "1"
        write_settled(root / "_headers", "/*\n  X-Version: 2\n", 50)  # same size, new mtime
        assert request(running, "/page.html")[1]["x-version"] == "2"
        (root / "_headers").write_text("/*\n  X-Version: 3\n")  # fresh: read until settled
        assert request(running, "/page.html")[1]["x-version"] == "3"
        mtime = (root / "_headers").stat().st_mtime_ns
        (root / "_headers").write_text("/*\n  X-Version: 4\n")  # within the same clock tick:
        os.utime(root / "_headers", ns=(mtime, mtime))  # same size, same mtime
        assert request(running, "/page.html")[1]["x-version"] == "4"
        (root / "_redirects").write_text("/page.html /index.html 302\n")  # a new file
        assert request(running, "/page.html")[0] == 302
        (root / "_redirects").unlink()
        (root / "_headers").unlink()
        status, fields, _ = request(running, "/page.html")
        assert status == 200 and "x-version" not in fields


def test_a_malformed_edit_keeps_the_last_good_rules_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_root(tmp_path / "root")
    write_settled(root / "_headers", "/*\n  X-Version: good\n", 100)
    with caplog.at_level(logging.INFO, logger="zerohttp"), start_server(root) as running:
        write_settled(root / "_headers", "/*\n  X-Version: good\n  Content-Length: 1\n", 50)
        for _ in range(3):
            assert request(running, "/page.html")[1]["x-version"] == "good"
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [
            f"site rules not reloaded, the previous rules stay: {root}/_headers line 3: "
            "'Content-Length': zerohttp sets this field itself: no rule can set or remove it"
        ]
        write_settled(root / "_headers", "/*\n  X-Version: fixed\n", 10)
        assert request(running, "/page.html")[1]["x-version"] == "fixed"


def test_a_malformed_file_at_start_is_one_cli_line(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    (root / "_redirects").write_text("/ok /fine\n/bad /x 418\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ZEROHTTP_")}
    result = subprocess.run(
        [sys.executable, "-m", "zerohttp", str(root), "--port", "0"],
        env=clean,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    line = assert_one_line_error(result, 1)
    assert line == (
        f"zerohttp: error: {root}/_redirects line 2: "
        "status '418': expected 301, 302, 303, 307, 308 or 200 (rewrite)"
    )


# --- --header, and the health path ------------------------------------------------------


def test_header_alone_is_on_every_response(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    with start_server(root, site_rules=False, header=(HSTS, "X-Robots-Tag: noindex")) as running:
        for path, expected in [("/page.html", 200), ("/missing", 404), ("/files", 308)]:
            status, fields, _ = request(running, path)
            assert status == expected
            assert fields["strict-transport-security"] == "max-age=60"
            assert fields["x-robots-tag"] == "noindex"


def test_the_health_path_is_untouched(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    (root / "_headers").write_text(HEADERS)
    (root / "_redirects").write_text(REDIRECTS)  # ends with a catch-all redirect
    with start_server(root, health_path="/healthz", header=(HSTS,)) as running:
        status, fields, body = request(running, "/healthz")
        assert (status, body) == (200, b"ok\n")
        assert "x-site" not in fields and "strict-transport-security" not in fields
        assert request(running, "/page.html")[0] == 302  # while the catch-all holds elsewhere


def test_while_neither_file_exists_one_stat_of_root_suffices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No rules files, ROOT unchanged for a while: the check stats ROOT alone, and a file
    that then appears (even one carrying an old mtime, as ``cp -p`` leaves it) is seen."""
    from zerohttp.message.response import RequestHead, Response
    from zerohttp.static.options import StaticOptions
    from zerohttp.static.rules.site import SiteRules

    class Files:
        def handle(self, request: RequestHead) -> Response:
            return Response(200, (("Content-Length", "0"),))

    root = tmp_path / "root"
    root.mkdir()
    old = time.time_ns() - 100 * 1_000_000_000
    os.utime(root, ns=(old, old))
    rules = SiteRules(Files(), str(root), StaticOptions(root=str(root)))
    looked_at: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        looked_at.append(os.fsdecode(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    get = RequestHead(b"GET", b"/old", b"1.1", [])
    assert rules.handle(get).status == 200
    assert looked_at == [str(root)]

    source = tmp_path / "made-elsewhere"
    source.write_text("/old /new 301\n")
    os.utime(source, ns=(old, old))
    os.rename(source, root / "_redirects")
    rules.revalidation.due = True  # the next loop pass
    assert rules.handle(get).status == 301


def test_the_root_listing_leaves_the_rules_files_out(tmp_path: Path) -> None:
    """They would 404 when clicked: ROOT's are never served. A subdirectory's are plain
    files, listed and served."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "_headers").write_text("/*\n  X-Site: 1\n")
    (root / "_redirects").write_text("/gone /\n")
    (root / "page.txt").write_text("page\n")
    (root / "sub" / "_headers").write_text("not rules here\n")
    with start_server(root, autoindex=True) as running:
        status, _, body = request(running, "/")
        assert status == 200
        assert b"page.txt" in body
        assert b"_headers" not in body and b"_redirects" not in body
        status, _, body = request(running, "/sub/")
        assert status == 200 and b"_headers" in body
        assert request(running, "/sub/_headers")[2] == b"not rules here\n"
