"""Starting, watching and stopping a zerohttp server process, for the memory benchmarks."""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import time
from typing import IO

HOST = "127.0.0.1"


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) of a process, from /proc/PID/status."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def zerohttp_command(python: str, root: str, port: int | str, *options: str) -> list[str]:
    """The server pinned to CPU 0, as peerbench pins it."""
    return [
        "taskset", "-c", "0", python, "-m", "zerohttp", root,
        "--host", HOST, "--port", str(port), "--log-level", "warning", *options,
    ]  # fmt: skip


def start_server(cmd: list[str], port: int, stderr: IO[bytes] | int) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and wait until it accepts connections on ``port`` (15 s at most)."""
    # taskset execs the interpreter, so the Popen pid is the server's pid.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {shlex.join(cmd)}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError("server did not start listening within 15 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
