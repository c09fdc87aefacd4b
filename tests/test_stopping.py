"""Stopping: what the server says on Ctrl-C (that it stops, and what it waits for), and the
Python API's ``zerohttp.run``, which returns on Ctrl-C without a traceback, as the CLI does.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from serverprocs import REPO
from test_cli import BANNER, Running

#: an application whose lifespan startup never ends: Ctrl-C comes while run() starts it,
#: before the server has its own SIGINT handler
SLOW_START = """
import sys
import zerohttp

async def app(scope, receive, send):
    await receive()
    print("starting", flush=True)
    await __import__("asyncio").Event().wait()

zerohttp.run(zerohttp.Config(app=app, lifespan="on", port=0, loop=sys.argv[1]))
print("returned", flush=True)
"""

#: serves until SIGINT, as examples/embed_api.py does
SERVING = """
import sys
import zerohttp

def started(server):
    print("serving", server.port, flush=True)

zerohttp.run(zerohttp.Config(root=sys.argv[2], port=0, loop=sys.argv[1]), on_started=started)
print("returned", flush=True)
"""


def run_script(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("script", [SLOW_START, SERVING], ids=["while-starting", "serving"])
def test_python_api_returns_on_ctrl_c(loop: str, script: str, tmp_path: Path) -> None:
    proc = run_script(script, loop, str(tmp_path))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(("starting", "serving")), proc.stderr and proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err, err
    assert "never retrieved" not in err and "destroyed" not in err, err
    assert out == "returned\n"
    assert proc.returncode == 0


def test_ctrl_c_says_it_stops_and_what_it_waits_for(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * (64 * 1024 * 1024))
    server = Running(str(tmp_path), "--port", "0", "--timeout-graceful-shutdown", "30")
    try:
        banner = server.next_line(timeout=10)
        match = BANNER.match(banner or "")
        assert match, banner
        sock = socket.create_connection(("127.0.0.1", int(match["port"])), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")  # the download is under way
            server.proc.send_signal(signal.SIGINT)
            assert server.next_line(timeout=10) == "stopping on SIGINT"
            assert server.next_line(timeout=10) == (
                "waiting up to 30 s for 1 download in progress (Ctrl-C again to stop now)"
            )
            server.proc.send_signal(signal.SIGINT)
            assert server.next_line(timeout=10) == "stopping now: 1 download cut short"
            returncode, stderr, _ = server.stop(None, timeout=10)
        finally:
            sock.close()
    finally:
        server.kill()
    assert returncode == 0
    assert "Traceback" not in stderr


def test_idle_server_says_only_that_it_stops() -> None:
    server = Running(str(REPO / "examples" / "site"), "--port", "0")
    try:
        banner = server.next_line(timeout=10)
        assert banner is not None and BANNER.match(banner), banner
        returncode, stderr, _ = server.stop(signal.SIGINT, timeout=10)
    finally:
        server.kill()
    assert returncode == 0
    assert stderr.splitlines() == [banner, "stopping on SIGINT"]


def test_ctrl_c_with_workers_lets_downloads_finish(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: each worker gets SIGINT from the terminal and
    SIGTERM from the supervisor, which must not count as two signals and cut the drain."""
    content = os.urandom(32 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(content)
    proc = subprocess.Popen(
        [sys.executable, "-m", "zerohttp", str(tmp_path), "--port", "0", "--workers", "2"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's job is
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"on http://127\.0\.0\.1:(\d+)/", proc.stderr.readline())
        assert match
        with socket.create_connection(("127.0.0.1", int(match[1])), timeout=10) as sock:
            sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            data = sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 OK")
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            # the supervisor says why it stops, the busy worker what it waits for (in either
            # order: two processes write to the one pipe)
            said = sorted([proc.stderr.readline(), proc.stderr.readline()])
            assert said[0] == "stopping on SIGINT\n", said
            waiting = said[1]  # the drain has begun
            assert "waiting up to 10 s for 1 download in progress" in waiting
            while chunk := sock.recv(1 << 20):
                data += chunk
        assert data.split(b"\r\n\r\n", 1)[1] == content, "the drain was cut short"
        assert re.fullmatch(
            r"worker \d+: waiting up to 10 s for 1 download in progress "
            r"\(Ctrl-C or SIGTERM again to stop now\)\n",
            waiting,
        ), waiting
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
