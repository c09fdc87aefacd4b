"""Settings that would be silently ignored are refused (or, when the environment is involved,
warned about), and settings are named the way the user wrote them.

Exit status: 2 for a usage error (argparse's, ``Config``'s, ``ignored_settings``'), 1 when
valid settings fail on this system; both are one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest
from serverprocs import environ_without_settings, run_cli
from serverprocs import zerohttp as zerohttp_process
from test_cli import SITE, assert_one_line_error

from zerohttp import Config
from zerohttp.cli import build_parser, env_name, ignored_settings, parse_config


def judged(argv: list[str], environ: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """``ignored_settings`` for a command line and environment, as main() calls it."""
    environ = environ or {}
    given = vars(build_parser().parse_args(argv))
    from_env = [field.name for field in fields(Config) if env_name(field.name) in environ]
    return ignored_settings(parse_config(argv, environ), given, from_env)


def zerohttp(
    *args: str, env: dict[str, str] | None = None, cwd: Path = SITE
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={**environ_without_settings(), **(env or {})}, cwd=cwd)


# --- --uds / --fd with --host / --port ---------------------------------------------------------


def test_uds_and_port_on_the_command_line_is_an_error() -> None:
    errors, warnings = judged(["--uds", "/tmp/z.sock", "--port", "9000"])
    assert errors == [
        "--uds /tmp/z.sock and --port 9000: two addresses to listen on: --port ignored"
    ]
    assert warnings == []
    errors, _ = judged(["--fd", "3", "--host", "::1", "--port", "9000"])
    assert errors == [
        "--fd 3 and --host ::1 and --port 9000: two addresses to listen on: "
        "--host and --port ignored"
    ]


def test_uds_with_the_images_port_variable_is_a_warning() -> None:
    """The image sets ZEROHTTP_HOST and ZEROHTTP_PORT; ``docker run IMAGE --uds ...`` works."""
    env = {"ZEROHTTP_HOST": "0.0.0.0", "ZEROHTTP_PORT": "8000"}
    errors, warnings = judged(["--uds", "/tmp/z.sock"], env)
    assert errors == []
    assert warnings == [
        "--uds /tmp/z.sock and ZEROHTTP_HOST=0.0.0.0 and ZEROHTTP_PORT=8000: "
        "two addresses to listen on: --host and --port ignored"
    ]


def test_uds_alone_is_fine() -> None:
    assert judged(["--uds", "/tmp/z.sock"]) == ([], [])
    assert judged(["--port", "9000", "--host", "::1"]) == ([], [])


def test_uds_and_port_through_the_command() -> None:
    line = assert_one_line_error(zerohttp("--uds", "/tmp/z.sock", "--port", "9000"), 2)
    assert "--port 9000" in line and "--uds /tmp/z.sock" in line


def test_the_warning_through_the_command(tmp_path: Path) -> None:
    sock = str(tmp_path / "z.sock")
    env = {**os.environ, "ZEROHTTP_PORT": "8000"}
    with zerohttp_process(["--uds", sock], cwd=SITE, env=env) as process:
        assert process.banner == (  # the first line: the warning comes before the banner
            f"zerohttp: warning: --uds {sock} and ZEROHTTP_PORT=8000: "
            "two addresses to listen on: --port ignored\n"
        )
        assert process.proc.stderr is not None
        assert f"serving {SITE} on unix:{sock}" in process.proc.stderr.readline()
        assert process.stop(signal.SIGTERM) == 0


# --- ROOT with --app ----------------------------------------------------------------------------


def test_root_with_app_is_an_error() -> None:
    errors, _ = judged(["www", "--app", "main:app"])
    assert errors == [
        "--app main:app and ROOT 'www': "
        "ROOT is not served with --app: serve files with --mount /PREFIX=DIR"
    ]


def test_root_from_the_environment_with_app_is_a_warning() -> None:
    errors, warnings = judged(["--app", "main:app"], {"ZEROHTTP_ROOT": "/srv"})
    assert errors == []
    assert warnings == [
        "--app main:app and ZEROHTTP_ROOT=/srv: "
        "ROOT is not served with --app: serve files with --mount /PREFIX=DIR"
    ]


def test_root_that_a_mount_serves_is_fine() -> None:
    argv = ["/srv", "--app", "main:app", "--mount", "/static=/srv/"]
    assert judged(argv) == ([], [])
    assert judged(["--app", "main:app"]) == ([], [])


# --- --access-log-file without --access-log ----------------------------------------------------


def test_access_log_file_without_a_format_is_an_error() -> None:
    errors, _ = judged(["--access-log-file", "/tmp/a.log"])
    assert errors == [
        "--access-log-file /tmp/a.log: no access log is written while --access-log is off: "
        "add --access-log common, combined or json"
    ]
    errors, _ = judged([], {"ZEROHTTP_ACCESS_LOG_FILE": "/tmp/a.log"})
    assert errors == [
        "ZEROHTTP_ACCESS_LOG_FILE=/tmp/a.log: no access log is written while --access-log is "
        "off: add --access-log common, combined or json"
    ]


@pytest.mark.parametrize("form", ["off", "json"])
def test_access_log_file_with_a_format_said_is_fine(form: str) -> None:
    """``--access-log off`` said explicitly turns a configured log off: not a mistake."""
    assert judged(["--access-log-file", "/tmp/a.log", "--access-log", form]) == ([], [])


def test_access_log_file_through_the_command(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    line = assert_one_line_error(zerohttp("--access-log-file", str(log)), 2)
    assert "--access-log-file" in line and "--access-log is off" in line
    env = {"ZEROHTTP_ACCESS_LOG_FILE": str(log)}
    line = assert_one_line_error(zerohttp(env=env), 2)
    assert line.startswith(f"zerohttp: error: ZEROHTTP_ACCESS_LOG_FILE={log}: ")
    assert not log.exists()


# --- names and case -----------------------------------------------------------------------------


def test_log_level_in_any_case() -> None:
    assert parse_config(["--log-level", "DEBUG"], {}).log_level == "debug"
    assert parse_config([], {"ZEROHTTP_LOG_LEVEL": "Warning"}).log_level == "warning"
    assert parse_config(["--access-log", "JSON"], {}).access_log == "json"


def test_log_level_debug_through_the_command() -> None:
    result = zerohttp("--log-level", "DEBUG", "--check", "http://127.0.0.1:1/")
    assert "invalid choice" not in result.stderr
    result = zerohttp("--port", "70000", env={"ZEROHTTP_LOG_LEVEL": "DEBUG"})
    assert_one_line_error(result, 2)
    assert "--port 70000" in result.stderr


# --- one exit-status rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "http"],  # argparse
        ["--port", "70000"],  # Config
        ["--uds", "/tmp/z.sock", "--port", "9000"],  # ignored_settings
        ["--bogus"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert_one_line_error(zerohttp(*args), 2)


def test_start_failures_exit_1(tmp_path: Path) -> None:
    assert_one_line_error(zerohttp(str(tmp_path / "missing"), "--port", "0"), 1)


def test_says_what_exit_statuses_mean() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "Exit status: 0 after a clean stop, 2 for a usage error" in text


def test_choices_accept_any_case() -> None:
    namespace = build_parser().parse_args(["--log-level", "DEBUG", "--loop", "AsyncIO"])
    assert (namespace.log_level, namespace.loop) == ("debug", "asyncio")
