"""Servers in subprocesses for end-to-end tests that need a real process (uvicorn, the CLI,
the examples), and a raw HTTP client that sends request targets exactly as written.

Output goes to a log file rather than a pipe, so a chatty server can never block on a full
pipe, and a server that dies before it is ready fails the test with its own words.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import free_port as free_port  # re-exported: test files import it from here too
from helpers import open_fds

BANNER = re.compile(r"on http://127\.0\.0\.1:(\d+)/")
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0  # the box is shared and noisy


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def accepts(port: int) -> bool:
    """Something on 127.0.0.1:``port`` takes a connection now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def server_process(
    args: Sequence[str],
    *,
    port: int | None = None,
    cwd: Path | str = REPO,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """Run ``python ARGS``; ready when ``port`` accepts, or (port None) when the log shows
    a ``on http://127.0.0.1:PORT/`` banner. Stopped with SIGINT, then killed if need be."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=cwd, env=full_env, stdout=out, stderr=out
            )
        running = ServerProcess(proc, log, port or 0)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{' '.join(args)} exited with {proc.returncode} before it was ready:\n"
                        + running.output()
                    )
                if port is None:
                    match = BANNER.search(running.output())
                    if match:
                        running.port = int(match.group(1))
                        break
                elif accepts(port):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(args)} not ready:\n" + running.output())
                time.sleep(0.05)
            yield running
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def environ_without_settings() -> dict[str, str]:
    """This environment less every ``ZEROHTTP_*`` variable: a test says which it sets."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ZEROHTTP_")}


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    cwd: Path | str = REPO,
) -> subprocess.CompletedProcess[str]:
    """``python -m zerohttp ARGS`` to its exit, output captured; one that does not exit in
    time fails the test (a CLI error must never hang)."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "zerohttp", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"zerohttp {' '.join(args)} did not exit within {timeout} s")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)


def fetch(
    base_url: str, method: str, target: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """One request on a fresh connection; ``target`` goes on the wire as written."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, target, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read()
        pairs = [(name.lower(), value) for name, value in response.getheaders()]
        merged: dict[str, str] = {}
        for name, value in pairs:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return Reply(response.status, merged, body, pairs)
    finally:
        conn.close()


class Zerohttp:
    """``python -m zerohttp ARGS`` with its stderr read line by line: the banner first.

    For tests about the process itself (signals, exit status, descriptors, sockets it
    inherits), where ``server_process``'s log file and SIGINT stop do not fit.
    """

    def __init__(self, args: Sequence[str], **popen: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zerohttp", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            **popen,  # type: ignore[call-overload]
        )
        assert self.proc.stderr is not None
        self.banner = self.proc.stderr.readline()

    @property
    def port(self) -> int:
        match = re.search(r"on https?://(?:\[[^\]]+\]|[^:/]+):(\d+)/", self.banner)
        assert match, self.banner
        return int(match.group(1))

    def fds(self) -> int:
        return open_fds(self.proc.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal, wait, and return the exit status; the rest of stderr has no traceback."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        rest = self.proc.stderr.read()
        assert "Traceback" not in rest, rest
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def zerohttp(args: Sequence[str], **popen: object) -> Iterator[Zerohttp]:
    """A ``Zerohttp`` process that is killed at the end of the block if still running."""
    process = Zerohttp(args, **popen)
    try:
        yield process
    finally:
        process.kill()
