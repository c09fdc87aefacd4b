"""The ``zerohttp`` command, run as ``python -m zerohttp`` in a subprocess: the start banner,
serving, clean exits on SIGTERM/SIGINT, and one-line errors for bad input.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_for
from serverprocs import accepts, run_cli

from zerohttp import __version__

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "examples" / "site"
BANNER = re.compile(
    r"^zerohttp (?P<version>\S+) serving (?P<root>.+) on http://127\.0\.0\.1:(?P<port>\d+)/ "
    r"\(loop: (?P<loop>\w+), body: (?P<body>.+)\)$"
)


class Running:
    """A ``python -m zerohttp`` process whose stderr is collected line by line."""

    def __init__(self, *args: str, cwd: Path = REPO) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zerohttp", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float) -> str | None:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no stderr line within {timeout} s")
        if line is not None:
            self.stderr_lines.append(line)
        return line

    def stop(self, sig: int | None, timeout: float = 10) -> tuple[int, str, str]:
        """Signal (unless None), wait for the exit; (returncode, all stderr, stdout)."""
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not exit within {timeout} s of signal {sig}")
        self.reader.join(5)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.stderr_lines.append(line)
        assert self.proc.stdout is not None
        return returncode, "\n".join(self.stderr_lines), self.proc.stdout.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def launch() -> Iterator[type[Running]]:
    started: list[Running] = []

    class Tracked(Running):
        def __init__(self, *args: str, **kwargs: Path) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    yield Tracked
    for running in started:
        running.kill()


# --- a. serving and clean exits -------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize(
    "loop_args, loop_name",
    [([], "uvloop"), (["--loop", "uvloop"], "uvloop"), (["--loop", "asyncio"], "asyncio")],
    ids=["auto", "uvloop", "asyncio"],
)
@pytest.mark.parametrize(
    "body_args, body_name", [([], "sendfile"), (["--no-sendfile"], "fallback")]
)
def test_serves_example_site_and_exits_cleanly(
    launch: type[Running],
    sig: int,
    loop_args: list[str],
    loop_name: str,
    body_args: list[str],
    body_name: str,
) -> None:
    server = launch("examples/site", "--port", "0", *loop_args, *body_args)
    banner = server.next_line(timeout=10)
    assert banner is not None, "exited before printing the banner"
    assert "serving" in banner
    assert str(SITE) in banner
    assert f"loop: {loop_name}" in banner
    assert f"body: {body_name}" in banner
    match = BANNER.match(banner)
    assert match, banner
    assert match["version"] == __version__
    assert match["root"] == os.path.realpath(SITE)
    assert match["loop"] == loop_name
    assert match["body"].split(" ")[0] == body_name
    port = int(match["port"])
    assert 0 < port < 65536
    assert f"http://127.0.0.1:{port}/" in banner

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/html")
        assert response.read() == (SITE / "index.html").read_bytes()
        conn.request("GET", "/img/pattern.png")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == (SITE / "img" / "pattern.png").read_bytes()
        # the idle keep-alive connection stays open while the signal arrives: it must be
        # closed at once, not waited for
        started = time.monotonic()
        returncode, stderr, stdout = server.stop(sig, timeout=10)
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    assert returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[0] == banner
    assert stdout == ""
    assert elapsed < 5, "an idle connection held up shutdown"


def test_sigterm_while_nobody_is_connected(launch: type[Running]) -> None:
    server = launch(str(SITE), "--port", "0", "--loop", "asyncio")
    banner = server.next_line(timeout=10)
    assert banner is not None and BANNER.match(banner), banner
    returncode, stderr, _ = server.stop(signal.SIGTERM, timeout=10)
    assert returncode == 0
    assert stderr == f"{banner}\nstopping on SIGTERM"


def test_relative_root_is_shown_resolved(launch: type[Running], tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "a.txt").write_text("A\n")
    server = launch("www", "--port", "0", cwd=tmp_path)
    banner = server.next_line(timeout=10)
    assert banner is not None
    match = BANNER.match(banner)
    assert match, banner
    assert match["root"] == os.path.realpath(tmp_path / "www")
    conn = http.client.HTTPConnection("127.0.0.1", int(match["port"]), timeout=10)
    try:
        conn.request("GET", "/a.txt")
        assert conn.getresponse().read() == b"A\n"
    finally:
        conn.close()
    returncode, stderr, _ = server.stop(signal.SIGINT)
    assert returncode == 0
    assert "Traceback" not in stderr


@pytest.mark.parametrize("body_args", [[], ["--no-sendfile"]], ids=["sendfile", "fallback"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_download_lets_it_finish(
    launch: type[Running], tmp_path: Path, sig: int, body_args: list[str]
) -> None:
    content = os.urandom(32 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(content)
    server = launch(str(tmp_path), "--port", "0", *body_args)
    banner = server.next_line(timeout=10)
    assert banner is not None
    match = BANNER.match(banner)
    assert match, banner
    port = int(match["port"])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        data = bytearray()  # not bytes: += on 32 MiB of bytes copies it all, each time
        while len(data) < 1024 * 1024:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        server.proc.send_signal(sig)
        # the server is shutting down once its listener is gone; the response is in flight
        assert wait_for(lambda: not accepts(port), 10), "the listener stayed open"
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, body = bytes(data).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == content
    returncode, stderr, _ = server.stop(None, timeout=10)
    assert returncode == 0
    assert "Traceback" not in stderr


# --- b. bad input ---------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int | None) -> str:
    """``code`` None: any failure status (argparse says 2, a ConfigError 1)."""
    assert "Traceback" not in result.stderr
    if code is None:
        assert result.returncode in (1, 2), result.stderr
    else:
        assert result.returncode == code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stderr == lines[0] + "\n"
    assert lines[0].startswith("zerohttp: error: ")
    assert len(lines[0]) > len("zerohttp: error: ")
    return lines[0]


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    line = assert_one_line_error(run_cli(str(missing), "--port", "0"), 1)
    assert str(missing) in line
    assert "does not exist" in line


def test_root_is_a_file() -> None:
    target = SITE / "index.html"
    line = assert_one_line_error(run_cli(str(target), "--port", "0"), 1)
    assert str(target) in line
    assert "not a directory" in line


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_port_in_use(busy_port: int, loop: str) -> None:
    line = assert_one_line_error(run_cli(str(SITE), "--port", str(busy_port), "--loop", loop), 1)
    assert line == (
        f"zerohttp: error: cannot listen on 127.0.0.1:{busy_port}: address already in use"
    )


def test_unknown_flag() -> None:
    line = assert_one_line_error(run_cli(str(SITE), "--bogus-flag"), 2)
    assert "--bogus-flag" in line


@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_port_out_of_range(port: str) -> None:
    line = assert_one_line_error(run_cli(str(SITE), "--port", port), 2)
    assert f"--port {port}" in line


def test_port_not_a_number() -> None:
    line = assert_one_line_error(run_cli(str(SITE), "--port", "http"), 2)
    assert "--port" in line


def test_bogus_loop() -> None:
    line = assert_one_line_error(run_cli(str(SITE), "--port", "0", "--loop", "bogus"), 2)
    assert "--loop" in line
    assert "bogus" in line


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--keepalive-timeout", "0"),
        ("--header-timeout", "-1"),
        ("--send-timeout", "nan"),
        ("--max-header-bytes", "10"),
        ("--backlog", "0"),
        ("--log-level", "loud"),
    ],
)
def test_setting_that_cannot_work(flag: str, value: str) -> None:
    line = assert_one_line_error(run_cli(str(SITE), "--port", "0", flag, value), 2)
    assert flag in line


def test_two_roots() -> None:
    assert_one_line_error(run_cli(str(SITE), str(SITE), "--port", "0"), 2)


# --- c. help and version --------------------------------------------------------------------


def test_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith("usage: zerohttp ")
    assert "--no-sendfile" in result.stdout
    assert "--loop" in result.stdout
    for choice in ("auto", "uvloop", "asyncio"):
        assert choice in result.stdout
    assert "Traceback" not in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"zerohttp {__version__}\n"
    assert result.stderr == ""
