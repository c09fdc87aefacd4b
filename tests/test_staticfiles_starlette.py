"""``zerohttp.StaticFiles`` as a drop-in for ``starlette.staticfiles.StaticFiles``.

The differential part mounts both classes, built with the same arguments, side by side in one
Starlette app served by uvicorn over TCP, asks each the same requests (raw targets, one fresh
connection each) and requires the same status, body and the fields Starlette gets right by
RFC 9110 (Content-Type, Content-Length, Last-Modified, Content-Range, Accept-Ranges, Allow,
Location); ETags are compared by presence (each side's own, opaque, used in its own
conditional requests). Every difference that is deliberate is data in ``DIFFERENCES`` and
asserted as such, so a change on either side shows.

Deliberate differences (request: Starlette -> zerohttp; why):

- directory without its slash, html=True: 307 with an absolute Location and an empty body ->
  308 with a path Location and a short text body; the slashed URL is the permanent one (RFC
  9110 §15.4.9) and a path-absolute reference is enough (§10.2.2). A mount point without
  its slash is answered by Starlette's router (307) for both.
- directory without its slash and without index, html=True: 404 (the 404.html page) ->
  308; the slashed URL then answers that 404. The redirect is decided before any index
  file is looked for.
- a file with a trailing slash, ``/hello.txt/``: 200, the file -> 404; it is another URL,
  and relative links from it would resolve elsewhere.
- a dotfile or dot-directory, ``/.secret``: 200 -> 404; .env, .git and the like are never
  served.
- a path climbing above the root, raw or ``%2f``-encoded: 404 -> 400; a target naming
  nothing below the root is a bad request.
- POST: 405 with ``Allow: GET, HEAD`` and Starlette's exception handlers' body -> 405 with
  ``Allow: GET, HEAD, OPTIONS`` (OPTIONS is answered, 204) and zerohttp's text body.
- ``If-Match`` that does not match: 200 -> 412; RFC 9110 §13.1.1 requires evaluating it.
- 304: no Last-Modified -> Last-Modified kept (RFC 9111 §4.3.4: caches update their stored
  fields from it; both send the ETag).
- Range past the end: 416 with an empty body -> 416 with a short text body and the current
  ETag, Last-Modified and Accept-Ranges; both send ``Content-Range: bytes */size``.
- ranges a small gap apart (``0-9,100-109``): multipart -> one coalesced 206 range (RFC 9110
  §14.3 allows it: fewer bytes than the part headers); far-apart ranges are multipart on
  both sides and compare equal part by part (boundaries differ).
- the 404.html page: ETag, Last-Modified and Accept-Ranges on the 404 -> none of them (the
  page's validators are not the target's), ``X-Content-Type-Options: nosniff``.

Equal, and compared: ``check_dir=False`` with the directory missing (both raise
RuntimeError on each request: the host's 500), symlinks inside and outside the root with
``follow_symlink`` False and True, ``packages`` searched after ``directory``, and a plain
miss rendered by Starlette's exception handlers (``Not Found``).

Not differential (Starlette has no equivalent): ``check_dir`` at construction, ``packages``
resolution errors (Starlette asserts; zerohttp raises ConfigError), zerohttp's options next
to ``html``, a plain 404 rendered by the app's own exception handlers (FastAPI's JSON, a
custom handler) exactly as for Starlette's class, and ``url_for`` on the mount.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from helpers import open_fds
from serverprocs import Reply, fetch
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles as StarletteStaticFiles
from test_asgi_staticfiles import FakeHost, make_scope, multipart_parts

from zerohttp import StaticFiles
from zerohttp.asgi.staticfiles import DirectoryNotFound, miss_statuses
from zerohttp.errors import ConfigError
from zerohttp.static.files import FileResolver

PAST = 1_600_000_000
PACKAGE = "zerohttp_statics_probe"
DATA = bytes(range(256)) * 8  # 2 KiB


def write_site(root: Path, outside: Path) -> None:
    """Files, directories with and without index, a 404 page, a dotfile and symlinks that
    stay inside or lead outside the root."""
    (root / "sub").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "noindex").mkdir()
    (root / "index.html").write_text("<!doctype html><title>home</title>\n")
    (root / "hello.txt").write_text("hello\n")
    (root / "style.css").write_text("body { color: red }\n")
    (root / "data.bin").write_bytes(DATA)
    (root / "sub" / "page.txt").write_text("nested page\n")
    (root / "docs" / "index.html").write_text("<!doctype html><title>docs</title>\n")
    (root / "noindex" / "file.txt").write_text("no index here\n")
    (root / "404.html").write_text("<!doctype html><title>not here</title>\n")
    (root / ".secret").write_text("do not serve\n")
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the root\n")
    (root / "inside-link.txt").symlink_to("hello.txt")
    (root / "outside-link.txt").symlink_to(outside / "secret.txt")
    (root / "outside-dir").symlink_to(outside, target_is_directory=True)


def write_package(base: Path) -> None:
    """A tiny importable package with a ``statics`` folder (and an ``assets`` one)."""
    package = base / PACKAGE
    (package / "statics").mkdir(parents=True)
    (package / "assets").mkdir()
    (package / "__init__.py").write_text("")
    (package / "statics" / "pkg.txt").write_text("from the package\n")
    (package / "statics" / "both.txt").write_text("the package's copy\n")
    (package / "statics" / "404.html").write_text("<!doctype html><title>package 404</title>\n")
    (package / "assets" / "other.txt").write_text("from assets\n")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("starlette-diff")
    write_site(base / "site", base / "outside")
    (base / "bare").mkdir()
    (base / "bare" / "bare.txt").write_text("bare\n")
    (base / "bare" / "both.txt").write_text("the directory's copy\n")
    write_package(base / "packages")
    for path in base.rglob("*"):
        os.utime(path, (PAST, PAST), follow_symlinks=False)
    sys.path.insert(0, str(base / "packages"))
    try:
        yield base
    finally:
        sys.path.remove(str(base / "packages"))
        sys.modules.pop(PACKAGE, None)


def variants(base: Path) -> dict[str, dict[str, Any]]:
    """Mount name -> the arguments both classes get."""
    site = base / "site"
    return {
        "html": {"directory": site, "html": True},
        "plain": {"directory": site},  # Starlette's default: html=False
        "bare-html": {"directory": base / "bare", "html": True},
        "follow": {"directory": site, "follow_symlink": True},
        "packages": {
            "directory": base / "bare",
            "packages": [PACKAGE, (PACKAGE, "assets")],
            "html": True,
        },
        "package-only": {"packages": [PACKAGE]},
        "late": {"directory": base / "missing", "check_dir": False},
    }


@contextlib.contextmanager
def uvicorn_thread(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` on a socket bound here, in a thread of this process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def base_url(tree: Path) -> Iterator[str]:
    routes = []
    for name, kwargs in variants(tree).items():
        routes.append(Mount(f"/starlette/{name}", StarletteStaticFiles(**kwargs)))
        routes.append(Mount(f"/zerohttp/{name}", StaticFiles(**kwargs)))
    with uvicorn_thread(Starlette(routes=routes)) as url:
        yield url


@pytest.fixture(scope="module")
def validators(base_url: str) -> dict[str, dict[str, str]]:
    """Each side's own ETag and Last-Modified of /data.bin."""
    found = {}
    for side in ("starlette", "zerohttp"):
        reply = fetch(base_url, "GET", f"/{side}/html/data.bin")
        found[side] = {"etag": reply.headers["etag"], "date": reply.headers["last-modified"]}
    return found


OLD = "Mon, 01 Jan 2001 00:00:00 GMT"
BOTH = ("html", "plain")
# (id, mounts, method, path below the mount, headers); {etag}/{date}: each side's own.
CASES: list[tuple[str, tuple[str, ...], str, str, dict[str, str]]] = [
    ("file", BOTH, "GET", "/hello.txt", {}),
    ("nested", BOTH, "GET", "/sub/page.txt", {}),
    ("css", BOTH, "GET", "/style.css", {}),
    ("dot-segment-inside", BOTH, "GET", "/sub/../hello.txt", {}),
    ("root", BOTH, "GET", "/", {}),
    ("dir-index", BOTH, "GET", "/docs/", {}),
    ("dir-index-no-slash", BOTH, "GET", "/docs", {}),
    ("dir-no-index", BOTH, "GET", "/noindex/", {}),
    ("dir-no-index-no-slash", BOTH, "GET", "/noindex", {}),
    ("mount-point", BOTH, "GET", "", {}),  # Starlette's router adds the slash, for both
    ("missing", (*BOTH, "bare-html"), "GET", "/missing.txt", {}),
    ("missing-head", (*BOTH, "bare-html"), "HEAD", "/missing.txt", {}),
    ("file-slash", BOTH, "GET", "/hello.txt/", {}),
    ("dotfile", BOTH, "GET", "/.secret", {}),
    ("traversal", BOTH, "GET", "/../../etc/passwd", {}),
    ("traversal-encoded", BOTH, "GET", "/..%2f..%2f..%2fetc%2fpasswd", {}),
    ("head", BOTH, "HEAD", "/hello.txt", {}),
    ("etag-304", BOTH, "GET", "/data.bin", {"If-None-Match": "{etag}"}),
    ("etag-weak-304", BOTH, "GET", "/data.bin", {"If-None-Match": "W/{etag}"}),
    ("etag-other", BOTH, "GET", "/data.bin", {"If-None-Match": '"other"'}),
    ("date-304", BOTH, "GET", "/data.bin", {"If-Modified-Since": "{date}"}),
    ("date-200", BOTH, "GET", "/data.bin", {"If-Modified-Since": OLD}),
    ("if-match-412", BOTH, "GET", "/data.bin", {"If-Match": '"nope"'}),
    ("range", BOTH, "GET", "/data.bin", {"Range": "bytes=0-9"}),
    ("range-open", BOTH, "GET", "/data.bin", {"Range": "bytes=2000-"}),
    ("range-suffix", BOTH, "GET", "/data.bin", {"Range": "bytes=-10"}),
    ("range-head", BOTH, "HEAD", "/data.bin", {"Range": "bytes=0-9"}),
    ("range-multi", BOTH, "GET", "/data.bin", {"Range": "bytes=0-9,1000-1009"}),
    ("range-multi-near", BOTH, "GET", "/data.bin", {"Range": "bytes=0-9,100-109"}),
    ("range-416", BOTH, "GET", "/data.bin", {"Range": "bytes=5000-6000"}),
    ("if-range", BOTH, "GET", "/data.bin", {"Range": "bytes=0-9", "If-Range": "{etag}"}),
    ("if-range-stale", BOTH, "GET", "/data.bin", {"Range": "bytes=0-9", "If-Range": '"x"'}),
    ("post", BOTH, "POST", "/hello.txt", {}),
    ("symlink-inside", (*BOTH, "follow"), "GET", "/inside-link.txt", {}),
    ("symlink-outside", (*BOTH, "follow"), "GET", "/outside-link.txt", {}),
    ("symlink-outside-dir", (*BOTH, "follow"), "GET", "/outside-dir/secret.txt", {}),
    ("package-file", ("packages", "package-only"), "GET", "/pkg.txt", {}),
    ("package-folder", ("packages",), "GET", "/other.txt", {}),
    ("directory-first", ("packages",), "GET", "/both.txt", {}),
    ("directory-file", ("packages",), "GET", "/bare.txt", {}),
    ("package-404-page", ("packages", "package-only"), "GET", "/missing.txt", {}),
    ("dir-unchecked", ("late",), "GET", "/hello.txt", {}),
]

PAGE = "404 page"  # site/404.html with html=True, Starlette's "Not Found" without
REDIRECT = {
    "status": (307, 308),
    "body": (b"", b"308 Permanent Redirect\n"),
    "content-type": (None, "text/plain; charset=utf-8"),
    "content-length": ("0", "23"),
}
PAGE_FIELDS = {  # Starlette's 404 page is a FileResponse; zerohttp's has no validators
    "etag": (True, False),
    "last-modified": ("Sun, 13 Sep 2020 12:26:40 GMT", None),
    "accept-ranges": ("bytes", None),
}
# (case id, mount or "*") -> {field: (Starlette's, zerohttp's)}. Where the statuses differ,
# only status, body and the fields named are compared: the others are each status's own.
DIFFERENCES: dict[tuple[str, str], dict[str, tuple[Any, Any]]] = {
    ("dir-index-no-slash", "html"): {
        **REDIRECT,
        "location": ("http://127.0.0.1/docs/", "/docs/"),
    },
    ("dir-no-index-no-slash", "html"): {
        "status": (404, 308),
        "body": (PAGE, b"308 Permanent Redirect\n"),
    },
    ("file-slash", "*"): {"status": (200, 404), "body": ("hello.txt", PAGE)},
    ("dotfile", "*"): {"status": (200, 404), "body": (".secret", PAGE)},
    ("traversal", "*"): {"status": (404, 400), "body": (PAGE, b"400 Bad Request\n")},
    ("traversal-encoded", "*"): {"status": (404, 400), "body": (PAGE, b"400 Bad Request\n")},
    ("post", "*"): {
        "allow": ("GET, HEAD", "GET, HEAD, OPTIONS"),
        "body": (b"Method Not Allowed", b"405 Method Not Allowed\n"),
        "content-length": ("18", "23"),
    },
    ("if-match-412", "*"): {
        "status": (200, 412),
        "body": ("data.bin", b"412 Precondition Failed\n"),
    },
    ("range-416", "*"): {  # zerohttp's core also says what the representation is now
        "body": (b"", b"416 Requested Range Not Satisfiable\n"),
        "content-length": ("0", "36"),
        "etag": (False, True),
        "last-modified": (None, "Sun, 13 Sep 2020 12:26:40 GMT"),
        "accept-ranges": (None, "bytes"),
    },
    ("range-multi-near", "*"): {  # RFC 9110 §14.3: ranges a small gap apart may be coalesced
        "content-type": ("multipart/byteranges", "application/octet-stream"),
        "content-range": (None, "bytes 0-109/2048"),
        "content-length": (None, "110"),
        "body": ("parts 0-9, 100-109", "bytes 0-109"),
    },
}
for _case in ("etag-304", "etag-weak-304", "date-304"):  # RFC 9111 §4.3.4: caches update it
    DIFFERENCES[(_case, "*")] = {"last-modified": (None, "Sun, 13 Sep 2020 12:26:40 GMT")}
for _case in ("missing", "missing-head", "dir-no-index", "symlink-outside", "symlink-outside-dir"):
    DIFFERENCES[(_case, "html")] = PAGE_FIELDS
DIFFERENCES[("package-404-page", "packages")] = PAGE_FIELDS

COMPARED = ("content-type", "content-length", "last-modified", "content-range", "allow")


def comparable(reply: Reply, prefix: str) -> dict[str, Any]:
    """Status, compared fields, ETag presence, Location after the mount (Starlette's is
    absolute: its scheme and host without the port kept), body (multipart as parsed parts:
    boundaries are random)."""
    fields: dict[str, Any] = {name: reply.headers.get(name) for name in COMPARED}
    fields["etag"] = "etag" in reply.headers
    fields["accept-ranges"] = reply.headers.get("accept-ranges")
    body: Any = reply.body
    content_type = fields["content-type"] or ""
    if content_type.startswith("multipart/byteranges"):
        body = multipart_parts(content_type, reply.body)
        fields["content-type"] = "multipart/byteranges"
        fields["content-length"] = None  # depends on the boundary
    location = reply.headers.get("location")
    if location is not None:
        parts = urlsplit(location)
        origin = f"{parts.scheme}://{parts.hostname}" if parts.scheme else ""
        assert parts.path.startswith(prefix + "/"), location
        location = origin + parts.path[len(prefix) :]
    return {"status": reply.status, **fields, "location": location, "body": body}


def named_bodies(tree: Path, mount: str) -> dict[str, Any]:
    """Bodies a DIFFERENCES entry names instead of spelling them out."""
    site = tree / "site"
    return {
        "hello.txt": (site / "hello.txt").read_bytes(),
        ".secret": (site / ".secret").read_bytes(),
        "data.bin": DATA,
        PAGE: (site / "404.html").read_bytes() if mount == "html" else b"Not Found",
        "parts 0-9, 100-109": [
            ("application/octet-stream", "bytes 0-9/2048", DATA[:10]),
            ("application/octet-stream", "bytes 100-109/2048", DATA[100:110]),
        ],
        "bytes 0-109": DATA[:110],
    }


def test_differences_table_names_real_cases() -> None:
    ids = {case[0] for case in CASES}
    assert {case for case, _ in DIFFERENCES} <= ids


@pytest.mark.parametrize(
    ("mount", "method", "path", "headers"),
    [(mount, *case[2:]) for case in CASES for mount in case[1]],
    ids=[f"{case[0]}-{mount}" for case in CASES for mount in case[1]],
)
def test_same_answer_as_starlette(
    request: pytest.FixtureRequest,
    tree: Path,
    base_url: str,
    validators: dict[str, dict[str, str]],
    mount: str,
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    case = request.node.callspec.id.removesuffix(f"-{mount}")
    got = {}
    for side in ("starlette", "zerohttp"):
        sent = {name: value.format(**validators[side]) for name, value in headers.items()}
        prefix = f"/{side}/{mount}"
        got[side] = comparable(fetch(base_url, method, prefix + path, sent), prefix)
    starlette, zerohttp = got["starlette"], got["zerohttp"]
    if method == "HEAD":
        assert starlette["body"] == zerohttp["body"] == b""
    bodies = named_bodies(tree, mount)
    expected = DIFFERENCES.get((case, mount), DIFFERENCES.get((case, "*"), {}))
    if expected.get("status", (0, 0))[0] != expected.get("status", (0, 0))[1]:
        for answer in (starlette, zerohttp):  # the other fields are each status's own
            for name in set(answer) - {"status", "body", *expected}:
                del answer[name]
    for name, pair in expected.items():
        if not (method == "HEAD" and name == "body"):
            want = tuple(bodies.get(v, v) if isinstance(v, str) else v for v in pair)
            assert (starlette.get(name), zerohttp.get(name)) == want, name
        starlette.pop(name, None)
        zerohttp.pop(name, None)
    assert zerohttp == starlette


# --- in process: arguments, their checks, the miss ladder, descriptors -----------------------


def call(app: StaticFiles, path: str, **scope: Any) -> tuple[int, dict[bytes, bytes], bytes]:
    host = FakeHost()
    asyncio.run(app(make_scope(path, **scope), host.receive, host.send))
    exchange = host.exchange
    return exchange.status, exchange.headers, bytes(exchange.body)


def test_resolver_admits_by_resolved_path() -> None:
    """The containment decision alone, on plain strings (the root need not exist)."""
    strict = FileResolver("/nonexistent-root/site")
    follow = FileResolver("/nonexistent-root/site", follow_symlinks=True)
    for resolver in (strict, follow):
        assert resolver.admits("/nonexistent-root/site")
        assert resolver.admits("/nonexistent-root/site/a/b.txt")
        assert not resolver.admits("/nonexistent-root/site/.git/config")  # hidden inside
        assert not resolver.admits("/nonexistent-root/site/a/.env")
    for outside in ("/etc/passwd", "/nonexistent-root/site2/x", "/nonexistent-root/.x/y"):
        assert not strict.admits(outside)
        assert follow.admits(outside)  # only a symlink can lead there


def test_misses_are_what_starlette_would_not_serve() -> None:
    assert miss_statuses(html=True, autoindex=False) == {404}
    assert miss_statuses(html=False, autoindex=False) == {404, 308}
    assert miss_statuses(html=False, autoindex=True) == {404}


def test_html_false_is_starlettes_default(tree: Path) -> None:
    """No index page, no slash redirect, no 404 page: every one a plain 404."""
    app = StaticFiles(directory=tree / "site")
    assert app.html is False and app.options.index == ()
    for path in ("/", "/docs/", "/docs", "/noindex/", "/missing.txt"):
        for method in ("GET", "HEAD"):
            status, headers, body = call(app, path, method=method)
            assert (status, headers[b"content-type"]) == (404, b"text/plain; charset=utf-8")
            assert body == (b"404 Not Found\n" if method == "GET" else b"")
    assert call(app, "", root_path="/static")[0] == 404  # the mount point is a directory too
    assert call(app, "/docs/index.html")[2] == (tree / "site/docs/index.html").read_bytes()


def test_html_true_serves_index_and_404_page(tree: Path) -> None:
    app = StaticFiles(directory=tree / "site", html=True)
    assert call(app, "/docs/")[2] == (tree / "site/docs/index.html").read_bytes()
    assert call(app, "/docs", root_path="/static")[1][b"location"] == b"/static/docs/"
    status, headers, body = call(app, "/missing.txt")
    assert (status, body) == (404, (tree / "site/404.html").read_bytes())
    status, headers, body = call(app, "/missing.txt", method="HEAD")
    assert (status, body) == (404, b"")
    assert headers[b"content-length"] == str(len((tree / "site/404.html").read_bytes())).encode()
    bare = StaticFiles(directory=tree / "bare", html=True)
    assert call(bare, "/missing.txt")[:3:2] == (404, b"404 Not Found\n")


def test_zerohttp_options_beside_html(tree: Path) -> None:
    site = tree / "site"
    listing = StaticFiles(directory=site, autoindex=True)  # html=False: directories listed
    status, _, body = call(listing, "/docs/")
    assert status == 200 and b"index.html" in body and b"<title>docs" not in body
    assert call(listing, "/docs")[0] == 308  # a listing needs its slash
    spa = StaticFiles(directory=site, html=True, spa=True, index=["index.html"])
    assert call(spa, "/users/42")[2] == (site / "index.html").read_bytes()
    for wrong in ({"index": ["home.html"]}, {"spa": True}):
        with pytest.raises(ConfigError, match="only with html=True"):
            StaticFiles(directory=site, **wrong)
    StaticFiles(directory=site, spa=False)  # saying "no" needs no html
    for flag in ("html", "check_dir", "follow_symlink"):
        with pytest.raises(ConfigError, match=f"{flag}=.*expected bool"):
            StaticFiles(directory=site, **{flag: "yes"})


def test_check_dir(tree: Path) -> None:
    missing = tree / "appears-later"
    with pytest.raises(RuntimeError, match="does not exist"):  # Starlette's exception type
        StaticFiles(directory=missing)
    with pytest.raises(DirectoryNotFound, match="is not a directory"):
        StaticFiles(directory=tree / "site" / "hello.txt")
    app = StaticFiles(directory=missing, check_dir=False)
    for _ in range(2):  # raised by every request until the directory is there, as Starlette
        with pytest.raises(RuntimeError, match="does not exist"):
            call(app, "/x.txt")
    missing.mkdir()
    try:
        (missing / "x.txt").write_text("now here\n")
        assert call(app, "/x.txt")[::2] == (200, b"now here\n")
    finally:
        (missing / "x.txt").unlink()
        missing.rmdir()


def test_packages(tree: Path) -> None:
    app = StaticFiles(packages=[PACKAGE, (PACKAGE, "assets")])
    assert app.directory is None
    statics = tree / "packages" / PACKAGE / "statics"
    assert app.all_directories == [str(statics), str(statics.parent / "assets")]
    assert call(app, "/other.txt")[::2] == (200, b"from assets\n")
    bad: list[tuple[Any, str]] = [
        ([], "give directory="),
        (["no_such_package_here"], "could not be found"),
        (["no_such_parent.child"], "could not be found"),
        ([(PACKAGE, "nowhere")], "no directory 'nowhere'"),
        (PACKAGE, "expected a list"),
        ([(PACKAGE,)], "expected a list"),
    ]
    for packages, message in bad:
        with pytest.raises(ConfigError, match=message):
            StaticFiles(packages=packages)


def test_follow_symlink(tree: Path) -> None:
    site = tree / "site"
    strict = StaticFiles(directory=site)
    follow = StaticFiles(directory=site, follow_symlink=True)
    for path in ("/outside-link.txt", "/outside-dir/secret.txt"):
        assert call(strict, path)[0] == 404
        assert call(follow, path)[::2] == (200, b"outside the root\n")
    assert call(follow, "/.secret")[0] == 404  # the request path is still checked


@pytest.mark.parametrize("html", [True, False])
def test_misses_release_every_descriptor(tree: Path, html: bool) -> None:
    """Misses walk every directory and may open a 404 page in each: all are closed."""
    app = StaticFiles(directory=tree / "site", packages=[PACKAGE], html=html, open_file_cache=0)
    paths = ["/missing.txt", "/pkg.txt", "/noindex/", "/docs", "/hello.txt"]
    call(app, "/hello.txt")
    before = open_fds()
    for _ in range(3):
        for path in paths:
            for method in ("GET", "HEAD"):
                call(app, path, method=method)
    assert open_fds() == before


# --- as a drop-in mount in FastAPI and Starlette --------------------------------------------


def drop_in_api(static: Any, *, custom_404: bool = False) -> FastAPI:
    """What a FastAPI user writes: a mount named "static", a route linking into it."""
    api = FastAPI()
    api.mount("/static", static, name="static")

    @api.get("/link")
    def link(request: Request) -> str:
        return str(request.url_for("static", path="bare.txt"))

    if custom_404:

        @api.exception_handler(404)
        def custom(request: Request, exc: Exception) -> PlainTextResponse:
            return PlainTextResponse("custom miss", status_code=404)

    return api


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
@pytest.mark.parametrize("html", [True, False])
def test_fastapi_mount_with_only_the_import_changed(tree: Path, html: bool) -> None:
    """The same FastAPI app with either class: url_for on the mount, the app's own 404
    handler (FastAPI's JSON, then a custom one) for a plain miss, the files themselves."""
    from fastapi.testclient import TestClient  # warns on import: under the mark's filter

    answers = []
    for cls in (StarletteStaticFiles, StaticFiles):
        with TestClient(drop_in_api(cls(directory=tree / "bare", html=html))) as client:
            url = client.get("/link").json()
            assert url == "http://testserver/static/bare.txt"
            served = client.get(url)
            default_404 = client.get("/static/missing.txt")
        custom = drop_in_api(cls(directory=tree / "bare", html=html), custom_404=True)
        with TestClient(custom) as client:
            custom_404 = client.get("/static/missing.txt")
        answers.append(
            (
                (served.status_code, served.content),
                (default_404.status_code, default_404.json()),
                (custom_404.status_code, custom_404.text),
            )
        )
    starlette, zerohttp = answers
    assert zerohttp == starlette
    assert zerohttp[1] == (404, {"detail": "Not Found"})
    assert zerohttp[2] == (404, "custom miss")
