"""Shared fixtures: a real zerohttp server on 127.0.0.1, run in a background thread.

``server`` is parametrised over loop (uvloop, asyncio) x body path (sendfile, fallback), plus
a fifth variant whose connections read every request with h11 (the simple-head reader
switched off), so every end-to-end test using it runs five times and both request readers
answer the whole battery. ``start_server`` is the context manager behind it, for tests that
need their own root or configuration.

Programs and facilities some tests need beyond the Python packages are checked here, up
front, and those tests skipped with a reason when one is missing (``pytest -ra`` lists them):

- ``@pytest.mark.curl``: runs the curl binary; "curl not installed" when it is not on PATH.
- ``@pytest.mark.strace``: runs strace; "strace not installed" when it is not on PATH.
- the ``tmp_sendfile`` fixture: sendfile(2) from a file in pytest's temp directory to a
  socket must work, else "sendfile(2) does not work ...".

``.ci/run`` installs curl and refuses to run without it, so CI never skips the curl tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from zerohttp import Config, Server
from zerohttp.http import connection as protocol
from zerohttp.loops import loop_factory
from zerohttp.message.response import FileBody, Response

# External programs, found on PATH: marker -> (path or None, skip reason when missing).
CURL = shutil.which("curl")
STRACE = shutil.which("strace")
PROGRAMS = {
    "curl": (CURL, "curl not installed"),
    "strace": (STRACE, "strace not installed"),
}


def pytest_configure(config: pytest.Config) -> None:
    for marker, (_, reason) in PROGRAMS.items():
        config.addinivalue_line(
            "markers", f"{marker}: runs the {marker} binary; skipped ('{reason}') without it"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, (path, reason) in PROGRAMS.items():
        if path is None:
            for item in items:
                if item.get_closest_marker(marker) is not None:
                    item.add_marker(pytest.mark.skip(reason=reason))


def sendfile_unsupported(directory: Path) -> str | None:
    """Why sendfile(2) from a file in ``directory`` to a socket fails, or None if it works."""
    sendfile = getattr(os, "sendfile", None)
    if sendfile is None:
        return "os.sendfile is not available on this platform"
    data = b"sendfile probe\n" * 256
    probe = directory / "sendfile-probe.bin"
    probe.write_bytes(data)
    fd = os.open(probe, os.O_RDONLY)
    sender, receiver = socket.socketpair()
    try:
        sent = sendfile(sender.fileno(), fd, 0, len(data))
        receiver.settimeout(5)
        received = receiver.recv(len(data), socket.MSG_WAITALL) if sent else b""
    except OSError as exc:
        return f"sendfile(2) does not work from {directory}: {exc}"
    finally:
        os.close(fd)
        sender.close()
        receiver.close()
        probe.unlink()
    if received != data[:sent] or sent != len(data):
        return f"sendfile(2) from {directory} sent {sent} of {len(data)} bytes"
    return None


@pytest.fixture(scope="session")
def tmp_sendfile(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless sendfile(2) works from the file system pytest's temp files live on."""
    reason = sendfile_unsupported(tmp_path_factory.mktemp("sendfile-probe"))
    if reason is not None:
        pytest.skip(reason)


LOOPS = ["uvloop", "asyncio"]
BODY_PATHS = ["sendfile", "fallback"]

SIZES = {"empty.bin": 0, "one.bin": 1, "kib.bin": 1024, "ten-mib.bin": 10 * 1024 * 1024}


@dataclass
class RunningServer:
    host: str
    port: int
    root: Path
    loop_name: str
    body_path: str
    server: Server
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def call(self, func: Any, *args: Any) -> Any:
        """Run ``func(*args)`` on the server's loop thread and return its result."""
        done = threading.Event()
        result: list[Any] = []
        self.loop.call_soon_threadsafe(lambda: (result.append(func(*args)), done.set()))
        done.wait(5)
        return result[0]


@contextlib.contextmanager
def start_server(
    root: Path, loop: str = "asyncio", body_path: str = "sendfile", **config: Any
) -> Iterator[RunningServer]:
    """Serve ``root`` on a free port until the block ends."""
    _, factory = loop_factory(loop)
    cfg = Config(root=str(root), port=0, sendfile=body_path == "sendfile", **config)
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        event_loop = factory()
        asyncio.set_event_loop(event_loop)
        server = Server(cfg)
        holder["loop"] = event_loop
        holder["server"] = server
        stop = event_loop.create_future()
        holder["stop"] = stop

        async def main() -> None:
            try:
                await server.start()
            except BaseException as exc:
                holder["error"] = exc
                started.set()
                return
            started.set()
            await stop
            await server.shutdown(grace=1.0)

        try:
            event_loop.run_until_complete(main())
        finally:
            event_loop.close()

    thread = threading.Thread(target=run, name="zerohttp-test-server", daemon=True)
    thread.start()
    assert started.wait(10), "server did not start"
    if "error" in holder:
        raise holder["error"]
    server: Server = holder["server"]
    event_loop: asyncio.AbstractEventLoop = holder["loop"]
    host, port = server.addresses[0]
    try:
        yield RunningServer(
            host, port, Path(server.config.root), loop, body_path, server, event_loop
        )
    finally:
        event_loop.call_soon_threadsafe(
            lambda: holder["stop"].done() or holder["stop"].set_result(None)
        )
        thread.join(10)


def read_file_body(response: Response) -> bytes:
    """The bytes a FileBody response would send, read with pread; releases the response."""
    body = response.body
    assert isinstance(body, FileBody)
    try:
        return b"".join(
            part if isinstance(part, bytes) else os.pread(body.fd, part.length, part.start)
            for part in body.segments
        )
    finally:
        response.release()
        assert body.fd == -1


def make_site(root: Path) -> Path:
    """A site with files of every interesting size, an index, a dotfile and a nested dir."""
    root.mkdir(parents=True, exist_ok=True)
    for name, size in SIZES.items():
        (root / name).write_bytes(os.urandom(size))
    (root / "index.html").write_text("<!doctype html><title>home</title>\n")
    (root / "style.css").write_text("body { color: red }\n")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<p>sub index</p>\n")
    (root / "sub" / "page.txt").write_text("nested page\n")
    (root / "noindex").mkdir()
    (root / "noindex" / "file.txt").write_text("no index here\n")
    (root / ".secret").write_text("hidden\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("hidden too\n")
    return root


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_site(tmp_path_factory.mktemp("site") / "root")


SERVER_VARIANTS = [(lp, bp, "simple") for lp in LOOPS for bp in BODY_PATHS]
SERVER_VARIANTS.append(("uvloop", "sendfile", "h11"))


@pytest.fixture(
    scope="module",
    params=SERVER_VARIANTS,
    ids=[
        f"{lp}-{bp}" + ("-h11only" if reader == "h11" else "") for lp, bp, reader in SERVER_VARIANTS
    ],
)
def server(request: pytest.FixtureRequest, site: Path) -> Iterator[RunningServer]:
    loop, body_path, reader = request.param
    with pytest.MonkeyPatch.context() as patch:
        if reader == "h11":
            patch.setattr(protocol, "read_simple_head", lambda buffer, limit: None)
        with start_server(site, loop, body_path) as running:
            yield running
