"""StaticHandler.handle and FileResolver against a real directory tree (no sockets)."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import read_file_body
from helpers import fd_names

from zerohttp.config import Config
from zerohttp.message.dates import http_date
from zerohttp.message.response import ByteRange, FileBody, RequestHead, Response
from zerohttp.static.files import Directory, FileInfo, FileResolver, NeedsSlash, NotFound, OpenFile
from zerohttp.static.handler import StaticHandler
from zerohttp.static.representation import Representation, plan_response

HELLO = b"hello, world\n"
MTIME_NS = 1_700_000_000_123_456_789


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Every test in this module must close every descriptor it (or the core) opened."""
    before = len(fd_names())
    yield
    assert len(fd_names()) == before


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_bytes(b"outside the root\n")
    (out / "index.html").write_bytes(b"<p>outside index</p>\n")
    return out


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    (r / "hello.txt").write_bytes(HELLO)
    os.utime(r / "hello.txt", ns=(MTIME_NS, MTIME_NS))
    (r / "index.html").write_bytes(b"<h1>root</h1>\n")
    (r / "app.js").write_bytes(b"console.log(1)\n")
    (r / "empty.bin").write_bytes(b"")
    (r / "a b.txt").write_bytes(b"spaced\n")
    (r / "sub").mkdir()
    (r / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    (r / "sub" / "page.txt").write_bytes(b"page\n")
    (r / "noindex").mkdir()
    (r / "noindex" / "file.txt").write_bytes(b"x\n")
    (r / "space dir").mkdir()
    (r / "\u00e9t\u00e9").mkdir()
    (r / "evil.example").mkdir()
    (r / "indexdir").mkdir()
    (r / "indexdir" / "index.html").mkdir()  # an index that is itself a directory
    (r / ".secret").write_bytes(b"dotfile\n")
    (r / ".git").mkdir()
    (r / ".git" / "config").write_bytes(b"[core]\n")
    (r / "link-out-file").symlink_to(outside / "secret.txt")
    (r / "link-out-dir").symlink_to(outside, target_is_directory=True)
    (r / "link-in.txt").symlink_to(r / "hello.txt")
    (r / "link-rel.txt").symlink_to("sub/page.txt")
    (r / "link-dir").symlink_to(r / "sub", target_is_directory=True)
    (r / "link-dot").symlink_to(r / ".secret")
    (r / "link-dot-dir").symlink_to(r / ".git", target_is_directory=True)
    (r / "outidx").mkdir()
    (r / "outidx" / "index.html").symlink_to(outside / "index.html")
    return r


@pytest.fixture
def app(root: Path) -> StaticHandler:
    """Without the open-file cache, so every test can check that no descriptor stays open."""
    return StaticHandler(Config(root=str(root), open_file_cache=0))


def fields_of(response: Response) -> dict[str, str]:
    lines = response.field_lines().decode("latin-1").split("\r\n")
    assert lines[-1] == ""
    parsed: dict[str, str] = {}
    for line in lines[:-1]:
        name, sep, value = line.partition(": ")
        assert sep, line
        assert name not in parsed, f"duplicate field {name}"
        parsed[name] = value
    return parsed


def get(app: StaticHandler, target: bytes, method: bytes = b"GET") -> Response:
    return app.handle(RequestHead(method, target, b"1.1", ((b"host", b"example.com"),)))


read_body = read_file_body


# --- 200 -------------------------------------------------------------------------------------


def test_get_file(app: StaticHandler, root: Path) -> None:
    response = get(app, b"/hello.txt")
    assert response.status == 200
    assert response.close is False
    st = os.stat(root / "hello.txt")
    assert fields_of(response) == {
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": str(len(HELLO)),
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Last-Modified": http_date(MTIME_NS // 10**9),
        "ETag": f'"{MTIME_NS:x}-{len(HELLO):x}"',
    }
    assert fields_of(response)["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    body = response.body
    assert isinstance(body, FileBody)
    assert body.segments == (ByteRange(0, len(HELLO) - 1),)
    assert body.length == len(HELLO)
    assert body.path == str(root / "hello.txt")
    assert os.fstat(body.fd).st_ino == st.st_ino
    assert read_body(response) == HELLO


def test_get_file_with_query_and_encoded_name(app: StaticHandler) -> None:
    response = get(app, b"/a%20b.txt?v=3")
    assert response.status == 200
    assert read_body(response) == b"spaced\n"


def test_get_empty_file(app: StaticHandler) -> None:
    response = get(app, b"/empty.bin")
    assert response.status == 200
    assert fields_of(response)["Content-Length"] == "0"
    assert fields_of(response)["Content-Type"] == "application/octet-stream"
    assert read_body(response) == b""


def test_get_absolute_form(app: StaticHandler) -> None:
    response = get(app, b"http://example.com/app.js")
    assert response.status == 200
    assert fields_of(response)["Content-Type"] == "text/javascript; charset=utf-8"
    assert read_body(response) == b"console.log(1)\n"


def test_head_has_fields_but_no_body_and_no_fd(app: StaticHandler) -> None:
    """HEAD is answered with GET's response; what a sender sends of it (``body_for``) is
    no body, and the file is closed by then."""
    before = len(fd_names())
    response = get(app, b"/hello.txt", b"HEAD")
    assert response.body_for(b"HEAD") == b""
    assert len(fd_names()) == before
    assert response.status == 200
    fields = fields_of(response)
    assert fields["Content-Length"] == str(len(HELLO))
    assert fields["ETag"] == f'"{MTIME_NS:x}-{len(HELLO):x}"'
    assert fields == fields_of(read_and_return(get(app, b"/hello.txt")))


def read_and_return(response: Response) -> Response:
    read_body(response)
    return response


def test_head_many_times_leaks_nothing(app: StaticHandler) -> None:
    before = len(fd_names())
    for _ in range(50):
        response = get(app, b"/sub/", b"HEAD")
        assert response.body_for(b"HEAD") == b""
        assert response.status == 200
    assert len(fd_names()) == before


def test_index_served_for_directory_with_slash(app: StaticHandler, root: Path) -> None:
    response = get(app, b"/sub/")
    assert response.status == 200
    assert fields_of(response)["Content-Type"] == "text/html; charset=utf-8"
    body = response.body
    assert isinstance(body, FileBody)
    assert body.path == str(root / "sub" / "index.html")
    assert read_body(response) == b"<p>sub</p>\n"


def test_root_index(app: StaticHandler) -> None:
    response = get(app, b"/")
    assert response.status == 200
    assert read_body(response) == b"<h1>root</h1>\n"


def test_root_reached_through_symlink(tmp_path: Path, root: Path) -> None:
    link = tmp_path / "root-link"
    link.symlink_to(root, target_is_directory=True)
    app = StaticHandler(Config(root=str(link), open_file_cache=0))
    response = get(app, b"/hello.txt")
    assert response.status == 200
    assert read_body(response) == HELLO
    assert get(app, b"/link-out-file").status == 404


# --- methods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", [b"POST", b"PUT", b"DELETE", b"PATCH", b"TRACE", b"get", b"options", b"BREW"]
)
@pytest.mark.parametrize("target", [b"/hello.txt", b"/missing", b"/%zz"])
def test_other_methods_are_405(app: StaticHandler, method: bytes, target: bytes) -> None:
    response = get(app, target, method)
    assert response.status == 405
    fields = fields_of(response)
    assert fields["Allow"] == "GET, HEAD, OPTIONS"
    assert fields["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body == b"405 Method Not Allowed\n"
    assert fields["Content-Length"] == str(len(response.body))


# --- 400 / 404 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", [b"/%zz", b"/../hello.txt", b"/%2e%2e/outside/secret.txt", b"/a%00", b"*", b"/a#b"]
)
def test_bad_target_is_400(app: StaticHandler, target: bytes) -> None:
    response = get(app, target)
    assert response.status == 400
    assert response.body == b"400 Bad Request\n"


@pytest.mark.parametrize(
    "target",
    [
        b"/missing.txt",
        b"/sub/missing.txt",
        b"/missing/",
        b"/hello.txt/x",
        b"/.secret",
        b"/%2esecret",
        b"/.git/config",
        b"/.git/",
        b"/.git",
        b"/sub/../.git/config",
    ],
)
def test_not_found(app: StaticHandler, target: bytes) -> None:
    response = get(app, target)
    assert response.status == 404
    assert response.body == b"404 Not Found\n"
    assert fields_of(response)["Content-Length"] == "14"


def test_directory_without_index_is_404(app: StaticHandler) -> None:
    assert get(app, b"/noindex/").status == 404
    assert get(app, b"/space%20dir/").status == 404


def test_index_that_is_a_directory_is_404(app: StaticHandler) -> None:
    assert get(app, b"/indexdir/").status == 404


def test_file_with_trailing_slash_is_404(app: StaticHandler) -> None:
    assert get(app, b"/hello.txt/").status == 404
    assert get(app, b"/hello.txt/.").status == 404


@pytest.mark.parametrize(
    "target",
    [
        b"/link-out-file",
        b"/link-out-dir",
        b"/link-out-dir/",
        b"/link-out-dir/secret.txt",
        b"/outidx/",
        b"/link-dot",
        b"/link-dot-dir/config",
        b"/link-dot-dir/",
    ],
)
def test_symlinks_escaping_root_or_to_dotfiles_are_404(app: StaticHandler, target: bytes) -> None:
    assert get(app, target).status == 404


@pytest.mark.parametrize(
    ("target", "content"),
    [
        (b"/link-in.txt", HELLO),
        (b"/link-rel.txt", b"page\n"),
        (b"/link-dir/page.txt", b"page\n"),
        (b"/link-dir/", b"<p>sub</p>\n"),
    ],
)
def test_symlinks_inside_root_are_served(app: StaticHandler, target: bytes, content: bytes) -> None:
    response = get(app, target)
    assert response.status == 200
    assert read_body(response) == content


def test_fifo_is_404_without_blocking(app: StaticHandler, root: Path) -> None:
    fifo = root / "pipe"
    os.mkfifo(fifo)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(get(app, b"/pipe").status))
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the stuck open() so the thread can end
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(5)
        pytest.fail("GET of a FIFO blocked")
    assert result == [404]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unreadable_file_is_403(app: StaticHandler, root: Path) -> None:
    path = root / "locked.txt"
    path.write_bytes(b"locked\n")
    path.chmod(0)
    try:
        response = get(app, b"/locked.txt")
        assert response.status == 403
        assert response.body == b"403 Forbidden\n"
    finally:
        path.chmod(0o644)


def test_permission_error_on_open_is_403(
    app: StaticHandler, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as above, made to happen even for root by failing open(2) with EACCES."""
    real_open = os.open
    locked = str(root / "hello.txt")

    def fake_open(path: str, flags: int, *args: int) -> int:
        if os.fspath(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)
    response = get(app, b"/hello.txt")
    assert response.status == 403
    assert response.body == b"403 Forbidden\n"


# --- 308 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "location"),
    [
        (b"/sub", "/sub/"),
        (b"/sub?x=1&y=%20", "/sub/?x=1&y=%20"),
        (b"/noindex", "/noindex/"),
        (b"/space%20dir", "/space%20dir/"),
        (b"/space dir?q", "/space%20dir/?q"),
        (b"/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9/"),
        (b"/\xc3\xa9t\xc3\xa9", "/%C3%A9t%C3%A9/"),
        (b"//evil.example", "/evil.example/"),
        (b"//evil.example?next=/x", "/evil.example/?next=/x"),
        (b"/%2f%2fevil.example", "/evil.example/"),
        (b"/sub/../evil.example", "/evil.example/"),
        (b"/link-dir", "/link-dir/"),
        (b"http://other.example/sub", "/sub/"),
    ],
)
@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_directory_without_slash_redirects(
    app: StaticHandler, target: bytes, location: str, method: bytes
) -> None:
    response = get(app, target, method)
    assert response.status == 308
    fields = fields_of(response)
    assert fields["Location"] == location
    assert not fields["Location"].startswith("//")
    expected_body = b"" if method == b"HEAD" else b"308 Permanent Redirect\n"
    assert response.body_for(method) == expected_body
    assert fields["Content-Length"] == str(len(b"308 Permanent Redirect\n"))


def test_redirect_with_non_ascii_query_does_not_crash(app: StaticHandler) -> None:
    response = get(app, b"/sub?q=\xff")
    assert response.status in (308, 400)


def test_redirect_query_cannot_inject_fields(app: StaticHandler) -> None:
    response = get(app, b"/sub?a\r\nSet-Cookie: pwned=1")
    assert b"\r\nSet-Cookie:" not in response.field_lines()


# --- validators ------------------------------------------------------------------------------


def _etag(app: StaticHandler, target: bytes = b"/hello.txt") -> str | None:
    response = get(app, target, b"HEAD")
    assert response.body_for(b"HEAD") == b""
    assert response.status == 200
    return fields_of(response).get("ETag")


def test_etag_is_stable(app: StaticHandler) -> None:
    assert _etag(app) == _etag(app) == f'"{MTIME_NS:x}-{len(HELLO):x}"'


def test_etag_changes_with_mtime(app: StaticHandler, root: Path) -> None:
    before = _etag(app)
    os.utime(root / "hello.txt", ns=(MTIME_NS, MTIME_NS + 1))
    after = _etag(app)
    assert before is not None and after is not None
    assert after != before
    assert after == f'"{MTIME_NS + 1:x}-{len(HELLO):x}"'


def test_etag_changes_with_content(app: StaticHandler, root: Path) -> None:
    replacement = b"a longer replacement body\n"
    before = _etag(app)
    (root / "hello.txt").write_bytes(replacement)
    os.utime(root / "hello.txt", ns=(MTIME_NS, MTIME_NS))  # same mtime: size must tell
    after = _etag(app)
    assert after != before
    assert after == f'"{MTIME_NS:x}-{len(replacement):x}"'
    response = get(app, b"/hello.txt")
    assert read_body(response) == replacement


def test_no_validators_when_mtime_is_zero(app: StaticHandler, root: Path) -> None:
    os.utime(root / "hello.txt", (0, 0))
    response = get(app, b"/hello.txt")
    fields = fields_of(response)
    assert "ETag" not in fields
    assert "Last-Modified" not in fields
    assert fields["Content-Length"] == str(len(HELLO))
    assert fields["Content-Type"] == "text/plain; charset=utf-8"
    assert fields["Accept-Ranges"] == "bytes"
    assert read_body(response) == HELLO


def test_strong_etag_format() -> None:
    info = FileInfo(size=255, mtime_ns=0x1234ABCD00, inode=7, device=8)
    assert Representation(info, "text/plain").validators.etag == b'"1234abcd00-ff"'
    gz = Representation(info, "text/plain", encoding="gzip").validators.etag
    assert gz == b'"1234abcd00-ff-gzip"'
    # inode and device are not part of it
    same = Representation(FileInfo(255, 0x1234ABCD00, 99, 99), "text/plain")
    assert same.validators == Representation(info, "text/plain").validators


@pytest.mark.parametrize(
    ("mtime_ns", "expected"),
    [(0, False), (1_000_000_000, False), (1_000_000_001, True), (MTIME_NS, True)],
)
def test_has_validators(mtime_ns: int, expected: bool) -> None:
    rep = Representation(FileInfo(1, mtime_ns, 1, 1), "text/plain")
    fields = dict(plan_response(RequestHead(b"GET", b"/", b"1.1"), rep).fields)
    assert (rep.validators.etag is not None) is expected
    assert ("ETag" in fields) is expected
    assert ("Last-Modified" in fields) is expected


# --- FileResolver directly -------------------------------------------------------------------


def test_resolver_open_file(root: Path) -> None:
    resolver = FileResolver(str(root))
    found = resolver.lookup("sub/page.txt", False)
    assert isinstance(found, OpenFile)
    try:
        assert found.name == "page.txt"
        assert found.path == str(root / "sub" / "page.txt")
        assert found.info.size == 5
        st = os.stat(root / "sub" / "page.txt")
        assert (found.info.inode, found.info.device, found.info.mtime_ns) == (
            st.st_ino,
            st.st_dev,
            st.st_mtime_ns,
        )
        assert os.pread(found.fd, 100, 0) == b"page\n"
        assert os.get_inheritable(found.fd) is False
    finally:
        os.close(found.fd)


def test_resolver_index_name_is_index(root: Path) -> None:
    found = FileResolver(str(root)).lookup("sub", True)
    assert isinstance(found, OpenFile)
    try:
        assert found.name == "index.html"
    finally:
        os.close(found.fd)


def test_resolver_custom_index_names(root: Path) -> None:
    resolver = FileResolver(str(root), index_names=("missing.html", "page.txt"))
    found = resolver.lookup("sub", True)
    assert isinstance(found, OpenFile)
    try:
        assert found.name == "page.txt"
    finally:
        os.close(found.fd)


@pytest.mark.parametrize(
    ("relative", "slash", "expected"),
    [
        ("sub", False, NeedsSlash()),
        ("", False, NeedsSlash()),
        ("sub/missing-dir", True, NotFound()),
        ("missing", False, NotFound()),
        ("hello.txt", True, NotFound()),
        ("link-out-file", False, NotFound()),
        ("link-out-dir", False, NotFound()),
        ("link-dot", False, NotFound()),
        (".secret", False, NotFound()),
        ("../outside/secret.txt", False, NotFound()),
    ],
)
def test_resolver_not_open(root: Path, relative: str, slash: bool, expected: object) -> None:
    assert FileResolver(str(root)).lookup(relative, slash) == expected


def test_directory_without_index_is_a_directory(root: Path) -> None:
    assert FileResolver(str(root)).lookup("noindex", True) == Directory(str(root / "noindex"))


def test_options_is_204_with_allow(app: StaticHandler) -> None:
    for target in (b"/hello.txt", b"/missing", b"*"):
        response = get(app, target, b"OPTIONS")
        assert response.status == 204
        assert fields_of(response) == {"Allow": "GET, HEAD, OPTIONS"}
        assert response.body == b""
