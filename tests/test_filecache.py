"""The open-file cache: every hit is revalidated, so a file changed on disk is never stale."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import read_file_body
from helpers import fd_names

from zerohttp.config import Config
from zerohttp.message.response import RequestHead, Response
from zerohttp.static.handler import StaticHandler

PAST = time.time() - 3600


def get(app: StaticHandler, target: bytes, *headers: tuple[bytes, bytes]) -> Response:
    return app.handle(RequestHead(b"GET", target, b"1.1", ((b"host", b"x"), *headers)))


body_of = read_file_body


def write(path: Path, data: bytes, mtime: float = PAST) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write(tmp_path / "a.txt", b"first version\n")
    write(tmp_path / "b.txt", b"bee\n")
    write(tmp_path / "c.txt", b"sea\n")
    write(tmp_path / "index.html", b"<p>home</p>\n")
    (tmp_path / "outside").mkdir()
    return tmp_path


@pytest.fixture
def app(root: Path) -> Iterator[StaticHandler]:
    app = StaticHandler(Config(root=str(root), open_file_cache=2))
    yield app
    assert app.cache is not None
    app.cache.clear()


def test_hits_share_one_descriptor(app: StaticHandler) -> None:
    before = fd_names()
    bodies = [body_of(get(app, b"/a.txt")) for _ in range(20)]
    assert bodies == [b"first version\n"] * 20
    assert len(fd_names() - before) == 1
    assert app.cache is not None and len(app.cache) == 1


def test_query_strings_share_the_entry(app: StaticHandler) -> None:
    assert body_of(get(app, b"/a.txt?v=1")) == body_of(get(app, b"/a.txt?v=2"))
    assert app.cache is not None and len(app.cache) == 1


def test_edit_in_place_is_served_at_once(app: StaticHandler, root: Path) -> None:
    assert body_of(get(app, b"/a.txt")) == b"first version\n"
    write(root / "a.txt", b"second, longer version\n", PAST + 10)
    response = get(app, b"/a.txt")
    assert body_of(response) == b"second, longer version\n"


def test_same_size_new_mtime_changes_etag(app: StaticHandler, root: Path) -> None:
    first = get(app, b"/a.txt")
    etag = first.field_lines()
    body_of(first)
    write(root / "a.txt", b"FIRST VERSION\n", PAST + 5)
    second = get(app, b"/a.txt")
    assert second.field_lines() != etag
    assert body_of(second) == b"FIRST VERSION\n"


def test_replace_by_rename_keeps_in_flight_response_whole(app: StaticHandler, root: Path) -> None:
    body_of(get(app, b"/a.txt"))  # cached
    in_flight = get(app, b"/a.txt")
    replacement = root / "a.txt.new"
    write(replacement, b"replaced\n", PAST + 20)
    os.replace(replacement, root / "a.txt")
    assert body_of(get(app, b"/a.txt")) == b"replaced\n"
    assert body_of(in_flight) == b"first version\n"  # old inode, never mixed


def test_deleted_file_is_404_and_its_descriptor_closed(app: StaticHandler, root: Path) -> None:
    before = fd_names()
    body_of(get(app, b"/a.txt"))
    in_flight = get(app, b"/a.txt")
    (root / "a.txt").unlink()
    assert get(app, b"/a.txt").status == 404
    assert len(fd_names() - before) == 1  # still held by the response in flight
    body_of(in_flight)
    assert fd_names() - before == set()


def test_path_swapped_for_symlink_out_of_root_is_404(app: StaticHandler, root: Path) -> None:
    secret = root.parent / f"{root.name}-secret.txt"
    write(secret, b"secret\n")
    try:
        body_of(get(app, b"/a.txt"))
        (root / "a.txt").unlink()
        (root / "a.txt").symlink_to(secret)
        response = get(app, b"/a.txt")
        assert response.status == 404
        assert b"secret" not in response.field_lines()
    finally:
        secret.unlink()


def test_sibling_created_after_caching_is_negotiated(app: StaticHandler, root: Path) -> None:
    gzip = (b"accept-encoding", b"gzip")
    assert body_of(get(app, b"/a.txt", gzip)) == b"first version\n"
    write(root / "a.txt.gz", b"pretend gzip\n", PAST + 30)
    response = get(app, b"/a.txt", gzip)
    assert b"Content-Encoding: gzip\r\n" in response.field_lines()
    assert body_of(response) == b"pretend gzip\n"


def test_sibling_older_than_a_newer_original_is_dropped(app: StaticHandler, root: Path) -> None:
    gzip = (b"accept-encoding", b"gzip")
    write(root / "a.txt.gz", b"pretend gzip\n", PAST + 30)
    assert body_of(get(app, b"/a.txt", gzip)) == b"pretend gzip\n"
    write(root / "a.txt", b"newer original\n", PAST + 60)
    response = get(app, b"/a.txt", gzip)
    assert b"Content-Encoding" not in response.field_lines()
    assert body_of(response) == b"newer original\n"


def test_capacity_bounds_open_descriptors(app: StaticHandler) -> None:
    before = fd_names()
    for name in (b"/a.txt", b"/b.txt", b"/c.txt", b"/a.txt", b"/index.html"):
        body_of(get(app, name))
    assert app.cache is not None and len(app.cache) == 2
    assert len(fd_names() - before) == 2


def test_conditional_request_on_a_cached_entry(app: StaticHandler) -> None:
    first = get(app, b"/a.txt")
    fields = dict(
        line.split(": ", 1) for line in first.field_lines().decode().split("\r\n") if line
    )
    body_of(first)
    response = get(app, b"/a.txt", (b"if-none-match", fields["ETag"].encode()))
    assert response.status == 304
    assert response.body == b"" or body_of(response) == b""
    ranged = get(app, b"/a.txt", (b"range", b"bytes=0-4"))
    assert ranged.status == 206
    assert body_of(ranged) == b"first"


def test_future_mtime_is_not_cached(app: StaticHandler, root: Path) -> None:
    write(root / "a.txt", b"from the future\n", time.time() + 3600)
    assert body_of(get(app, b"/a.txt")) == b"from the future\n"
    assert app.cache is not None and len(app.cache) == 0


def test_cache_off_keeps_nothing_open(root: Path) -> None:
    app = StaticHandler(Config(root=str(root), open_file_cache=0))
    before = fd_names()
    for _ in range(3):
        body_of(get(app, b"/a.txt"))
    assert fd_names() - before == set()


@pytest.mark.parametrize(
    "headers",
    [
        ((b"if-none-match", b"*"),),
        ((b"if-modified-since", b"Fri, 01 Jan 2100 00:00:00 GMT"),),
        ((b"accept-encoding", b"gzip"), (b"if-none-match", b"*")),
    ],
)
def test_a_cached_304_is_the_uncached_one_rendered_once(
    app: StaticHandler, root: Path, headers: tuple[tuple[bytes, bytes], ...]
) -> None:
    uncached = StaticHandler(Config(root=str(root), open_file_cache=0))
    expected = get(uncached, b"/a.txt", *headers)
    body_of(get(app, b"/a.txt"))  # now cached
    for _ in range(2):
        response = get(app, b"/a.txt", *headers)
        assert (response.status, response.body) == (304, b"")
        assert response.rendered is not None  # the entry's rendering, not a new one
        assert response.field_lines() == expected.field_lines()
    assert expected.status == 304
