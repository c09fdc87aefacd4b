"""Compression over real sockets: curl, httpx and headless Chromium decode the same bytes;
a warm compressed response goes out by sendfile from the cached copy; an edit under load
is never answered with old bytes; the cache bound; a read-only or unsafe cache directory;
the first request is answered at once while exactly one job runs."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import RunningServer, start_server
from helpers import wait_for
from test_compress import ACCEPT_ALL, decode, wait_idle

from zerohttp.errors import ConfigError
from zerohttp.static.compress.codecs import LEVELS, Codec
from zerohttp.static.handler import StaticHandler

REAL_SENDFILE = os.sendfile
MTIME_NS = 1_700_000_000_000_000_000
JS = b"".join(
    b"function f%d(a, b) { return a + b * %d; } // helper number %d\n" % (i, i, i)
    for i in range(3000)
)
CSS = b"".join(b".c%d { color: #%06x; margin: %dpx; }\n" % (i, i * 77, i % 40) for i in range(3000))
HTML_PAGE = (
    b"<!doctype html><html><head><title>t</title></head><body>"
    + b"<p>para</p>\n" * 2000
    + b"</body></html>\n"
)
CHECK_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>check</title></head>
<body><pre id="out">pending</pre><script>
async function digest(path) {
  const r = await fetch(path, {cache: "no-store"});
  const b = await r.arrayBuffer();
  const h = await crypto.subtle.digest("SHA-256", b);
  const hex = Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, "0"));
  return path + " " + hex.join("");
}
(async () => {
  const lines = [];
  for (const p of ["/app.js", "/style.css", "/page.html"]) lines.push(await digest(p));
  for (const e of performance.getEntriesByType("resource"))
    lines.push(["size", new URL(e.name).pathname, e.encodedBodySize, e.decodedBodySize].join(" "));
  document.getElementById("out").textContent = lines.join("\\n");
})();
</script></body></html>
"""
FILES = {"app.js": JS, "style.css": CSS, "page.html": HTML_PAGE}


def make_site(root: Path) -> Path:
    root.mkdir(parents=True)
    for name, data in FILES.items():
        (root / name).write_bytes(data)
        os.utime(root / name, ns=(MTIME_NS, MTIME_NS))
    (root / "check.html").write_bytes(CHECK_PAGE)
    return root


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RunningServer]:
    site = make_site(tmp_path / "site")
    with start_server(site, "uvloop", compress_cache=str(tmp_path / "cache")) as running:
        yield running


def handler_of(running: RunningServer) -> StaticHandler:
    (handler,) = running.server.static_handlers
    return handler


def warm(running: RunningServer, codings: tuple[str, ...] = ("zstd", "br", "gzip")) -> None:
    """Ask for every file in every coding, and wait until the copies are made."""
    with httpx.Client(base_url=running.base_url) as client:
        for name in FILES:
            for coding in codings:
                client.get("/" + name, headers={"accept-encoding": coding})
    compressor = handler_of(running).compressor
    assert compressor is not None
    wait_idle(compressor)


@pytest.mark.curl
def test_curl_compressed_gets_identical_content(served: RunningServer, tmp_path: Path) -> None:
    warm(served)
    for name, data in FILES.items():
        out, head = tmp_path / ("curl-" + name), tmp_path / ("head-" + name)
        subprocess.run(
            [
                "curl",
                "--compressed",
                "-sS",
                "-o",
                str(out),
                "-D",
                str(head),
                served.url("/" + name),
            ],
            check=True,
            timeout=20,
        )
        assert out.read_bytes() == data
        headers = head.read_text().lower()
        assert re.search(r"^content-encoding: (zstd|br|gzip)", headers, re.M), headers


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
def test_httpx_gets_identical_content(served: RunningServer, coding: str) -> None:
    warm(served, (coding,))
    with httpx.Client(base_url=served.base_url) as client:
        for name, data in FILES.items():
            response = client.get("/" + name, headers={"accept-encoding": coding})
            assert response.headers["content-encoding"] == coding
            assert response.headers["vary"] == "Accept-Encoding"
            assert int(response.headers["content-length"]) < len(data)
            assert response.content == data


def test_chromium_gets_identical_content(served: RunningServer, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium")
    warm(served)
    profile = tempfile.mkdtemp(dir=tmp_path)
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            served.url("/check.html"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    dom = result.stdout
    for name, data in FILES.items():
        assert f"/{name} {hashlib.sha256(data).hexdigest()}" in dom, dom + result.stderr[-2000:]
        sizes = re.search(rf"size /{re.escape(name)} (\d+) (\d+)", dom)
        assert sizes is not None, dom
        encoded, decoded = int(sizes.group(1)), int(sizes.group(2))
        assert decoded == len(data)
        assert encoded < decoded / 3  # it really came compressed


class Spy:
    """Records the inode each ``os.sendfile`` call reads from, and the bytes it sent."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []  # [inode, bytes sent], the call noted before it runs
        self.lock = threading.Lock()

    def __call__(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        call = [os.fstat(in_fd).st_ino, 0]
        with self.lock:  # before the bytes go: the client may read them before we return
            self.calls.append(call)
        call[1] = REAL_SENDFILE(out_fd, in_fd, offset, count)
        return call[1]

    def sent(self) -> int:
        with self.lock:
            return sum(sent for _, sent in self.calls)


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
def test_warm_compressed_response_goes_out_by_sendfile(
    served: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coding: str
) -> None:
    warm(served, (coding,))
    copies = {p.stat().st_ino: p for p in (tmp_path / "cache").iterdir()}
    spy = Spy()
    monkeypatch.setattr(os, "sendfile", spy)
    conn = http.client.HTTPConnection(served.host, served.port, timeout=20)
    try:
        for _ in range(3):  # a miss in the open-file cache, then hits
            spy.calls.clear()
            conn.request("GET", "/app.js", headers={"Accept-Encoding": coding})
            response = conn.getresponse()
            body = response.read()
            assert response.getheader("Content-Encoding") == coding
            assert decode(coding, body) == JS
            assert spy.calls, "no sendfile call"
            inodes = {inode for inode, _ in spy.calls}
            assert len(inodes) == 1 and inodes <= copies.keys()
            assert copies[inodes.pop()].name.endswith(f".{coding}{LEVELS[coding]}")
            size = len(body)
            assert wait_for(lambda: spy.sent() == size, 5)  # noqa: B023 - waited for here
    finally:
        conn.close()


def test_first_request_is_answered_at_once_and_one_job_runs(
    served: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    original = Codec.encoder

    def held(self: Codec, size: int) -> object:
        inner = original(self, size)

        class Held:
            def feed(self, data: bytes) -> bytes:
                release.wait(20)
                return inner.feed(data)

            def finish(self) -> bytes:
                return inner.finish()

        return Held()

    monkeypatch.setattr(Codec, "encoder", held)
    results: list[tuple[float, str | None, bytes]] = []

    def fetch() -> None:
        started = time.monotonic()
        with httpx.Client(base_url=served.base_url) as client:
            r = client.get("/app.js", headers={"accept-encoding": "gzip"})
        results.append((time.monotonic() - started, r.headers.get("content-encoding"), r.content))

    try:
        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        assert len(results) == 8
        for elapsed, encoding, body in results:
            assert encoding is None and body == JS
            assert elapsed < 5  # not held behind the job (which waits up to 20 s)
        compressor = handler_of(served).compressor
        assert compressor is not None
        assert compressor.started == 1
        assert compressor.running() == 1
    finally:
        release.set()
    wait_idle(compressor)
    with httpx.Client(base_url=served.base_url) as client:
        r = client.get("/app.js", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.content == JS


def test_edit_under_load_never_answers_old_bytes(served: RunningServer) -> None:
    """Clients note the version published before each request; no answer is older."""
    versions = [JS.replace(b"helper", b"v%04d" % i) for i in range(16)]
    index = {hashlib.sha256(v).digest(): i for i, v in enumerate(versions)}
    index[hashlib.sha256(JS).digest()] = -1
    published = [-1]
    stop = threading.Event()
    errors: list[str] = []
    seen: list[tuple[str | None, int]] = []
    path = served.root / "app.js"

    def client(coding: str) -> None:
        with httpx.Client(base_url=served.base_url) as c:
            while not stop.is_set():
                floor = published[0]
                r = c.get("/app.js", headers={"accept-encoding": coding})
                got = index.get(hashlib.sha256(r.content).digest())
                if got is None:
                    errors.append(f"{coding}: bytes of no version ({len(r.content)} bytes)")
                elif got < floor:
                    errors.append(f"{coding}: version {got} after {floor} was published")
                seen.append((r.headers.get("content-encoding"), got or 0))

    threads = [
        threading.Thread(target=client, args=(c,))
        for c in ("zstd", "br", "gzip", ACCEPT_ALL.decode())
    ]
    for t in threads:
        t.start()
    try:
        for i, version in enumerate(versions):
            temp = path.with_name(".app.js.tmp")
            temp.write_bytes(version)
            os.replace(temp, path)
            published[0] = i
            # some versions live long enough for their copies, the others not
            time.sleep(0.8 if i % 3 == 0 else 0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not errors, errors[:5]
    assert any(encoding is not None for encoding, _ in seen), "never compressed under load"
    compressor = handler_of(served).compressor
    assert compressor is not None
    wait_idle(compressor)
    with httpx.Client(base_url=served.base_url) as c:
        r = c.get("/app.js", headers={"accept-encoding": "gzip"})
        assert r.headers.get("content-encoding") == "gzip" and r.content == versions[-1]


def test_cache_bound_holds(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for i in range(40):
        (site / f"f{i}.js").write_bytes(JS.replace(b"helper", b"h%03d" % i))
    cache = tmp_path / "cache"
    bound = 60_000
    with start_server(site, compress_cache=str(cache), compress_cache_size=bound) as running:
        compressor = handler_of(running).compressor
        assert compressor is not None
        with httpx.Client(base_url=running.base_url) as client:
            for _ in range(2):
                for i in range(40):
                    for coding in ("gzip", "br"):
                        client.get(f"/f{i}.js", headers={"accept-encoding": coding})
                    wait_idle(compressor)
                    assert sum(p.stat().st_size for p in cache.iterdir()) <= bound
        assert compressor.kept > bound // 10_000  # copies of about 4-9 KB: many were made
        files = list(cache.iterdir())
        assert len(files) >= 3 and sum(p.stat().st_size for p in files) <= bound


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_cache_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    import pwd

    site = make_site(tmp_path / "site")
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, pwd.getpwnam("nobody").pw_uid, -1)
    refused = pytest.raises(ConfigError, match=r"--compress-cache.*belongs to uid")
    with refused, start_server(site, compress_cache=str(cache)):
        pass


def test_symlinked_cache_directory_is_refused(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cache").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    refused = pytest.raises(ConfigError, match=r"--compress-cache.*symlink")
    with refused, start_server(site, compress_cache=str(tmp_path / "cache")):
        pass
    assert list((tmp_path / "elsewhere").iterdir()) == []


BANNER = re.compile(r"on http://127\.0\.0\.1:(\d+)/")


def test_read_only_cache_directory_keeps_copies_in_memory(tmp_path: Path) -> None:
    """A read-only file system (a mount namespace of its own): one line at start, copies in
    memory, still compressed and still sent."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root for a read-only mount")
    site = make_site(tmp_path / "site")
    cache = tmp_path / "ro-cache"
    cache.mkdir(mode=0o700)
    log = tmp_path / "server.log"
    command = (
        f"mount -t tmpfs -o ro,mode=0700 tmpfs {cache} && exec {sys.executable} -m zerohttp"
        f" {site} --port 0 --compress-cache {cache}"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", command], stdout=out, stderr=out, env=env
        )
    try:
        deadline = time.monotonic() + 30
        while not BANNER.search(log.read_text()):
            if proc.poll() is not None:
                if "mount" in log.read_text() or "unshare" in log.read_text():
                    pytest.skip("no private mounts here: " + log.read_text())
                pytest.fail(log.read_text())
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        output = log.read_text()
        port = int(BANNER.search(output).group(1))  # type: ignore[union-attr]
        notices = [line for line in output.splitlines() if "compression cache" in line]
        assert len(notices) == 1 and "not writable" in notices[0] and "memory" in notices[0]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            client.get("/app.js", headers={"accept-encoding": "br"})
            for _ in range(100):
                r = client.get("/app.js", headers={"accept-encoding": "br"})
                if r.headers.get("content-encoding") == "br":
                    break
                time.sleep(0.05)
            assert r.headers.get("content-encoding") == "br" and r.content == JS
            compressed = bytes(brotli_raw(client))
            headers = {"accept-encoding": "br", "range": "bytes=0-3"}
            with client.stream("GET", "/app.js", headers=headers) as ranged:
                part = b"".join(ranged.iter_raw())
            assert ranged.status_code == 206 and part == compressed[:4]
    finally:
        proc.terminate()
        proc.wait(10)
    assert list(cache.iterdir()) == []  # the mount is gone with its namespace; nothing leaked


def brotli_raw(client: httpx.Client) -> bytes:
    """The br bytes of /app.js as sent (httpx would decode them)."""
    with client.stream("GET", "/app.js", headers={"accept-encoding": "br"}) as response:
        assert response.headers["content-encoding"] == "br"
        return b"".join(response.iter_raw())


def test_staticfiles_compresses_too(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from zerohttp import StaticFiles

    site = make_site(tmp_path / "site")
    app = StaticFiles(directory=site, compress_cache=str(tmp_path / "cache"))
    with TestClient(app) as client:
        first = client.get("/app.js", headers={"accept-encoding": "br"})
        assert first.headers.get("content-encoding") is None and first.content == JS
        compressor = app.handler.compressor
        assert compressor is not None
        wait_idle(compressor)
        second = client.get("/app.js", headers={"accept-encoding": "br"})
        assert second.headers["content-encoding"] == "br" and second.content == JS
        assert second.headers["vary"] == "Accept-Encoding"
    app.handler.close()


async def plain_app(scope: object, receive: object, send: object) -> None:
    """An application that never answers: only the mount is asked here."""


def test_a_mount_beside_an_app_compresses_too(tmp_path: Path) -> None:
    """``--mount`` builds its own static handler: it compresses, and its copies go out
    with their own ETag and Vary like ROOT's."""
    site = make_site(tmp_path / "site")
    with start_server(
        tmp_path,
        "uvloop",
        app=plain_app,
        lifespan="off",
        mount=(f"/static={site}",),
        compress_cache=str(tmp_path / "cache"),
    ) as running:
        (handler,) = running.server.static_handlers
        assert handler.compressor is not None
        with httpx.Client(base_url=running.base_url) as client:
            client.get("/static/app.js", headers={"accept-encoding": "br"})
            wait_idle(handler.compressor)
            response = client.get("/static/app.js", headers={"accept-encoding": "br"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["etag"].endswith(f'-br-z{LEVELS["br"]}"')
        assert response.content == JS  # httpx decoded it
