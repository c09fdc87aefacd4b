"""``--workers N``: forked workers sharing one port through SO_REUSEPORT."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork"), reason="needs SO_REUSEPORT"
)

BANNER = re.compile(r"http://127\.0\.0\.1:(\d+)/")


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


def wait_until(predicate: object, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    (tmp_path / "hello.txt").write_text("hello from a worker\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "zerohttp", str(tmp_path), "--port", "0", "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = BANNER.search(line)
    assert match, line
    assert "workers: 2" in line
    try:
        yield process, int(match.group(1)), tmp_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(10)


def get(port: int, path: str = "/hello.txt") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_two_workers_serve_and_stop_cleanly(
    workers: tuple[subprocess.Popen[str], int, Path],
) -> None:
    process, port, _ = workers
    assert len(children_of(process.pid)) == 2
    for _ in range(20):
        assert get(port) == (200, b"hello from a worker\n")
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_a_dead_worker_is_replaced(workers: tuple[subprocess.Popen[str], int, Path]) -> None:
    process, port, _ = workers
    before = children_of(process.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(children_of(process.pid) - {victim}) == 2)
    for _ in range(20):
        assert get(port) == (200, b"hello from a worker\n")


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "zerohttp",
                str(tmp_path),
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [f"zerohttp: error: cannot listen on 127.0.0.1:{port}: address already in use"]


def test_workers_must_be_positive(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zerohttp", str(tmp_path), "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "zerohttp: error: --workers 0: must be at least 1"


def test_the_stop_signal_reaches_the_workers_even_when_its_line_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A SIGTERM that lands while the supervisor writes to stderr (the banner, right after
    it appears) cannot log from its handler: the write is refused as reentrant. The workers
    must be signalled anyway (they were not: the supervisor then waited for ever), and the
    line comes once they are gone."""
    from zerohttp import workers

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stop = workers.Stopper({child.pid})

        def refused(*args: object, **kwargs: object) -> None:
            raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")

        with monkeypatch.context() as patch:
            patch.setattr(workers.logger, "info", refused)
            stop(signal.SIGTERM, None)
        assert child.wait(10) == -signal.SIGTERM
        assert stop.stopping
        assert stop.unsaid == ["SIGTERM"]
        with caplog.at_level("INFO", logger="zerohttp"):
            stop.say_unsaid()
        assert "stopping on SIGTERM" in caplog.text
        assert stop.unsaid == []
    finally:
        child.kill()
        child.wait()
