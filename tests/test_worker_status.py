"""A worker's end in words (issue 16 item 7): ``exited with code N`` or ``was killed by
SIGKILL``, not the raw wait status (``status 9`` for a SIGKILL reads like an exit code)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zerohttp.workers import describe_exit


def wait_status(pid_fn: str) -> int:
    """A real wait status: a child that ends as ``pid_fn`` says (``exit:N`` or ``kill:SIG``)."""
    how, _, what = pid_fn.partition(":")
    pid = os.fork()
    if pid == 0:
        if how == "kill":
            os.kill(os.getpid(), int(what))
            time.sleep(10)
        os._exit(int(what))
    return os.waitpid(pid, 0)[1]


def test_an_exit_code() -> None:
    assert describe_exit(123, wait_status("exit:3")) == "worker 123 exited with code 3"
    assert describe_exit(123, wait_status("exit:0")) == "worker 123 exited with code 0"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM])
def test_a_signal(sig: signal.Signals) -> None:
    status = wait_status(f"kill:{int(sig)}")
    assert describe_exit(7, status) == f"worker 7 was killed by {sig.name}"


def test_a_signal_without_a_name() -> None:
    assert describe_exit(7, 63) == "worker 7 was killed by signal 63"  # 63: SIGRTMAX-1 or so


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="--workers needs SO_REUSEPORT")
def test_the_supervisor_says_how_a_worker_died(tmp_path: Path) -> None:
    """Also: a SIGTERM right as the replacement is forked stops it too (it used to be
    missed, and the supervisor waited for it for ever)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "zerohttp", str(tmp_path), "--port", "0", "--workers", "2"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: set[int] = set()
    try:
        assert process.stderr is not None
        assert "workers: 2" in process.stderr.readline()
        workers = children_of(process.pid)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        line = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "worker" not in line:
            if select.select([process.stderr], [], [], 0.2)[0]:
                line = process.stderr.readline()
        assert line.strip() == f"worker {victim} was killed by SIGKILL; starting a new one"
        workers |= children_of(process.pid)
        process.send_signal(signal.SIGTERM)  # while the replacement is being forked
        assert process.wait(15) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        for pid in workers | children_of(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()


def children_of(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            return {int(child) for child in file.read().split()}
    except OSError:
        return set()
