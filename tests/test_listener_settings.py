"""Listener settings whose errors named the wrong flag or none (issue 16 item 9):
``--backlog``, ``--metrics-port`` equal to ``--port``, and a metrics port in use, alone or
under ``--workers 2`` (one line naming the flag, not a raw ``[Errno 98]`` per worker)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import open_fds
from serverprocs import run_cli

from zerohttp.config import Config
from zerohttp.errors import ConfigError
from zerohttp.workers import run_workers

REPO = Path(__file__).resolve().parent.parent


def test_backlog_names_itself() -> None:
    with pytest.raises(ConfigError, match=r"^--backlog -1: must be at least 1$"):
        Config(backlog=-1)


def test_max_discard_bytes_names_itself() -> None:
    with pytest.raises(ConfigError, match=r"^--max-discard-bytes -1: must be >= 0$"):
        Config(max_discard_bytes=-1)


@pytest.mark.parametrize(
    "host, metrics_host",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("127.0.0.1", "0.0.0.0"),
        ("::1", "::"),
        ("", "127.0.0.1"),
    ],
)
def test_the_metrics_port_cannot_be_the_port(host: str, metrics_host: str) -> None:
    with pytest.raises(ConfigError, match=r"^--metrics-port 8000 is also --port"):
        Config(port=8000, metrics_port=8000, host=host, metrics_host=metrics_host)


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 0, "metrics_port": 0},  # two free ports
        {"host": "127.0.0.1", "metrics_host": "127.0.0.2"},
        {"host": "127.0.0.1", "metrics_host": "::1"},
        {"uds": "/run/zerohttp.sock"},
        {"fd": 3},
    ],
)
def test_the_same_port_number_where_it_does_not_clash(changes: dict[str, object]) -> None:
    Config(**{"port": 8000, "metrics_port": 8000, **changes})


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other program listens on (no SO_REUSEPORT: it cannot be shared)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_metrics_port_in_use_is_one_line(tmp_path: Path, taken_port: int, workers: str) -> None:
    if workers != "1" and not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("--workers needs SO_REUSEPORT")
    result = run_cli(
        str(tmp_path), "--port", "0", "--workers", workers, "--metrics-port", str(taken_port)
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"zerohttp: error: --metrics-port {taken_port}: cannot listen on "
        f"127.0.0.1:{taken_port}: address already in use\n"
    )


def test_the_cli_refuses_the_port_as_the_metrics_port(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--port", "8123", "--metrics-port", "8123")
    assert result.returncode == 2  # a usage error; a port in use (above) is 1
    assert result.stderr.startswith("zerohttp: error: --metrics-port 8123 is also --port")
    assert result.stderr.count("\n") == 1


def test_no_descriptor_is_left_behind_by_a_refused_metrics_port(taken_port: int) -> None:

    before = open_fds()
    config = Config(port=0, workers=2, metrics_port=taken_port)
    with pytest.raises(ConfigError, match="--metrics-port"):
        run_workers(config, lambda cfg, ready: None, "asyncio")
    assert open_fds() == before


def test_a_free_metrics_port_for_workers_is_a_usage_error(tmp_path: Path) -> None:
    """The workers share one metrics port, so "pick one" cannot work: refused with the
    other settings errors (exit 2), before anything starts."""
    result = run_cli(str(tmp_path), "--port", "0", "--workers", "2", "--metrics-port", "0")
    assert result.returncode == 2
    assert result.stderr == (
        "zerohttp: error: --metrics-port 0 with --workers: name the port the workers share\n"
    )
