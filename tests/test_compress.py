"""Compression done once, without sockets: which files qualify, the coders, the cache
directory (ownership, symlinks, the bound), the jobs (one per copy, never a stale copy) and
the handler's answers before and after a copy is ready."""

from __future__ import annotations

import gzip
import os
import pwd
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from backports import zstd
from conftest import read_file_body
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.config import Config
from zerohttp.errors import ConfigError
from zerohttp.message.response import RequestHead, Response
from zerohttp.static.compress import codecs, jobs, store
from zerohttp.static.compress.codecs import LEVELS, ZSTD_MAX_WINDOW_LOG, Codec, zstd_options
from zerohttp.static.compress.jobs import Compressor, Pending
from zerohttp.static.compress.policy import compressible_type, qualifies, worth_keeping
from zerohttp.static.compress.store import (
    CacheDirRefused,
    CopyKey,
    DiskStore,
    MemoryStore,
    open_private_dir,
    open_store,
)
from zerohttp.static.handler import StaticHandler
from zerohttp.static.options import StaticOptions

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(400))
ACCEPT_ALL = b"gzip, deflate, br, zstd"
MTIME_NS = 1_700_000_000_123_456_789


def decode(coding: str | None, data: bytes) -> bytes:
    if coding is None:
        return data
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return bytes(brotli.decompress(data))
    assert coding == "zstd"
    window = {zstd.DecompressionParameter.window_log_max: ZSTD_MAX_WINDOW_LOG}
    return zstd.ZstdDecompressor(options=window).decompress(data)


# --- policy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html; charset=utf-8", True),
        ("text/css; charset=utf-8", True),
        ("text/javascript; charset=utf-8", True),
        ("application/javascript", True),
        ("application/json", True),
        ("application/manifest+json; charset=utf-8", True),
        ("application/vnd.api+json", True),
        ("application/xml", True),
        ("image/svg+xml; charset=utf-8", True),
        ("application/wasm", True),
        ("font/ttf", True),
        ("font/otf", True),
        ("image/vnd.microsoft.icon", True),
        ("image/png", False),
        ("image/jpeg", False),
        ("image/webp", False),
        ("audio/ogg", False),
        ("video/mp4", False),
        ("font/woff", False),
        ("font/woff2", False),
        ("application/gzip", False),
        ("application/zstd", False),
        ("application/x-brotli", False),
        ("application/zip", False),
        ("application/octet-stream", False),
        ("application/pdf", False),
    ],
)
def test_compressible_types(content_type: str, expected: bool) -> None:
    assert compressible_type(content_type) is expected


@given(
    st.sampled_from(["text/html", "application/json", "image/png", "font/woff2", "font/ttf"]),
    st.sampled_from(["", "; charset=utf-8", ";q=1", " ; x=y"]),
    st.booleans(),
)
def test_compressible_type_ignores_case_and_parameters(
    media_type: str, parameters: str, upper: bool
) -> None:
    value = (media_type.upper() if upper else media_type) + parameters
    assert compressible_type(value) is compressible_type(media_type)


@given(st.text(max_size=40))
def test_compressible_type_never_raises(value: str) -> None:
    compressible_type(value)


def test_size_bounds() -> None:
    assert not qualifies("text/plain", 1023, 1024, 4096)
    assert qualifies("text/plain", 1024, 1024, 4096)
    assert qualifies("text/plain", 4096, 1024, 4096)
    assert not qualifies("text/plain", 4097, 1024, 4096)
    assert not qualifies("image/png", 2048, 1024, 4096)


def test_a_copy_must_save_five_percent() -> None:
    assert worth_keeping(1000, 950)
    assert not worth_keeping(1000, 951)
    assert not worth_keeping(1000, 1200)


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"compress": ("deflate",)}, "--compress 'deflate'"),
        ({"compress": ("br", "br")}, "--compress br,br"),
        ({"compress_min_size": -1}, "--compress-min-size"),
        ({"compress_min_size": 10, "compress_max_size": 5}, "--compress-max-size"),
        ({"compress_cache_size": 0}, "--compress-cache-size"),
    ],
)
def test_bad_compress_options_name_the_flag(kwargs: dict[str, object], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        StaticOptions(**kwargs)  # type: ignore[arg-type]


# --- codecs --------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", list(LEVELS))
def test_codecs_round_trip_and_shrink_text(coding: str) -> None:
    out = codecs.codec_for(coding).compress(TEXT)
    assert decode(coding, out) == TEXT
    assert len(out) < len(TEXT) / 5


@pytest.mark.parametrize("coding", list(LEVELS))
def test_streaming_equals_one_call(coding: str) -> None:
    codec = codecs.codec_for(coding)
    encoder = codec.encoder(len(TEXT))
    pieces = [encoder.feed(TEXT[i : i + 1000]) for i in range(0, len(TEXT), 1000)]
    assert decode(coding, b"".join(pieces) + encoder.finish()) == TEXT


def test_gzip_is_reproducible() -> None:
    """mtime 0 in the header: the same source gives the same bytes (and the same ETag)."""
    first = Codec("gzip", 9).compress(TEXT)
    time.sleep(1.1)
    assert Codec("gzip", 9).compress(TEXT) == first
    assert first[4:8] == b"\0\0\0\0"


@pytest.mark.parametrize("level", range(1, 23))
def test_zstd_window_is_at_most_8_mib(level: int) -> None:
    """RFC 9659 §3, for every level."""
    assert zstd_options(level)[zstd.CompressionParameter.window_log] <= ZSTD_MAX_WINDOW_LOG


def test_zstd_frame_decodes_with_an_8_mib_window() -> None:
    """Level 22 would pick a 128 MiB window for this source; a decoder that allows at most
    8 MiB (``decode``) reads the frame, and one allowing less refuses it, so the window is
    the frame's own and not smaller by chance."""
    data = os.urandom(1 << 16) * 160  # 10 MiB, repeats at 64 KiB: quick at any level
    out = Codec("zstd", 22).compress(data)
    assert decode("zstd", out) == data
    small = {zstd.DecompressionParameter.window_log_max: ZSTD_MAX_WINDOW_LOG - 1}
    with pytest.raises(zstd.ZstdError):
        zstd.ZstdDecompressor(options=small).decompress(out)
    assert zstd.get_frame_info(out).decompressed_size == len(data)


# --- the cache directory -------------------------------------------------------------------


def key_for(path: Path, coding: str = "gzip", level: int = 9) -> CopyKey:
    st = path.stat()
    return CopyKey(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, coding, level)


def put(target: store.Store, key: CopyKey, data: bytes) -> bool:
    writer = target.writer(key)
    writer.write(data)
    return writer.commit()


def test_directory_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    fd = open_private_dir(str(path))
    os.close(fd)
    assert path.stat().st_mode & 0o777 == 0o700


def test_group_and_other_access_is_taken_away(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    path.mkdir(mode=0o777)
    path.chmod(0o777)
    os.close(open_private_dir(str(path)))
    assert path.stat().st_mode & 0o777 == 0o700


def test_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody").pw_uid
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    os.chown(path, nobody, -1)
    with pytest.raises(CacheDirRefused, match="belongs to uid"):
        open_private_dir(str(path))
    with pytest.raises(CacheDirRefused):
        open_store(str(path), 1 << 20)


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "cache"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(CacheDirRefused, match="symlink"):
        open_private_dir(str(link))


def test_unsafe_default_directory_falls_back_to_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone planted the default name as a symlink: never followed, copies stay in memory."""
    link = tmp_path / "planted"
    link.symlink_to(tmp_path, target_is_directory=True)
    monkeypatch.setattr(store, "default_directory", lambda: str(link))
    chosen = open_store("", 1 << 20)
    assert isinstance(chosen, MemoryStore)
    assert "symlink" in chosen.notice and "memory" in chosen.notice


def test_unwritable_directory_falls_back_to_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(self: DiskStore) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(DiskStore, "_probe", read_only)
    chosen = open_store(str(tmp_path / "cache"), 1 << 20)
    assert isinstance(chosen, MemoryStore)
    assert chosen.notice.count("\n") == 0 and "not writable" in chosen.notice


def test_no_writable_temporary_directory_falls_back_to_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read-only container: ``tempfile.gettempdir()`` itself raises (found in Docker)."""

    def none_writable() -> str:
        raise FileNotFoundError(2, "No usable temporary directory found")

    monkeypatch.setattr(store.tempfile, "gettempdir", none_writable)
    chosen = open_store("", 1 << 20)
    assert isinstance(chosen, MemoryStore) and "memory" in chosen.notice


def test_planted_symlink_inside_is_never_followed(tmp_path: Path) -> None:
    source = tmp_path / "app.js"
    source.write_bytes(TEXT)
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    disk = DiskStore(str(tmp_path / "cache"), 1 << 20)
    key = key_for(source)
    (tmp_path / "cache" / key.name).symlink_to(victim)
    assert disk.open(key) is None  # O_NOFOLLOW: not served through the link
    assert put(disk, key, b"copy")
    assert victim.read_bytes() == b"do not touch\n"
    assert not (tmp_path / "cache" / key.name).is_symlink()
    copy = disk.open(key)
    assert copy is not None
    assert os.pread(copy.fd, 10, 0) == b"copy"
    os.close(copy.fd)
    disk.close()


def test_bound_holds_least_recently_used_out_first(tmp_path: Path) -> None:
    disk = DiskStore(str(tmp_path / "cache"), 10_000)
    keys = []
    for i in range(5):
        source = tmp_path / f"f{i}.js"
        source.write_bytes(TEXT + bytes([i]))
        keys.append(key_for(source))
    put(disk, keys[0], b"a" * 3000)
    put(disk, keys[1], b"b" * 3000)
    put(disk, keys[2], b"c" * 3000)
    copy = disk.open(keys[0])  # used: now the most recent
    assert copy is not None
    os.close(copy.fd)
    put(disk, keys[3], b"d" * 3000)  # 12000 > 10000: keys[1] goes
    on_disk = {p.name for p in (tmp_path / "cache").iterdir()}
    assert on_disk == {keys[0].name, keys[2].name, keys[3].name}
    assert sum(p.stat().st_size for p in (tmp_path / "cache").iterdir()) <= 10_000
    assert disk.total() == 9000
    assert not put(disk, keys[4], b"e" * 20_000)  # larger than the whole bound: not kept
    assert disk.open(keys[4]) is None
    disk.close()


def test_bound_counts_copies_already_on_disk(tmp_path: Path) -> None:
    """A restart (or another worker) finds the copies there and counts them."""
    first = DiskStore(str(tmp_path / "cache"), 10_000)
    sources = []
    for i in range(3):
        source = tmp_path / f"f{i}.js"
        source.write_bytes(TEXT + bytes([i]))
        sources.append(key_for(source))
        put(first, sources[-1], b"x" * 4000)
    first.close()
    second = DiskStore(str(tmp_path / "cache"), 10_000)
    assert second.total() <= 10_000
    assert len(list((tmp_path / "cache").iterdir())) == 2
    copy = second.open(sources[2])  # the newest survived
    assert copy is not None
    os.close(copy.fd)
    second.close()


def test_memory_store_bound_and_sendable_descriptor() -> None:
    memory = MemoryStore(5000)
    keys = [CopyKey(1, i, 100, 1, 1, "br", 10) for i in range(3)]
    put(memory, keys[0], b"a" * 2000)
    put(memory, keys[1], b"b" * 2000)
    put(memory, keys[2], b"c" * 2000)
    assert memory.open(keys[0]) is None
    copy = memory.open(keys[2])
    assert copy is not None and copy.path == "" and copy.size == 2000
    assert os.pread(copy.fd, 3, 0) == b"ccc"
    os.close(copy.fd)
    assert memory.total() == 4000
    memory.close()


# --- jobs ----------------------------------------------------------------------------------


@pytest.fixture
def gate() -> Iterator[tuple[Codec, threading.Event]]:
    codec = Codec("gzip", 9)
    event = threading.Event()
    original = Codec.encoder

    def held(self: Codec, size: int) -> codecs.Encoder:
        inner = original(self, size)

        class Held:
            def feed(self, data: bytes) -> bytes:
                assert event.wait(10)
                return inner.feed(data)

            def finish(self) -> bytes:
                return inner.finish()

        return Held()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Codec, "encoder", held)
        yield codec, event
    event.set()


def wait_idle(compressor: Compressor) -> None:
    deadline = time.monotonic() + 10
    while compressor.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert compressor.running() == 0


def test_one_job_per_copy_and_no_wait(tmp_path: Path, gate: tuple[Codec, threading.Event]) -> None:
    codec, release = gate
    source = tmp_path / "app.js"
    source.write_bytes(TEXT)
    compressor = Compressor(lambda: DiskStore(str(tmp_path / "cache"), 1 << 20))
    key = key_for(source)
    fd = os.open(source, os.O_RDONLY)
    try:
        started = time.monotonic()
        assert compressor.copy_for(key, codec, fd) is Pending.RUNNING
        assert compressor.copy_for(key, codec, fd) is Pending.RUNNING
        assert time.monotonic() - started < 0.5  # never waited for the job
        assert compressor.started == 1
        release.set()
        wait_idle(compressor)
        copy = compressor.copy_for(key, codec, fd)
        assert not isinstance(copy, Pending)
        assert gzip.decompress(os.pread(copy.fd, copy.size, 0)) == TEXT
        os.close(copy.fd)
        assert compressor.started == 1
    finally:
        os.close(fd)
        compressor.close()


def test_source_changed_during_compression_is_dropped(
    tmp_path: Path, gate: tuple[Codec, threading.Event]
) -> None:
    codec, release = gate
    source = tmp_path / "app.js"
    source.write_bytes(TEXT)
    compressor = Compressor(lambda: DiskStore(str(tmp_path / "cache"), 1 << 20))
    key = key_for(source)
    fd = os.open(source, os.O_RDONLY)
    try:
        assert compressor.copy_for(key, codec, fd) is Pending.RUNNING
        with open(source, "r+b") as f:  # edited in place while the job reads it
            f.write(b"EDITED")
        release.set()
        wait_idle(compressor)
        assert compressor.kept == 0
        assert list((tmp_path / "cache").iterdir()) == []
        # the old key still has no copy: a new job, which sees the change again
        assert compressor.copy_for(key, codec, fd) is Pending.RUNNING
        wait_idle(compressor)
        assert compressor.kept == 0
    finally:
        os.close(fd)
        compressor.close()


def test_incompressible_file_is_remembered_not_retried(tmp_path: Path) -> None:
    source = tmp_path / "noise.txt"
    source.write_bytes(os.urandom(50_000))
    compressor = Compressor(lambda: DiskStore(str(tmp_path / "cache"), 1 << 20))
    key = key_for(source, "br", 10)
    fd = os.open(source, os.O_RDONLY)
    try:
        assert compressor.copy_for(key, Codec("br", 10), fd) is Pending.RUNNING
        wait_idle(compressor)
        assert compressor.copy_for(key, Codec("br", 10), fd) is Pending.USELESS
        assert compressor.started == 1
        assert list((tmp_path / "cache").iterdir()) == []
    finally:
        os.close(fd)
        compressor.close()


def test_close_ends_running_jobs_without_a_copy(
    tmp_path: Path, gate: tuple[Codec, threading.Event]
) -> None:
    codec, release = gate
    source = tmp_path / "app.js"
    source.write_bytes(TEXT * 20)
    compressor = Compressor(lambda: DiskStore(str(tmp_path / "cache"), 1 << 20))
    fd = os.open(source, os.O_RDONLY)
    try:
        compressor.copy_for(key_for(source), codec, fd)
        threading.Timer(0.2, release.set).start()
        compressor.close()
        assert compressor.kept == 0
        assert list((tmp_path / "cache").iterdir()) == []
    finally:
        os.close(fd)


# --- the handler ---------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "app.js").write_bytes(TEXT)
    (root / "logo.png").write_bytes(TEXT)  # text inside, but an image type: never compressed
    (root / "small.css").write_bytes(b"body{}\n")
    (root / "page.html").write_bytes(TEXT)
    (root / "page.html.br").write_bytes(brotli.compress(TEXT))
    for name in ("app.js", "logo.png", "small.css", "page.html", "page.html.br"):
        os.utime(root / name, ns=(MTIME_NS, MTIME_NS))
    return root


@pytest.fixture
def handler(site: Path, tmp_path: Path) -> Iterator[StaticHandler]:
    h = StaticHandler(Config(root=str(site), compress_cache=str(tmp_path / "cache")))
    yield h
    h.close()
    if h.cache is not None:
        h.cache.clear()


def get(handler: StaticHandler, target: bytes, *headers: tuple[bytes, bytes]) -> Response:
    return handler.handle(RequestHead(b"GET", target, b"1.1", headers))


def ready(handler: StaticHandler, target: bytes, accept: bytes = ACCEPT_ALL) -> Response:
    """The response once the copy for ``accept`` is ready."""
    first = get(handler, target, (b"accept-encoding", accept))
    first.release()
    assert handler.compressor is not None
    wait_idle(handler.compressor)
    return get(handler, target, (b"accept-encoding", accept))


def test_first_answer_is_identity_then_the_copy(handler: StaticHandler) -> None:
    first = get(handler, b"/app.js", (b"accept-encoding", ACCEPT_ALL))
    assert first.field("Content-Encoding") is None
    assert first.field("Vary") == "Accept-Encoding"
    identity_etag = first.field("ETag")
    assert read_file_body(first) == TEXT
    assert handler.compressor is not None
    wait_idle(handler.compressor)
    for _ in range(2):  # a miss, then a hit in the open-file cache
        second = get(handler, b"/app.js", (b"accept-encoding", ACCEPT_ALL))
        assert second.field("Content-Encoding") == "zstd"
        assert second.field("Vary") == "Accept-Encoding"
        assert second.field("ETag") not in (None, identity_etag)
        assert (second.field("ETag") or "").endswith(f'-zstd-z{LEVELS["zstd"]}"')
        body = read_file_body(second)
        assert int(second.field("Content-Length") or "0") == len(body)
        assert decode("zstd", body) == TEXT
    assert handler.compressor.started == 1


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        (b"gzip", "gzip"),
        (b"br", "br"),
        (b"gzip, br", "br"),  # the server's order: zstd, br, gzip
        (b"gzip;q=1, br;q=0.5", "gzip"),
        (b"zstd;q=0, br;q=0, gzip", "gzip"),
        (b"*", "zstd"),
    ],
)
def test_the_coding_follows_the_preference(
    handler: StaticHandler, accept: bytes, coding: str
) -> None:
    response = ready(handler, b"/app.js", accept)
    assert response.field("Content-Encoding") == coding
    assert decode(coding, read_file_body(response)) == TEXT


@pytest.mark.parametrize("accept", [None, b"identity", b"deflate", b"gzip;q=0"])
def test_identity_when_nothing_acceptable(handler: StaticHandler, accept: bytes | None) -> None:
    headers = [(b"accept-encoding", accept)] if accept is not None else []
    response = get(handler, b"/app.js", *headers)
    assert response.field("Content-Encoding") is None
    assert response.field("Vary") == "Accept-Encoding"
    assert read_file_body(response) == TEXT
    assert handler.compressor is not None and handler.compressor.started == 0


@pytest.mark.parametrize("target", [b"/logo.png", b"/small.css"])
def test_files_that_do_not_qualify_are_not_compressed(
    handler: StaticHandler, target: bytes
) -> None:
    response = ready(handler, target)
    assert response.field("Content-Encoding") is None
    assert response.field("Vary") is None
    response.release()
    assert handler.compressor is not None and handler.compressor.started == 0


def test_precompressed_sibling_wins(handler: StaticHandler) -> None:
    response = get(handler, b"/page.html", (b"accept-encoding", ACCEPT_ALL))
    assert response.field("Content-Encoding") == "br"
    assert (response.field("ETag") or "").endswith('-br"')  # the sibling's, not a copy's
    assert decode("br", read_file_body(response)) == TEXT
    assert handler.compressor is not None and handler.compressor.started == 0
    # a coding the sibling lacks: a generated copy
    gz = ready(handler, b"/page.html", b"gzip")
    assert gz.field("Content-Encoding") == "gzip"
    assert decode("gzip", read_file_body(gz)) == TEXT


def test_range_is_of_the_compressed_bytes(handler: StaticHandler) -> None:
    whole = ready(handler, b"/app.js", b"gzip")
    compressed = read_file_body(whole)
    etag = whole.field("ETag") or ""
    single = get(handler, b"/app.js", (b"accept-encoding", b"gzip"), (b"range", b"bytes=10-19"))
    assert single.status == 206
    assert single.field("Content-Range") == f"bytes 10-19/{len(compressed)}"
    assert single.field("Content-Encoding") == "gzip"
    assert read_file_body(single) == compressed[10:20]
    multi = get(handler, b"/app.js", (b"accept-encoding", b"gzip"), (b"range", b"bytes=0-4,-5"))
    assert multi.status == 206
    body = read_file_body(multi)
    assert compressed[:5] in body and compressed[-5:] in body
    assert f"bytes 0-4/{len(compressed)}".encode() in body
    cond = get(
        handler, b"/app.js", (b"accept-encoding", b"gzip"), (b"if-none-match", etag.encode())
    )
    assert cond.status == 304
    assert cond.field("ETag") == etag and cond.field("Vary") == "Accept-Encoding"
    stale = get(
        handler,
        b"/app.js",
        (b"accept-encoding", b"gzip"),
        (b"range", b"bytes=0-9"),
        (b"if-range", etag.encode()),
    )
    assert stale.status == 206
    stale.release()


def test_head_has_the_copy_fields(handler: StaticHandler) -> None:
    body = read_file_body(ready(handler, b"/app.js", b"br"))
    head = handler.handle(RequestHead(b"HEAD", b"/app.js", b"1.1", ((b"accept-encoding", b"br"),)))
    assert head.field("Content-Encoding") == "br"
    assert head.field("Content-Length") == str(len(body))
    assert head.body_for(b"HEAD") == b""
    head.release()


def test_edited_source_is_never_answered_with_the_old_copy(
    handler: StaticHandler, site: Path
) -> None:
    ready(handler, b"/app.js", b"gzip").release()
    new = TEXT.replace(b"fox", b"cat")
    (site / "app.js").write_bytes(new)  # in place: same inode, new mtime
    response = get(handler, b"/app.js", (b"accept-encoding", b"gzip"))
    assert decode(response.field("Content-Encoding"), read_file_body(response)) == new
    replacement = site / "app.js.tmp"
    newer = TEXT.replace(b"dog", b"emu")
    replacement.write_bytes(newer)
    os.replace(replacement, site / "app.js")  # replaced: a new inode
    for _ in range(3):
        response = get(handler, b"/app.js", (b"accept-encoding", b"gzip"))
        assert decode(response.field("Content-Encoding"), read_file_body(response)) == newer
        assert handler.compressor is not None
        wait_idle(handler.compressor)
    (site / "app.js").unlink()
    assert get(handler, b"/app.js", (b"accept-encoding", b"gzip")).status == 404


def test_edit_that_restores_the_mtime_is_still_seen(handler: StaticHandler, site: Path) -> None:
    """Same size, same mtime: the ctime in the key still tells the versions apart."""
    ready(handler, b"/app.js", b"gzip").release()
    new = TEXT.replace(b"fox", b"cat")
    (site / "app.js").write_bytes(new)
    os.utime(site / "app.js", ns=(MTIME_NS, MTIME_NS))
    response = get(handler, b"/app.js", (b"accept-encoding", b"gzip"))
    assert decode(response.field("Content-Encoding"), read_file_body(response)) == new


def test_compress_none_is_off(site: Path, tmp_path: Path) -> None:
    h = StaticHandler(Config(root=str(site), compress=(), compress_cache=str(tmp_path / "c")))
    assert h.compressor is None
    response = get(h, b"/app.js", (b"accept-encoding", ACCEPT_ALL))
    assert response.field("Content-Encoding") is None
    assert response.field("Vary") is None
    response.release()
    assert not (tmp_path / "c").exists()
    if h.cache is not None:
        h.cache.clear()


def test_refused_cache_directory_is_a_config_error_at_start(site: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    h = StaticHandler(Config(root=str(site), compress_cache=str(link)))
    with pytest.raises(ConfigError, match="--compress-cache"):
        h.prepare()
    h.close()


def test_a_late_refusal_turns_compression_off(
    site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ASGI app opens the cache at its first request: a problem is logged, not raised."""
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    h = StaticHandler(Config(root=str(site), compress_cache=str(link)))
    response = get(h, b"/app.js", (b"accept-encoding", ACCEPT_ALL))
    assert response.status == 200 and response.field("Content-Encoding") is None
    response.release()
    assert "compression off" in caplog.text
    h.close()
    if h.cache is not None:
        h.cache.clear()


def test_default_pool_leaves_cpus_for_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert jobs.default_workers() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert jobs.default_workers() == 4


def test_zlib_is_what_gzip_uses() -> None:
    """gzip copies are plain RFC 1952 members (any client's gzip decoder reads them)."""
    out = Codec("gzip", 6).compress(TEXT)
    assert zlib.decompress(out, 16 + zlib.MAX_WBITS) == TEXT
