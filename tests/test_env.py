"""Settings from ``ZEROHTTP_*`` environment variables, and ``zerohttp --check URL``.

Every ``Config`` field reads ``ZEROHTTP_<NAME>``; the command line wins; a bad value is the
flag's own one-line error naming the variable. ``--check`` is the container health check:
exit 0 on a 2xx/3xx answer, 1 otherwise, one line either way.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import start_server
from helpers import free_port, status_server
from serverprocs import environ_without_settings, run_cli
from serverprocs import zerohttp as zerohttp_process

from zerohttp import Config
from zerohttp.cli import build_parser, check, env_name, parse_config
from zerohttp.errors import ConfigError
from zerohttp.static.options import settable

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "examples" / "site"
FIELDS = {field.name for field in dataclasses.fields(Config)}


def only_with(*names: str) -> pytest.MarkDecorator:
    """For settings another change adds: the case runs once Config has the field."""
    missing = [name for name in names if name not in FIELDS]
    return pytest.mark.skipif(bool(missing), reason=f"Config has no {', '.join(missing)} yet")


def from_env(**variables: str) -> Config:
    return parse_config([], environ=variables)


# --- every field has a variable ------------------------------------------------------


def rendered_default(field: dataclasses.Field[Any]) -> str | None:
    """The default written the way the variable takes it (None: not expressible)."""
    default = getattr(Config(), field.name)
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, tuple):
        return ",".join(default) if default else None
    if default is None or default == "":
        return None
    return str(default)


@pytest.mark.parametrize(
    "field",
    [f for f in dataclasses.fields(Config) if settable(f)],
    ids=lambda f: f.name,
)
def test_every_field_reads_its_variable(field: dataclasses.Field[Any]) -> None:
    """Generated from the fields, so a new Config field is covered without a new test."""
    assert f"[env: {env_name(field.name)}]" in " ".join(build_parser().format_help().split())
    value = rendered_default(field)
    if value is not None:  # the default, written as the variable takes it, changes nothing
        assert from_env(**{env_name(field.name): value}) == Config()


def test_variable_names() -> None:
    assert env_name("port") == "ZEROHTTP_PORT"
    assert env_name("root") == "ZEROHTTP_ROOT"
    assert env_name("access_log") == "ZEROHTTP_ACCESS_LOG"


# --- the variable means what the flag means ------------------------------------------


@pytest.mark.parametrize(
    "variables, argv",
    [
        ({"ZEROHTTP_PORT": "8080"}, ["--port", "8080"]),
        ({"ZEROHTTP_HOST": "0.0.0.0"}, ["--host", "0.0.0.0"]),
        ({"ZEROHTTP_ROOT": "/srv"}, ["/srv"]),
        ({"ZEROHTTP_ROOT": "-dash"}, ["--", "-dash"]),
        ({"ZEROHTTP_LOOP": "asyncio"}, ["--loop", "asyncio"]),
        ({"ZEROHTTP_LOG_LEVEL": "debug"}, ["--log-level", "debug"]),
        ({"ZEROHTTP_KEEPALIVE_TIMEOUT": "5.5"}, ["--keepalive-timeout", "5.5"]),
        ({"ZEROHTTP_WORKERS": "2"}, ["--workers", "2"]),
        ({"ZEROHTTP_INDEX": "index.htm,default.html"}, ["--index", "index.htm,default.html"]),
        ({"ZEROHTTP_PRECOMPRESSED": "none"}, ["--precompressed", "none"]),
        ({"ZEROHTTP_PRECOMPRESSED": "gzip, br"}, ["--precompressed", "gzip,br"]),
        (
            {"ZEROHTTP_CACHE_CONTROL": "public, max-age=60"},
            ["--cache-control", "public, max-age=60"],
        ),
        ({"ZEROHTTP_SPA": "yes"}, ["--spa"]),
        ({"ZEROHTTP_SENDFILE": "off"}, ["--no-sendfile"]),
        (
            {"ZEROHTTP_MIME": "md=text/markdown,log=text/plain"},
            ["--mime", "md=text/markdown", "--mime", "log=text/plain"],
        ),
        (
            {"ZEROHTTP_MIME": "md=text/markdown\nlog=text/plain; charset=utf-8\n"},
            ["--mime", "md=text/markdown", "--mime", "log=text/plain; charset=utf-8"],
        ),
        (
            {"ZEROHTTP_APP": "examples.asgi_host:app", "ZEROHTTP_MOUNT": "/a=x, /b=y"},
            ["--app", "examples.asgi_host:app", "--mount", "/a=x", "--mount", "/b=y"],
        ),
        pytest.param(
            {"ZEROHTTP_ACCESS_LOG": "json"},
            ["--access-log", "json"],
            marks=only_with("access_log"),
        ),
        pytest.param(
            {"ZEROHTTP_TIMEOUT_GRACEFUL_SHUTDOWN": "3"},
            ["--timeout-graceful-shutdown", "3"],
            marks=only_with("timeout_graceful_shutdown"),
        ),
        pytest.param(
            {"ZEROHTTP_SSL_CERTFILE": "/certs/c.pem", "ZEROHTTP_SSL_KEYFILE": "/certs/k.pem"},
            ["--ssl-certfile", "/certs/c.pem", "--ssl-keyfile", "/certs/k.pem"],
            marks=only_with("ssl_certfile", "ssl_keyfile"),
        ),
    ],
)
def test_variable_equals_flag(variables: dict[str, str], argv: list[str]) -> None:
    config = from_env(**variables)
    assert config == parse_config(argv, environ={})
    assert config != Config()


@pytest.mark.parametrize("word", ["1", "true", "yes", "on", "TRUE", "On", " yes "])
def test_true_words(word: str) -> None:
    assert from_env(ZEROHTTP_AUTOINDEX=word).autoindex is True


@pytest.mark.parametrize("word", ["0", "false", "no", "off", "False", "OFF"])
def test_false_words(word: str) -> None:
    assert from_env(ZEROHTTP_SENDFILE=word).sendfile is False


def test_empty_variable_is_unset() -> None:
    assert from_env(ZEROHTTP_PORT="", ZEROHTTP_SPA=" ", ZEROHTTP_MIME="") == Config()


def test_other_zerohttp_variables_are_ignored() -> None:
    """Kubernetes adds ZEROHTTP_SERVICE_HOST, ZEROHTTP_PORT_80_TCP, ... for a Service
    named zerohttp; they are not settings."""
    assert (
        from_env(
            ZEROHTTP_SERVICE_HOST="10.0.0.1",
            ZEROHTTP_PORT_80_TCP="tcp://10.0.0.1:80",
            ZEROHTTP_CHECK="http://x/",
            ZEROHTTP_VERSION="1",
        )
        == Config()
    )


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROHTTP_PORT", "8081")
    monkeypatch.setenv("ZEROHTTP_AUTOINDEX", "1")
    config = parse_config([])
    assert (config.port, config.autoindex) == (8081, True)


# --- precedence: command line, environment, default ----------------------------------


def test_command_line_wins() -> None:
    environ = {
        "ZEROHTTP_PORT": "8080",
        "ZEROHTTP_ROOT": "/srv",
        "ZEROHTTP_SPA": "1",
        "ZEROHTTP_INDEX": "a.html",
        "ZEROHTTP_MIME": "md=text/markdown,txt=text/plain",
        "ZEROHTTP_HOST": "0.0.0.0",
    }
    config = parse_config(
        ["site", "--port", "9090", "--no-spa", "--index", "b.html", "--mime", "x=a/b"], environ
    )
    assert config.port == 9090
    assert config.root == "site"
    assert config.spa is False
    assert config.index == ("b.html",)
    assert config.mime == ("x=a/b",), "a repeatable flag replaces the variable's list"
    assert config.host == "0.0.0.0", "what the command line leaves out comes from the env"


def test_command_line_makes_a_bad_variable_irrelevant() -> None:
    """e.g. Kubernetes' ZEROHTTP_PORT=tcp://... when the pod's args give --port."""
    config = parse_config(["--port", "8000"], {"ZEROHTTP_PORT": "tcp://10.0.0.1:80"})
    assert config.port == 8000


# --- bad values: the flag's error, naming the variable -------------------------------


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str], environ: dict[str, str]) -> str:
    with pytest.raises(SystemExit) as exited:
        parse_config(argv, environ)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("zerohttp: error: ")
    return lines[0]


@pytest.mark.parametrize(
    "name, value",
    [
        ("port", "http"),
        ("keepalive_timeout", "soon"),
        ("loop", "bogus"),
        ("log_level", "loud"),
        ("open_file_cache", "1.5"),
    ],
)
def test_bad_value_is_the_flags_error(
    capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    var, flag = env_name(name), "--" + name.replace("_", "-")
    from_flag = error_of(capsys, [flag, value], {})
    from_variable = error_of(capsys, [], {var: value})
    assert f"(from {var})" in from_variable
    assert from_variable.replace(f" (from {var})", "") == from_flag


def test_bad_boolean(capsys: pytest.CaptureFixture[str]) -> None:
    line = error_of(capsys, [], {"ZEROHTTP_AUTOINDEX": "maybe"})
    assert "--autoindex" in line
    assert "'maybe'" in line
    assert "ZEROHTTP_AUTOINDEX" in line
    assert "1/0, true/false, yes/no or on/off" in line


def test_kubernetes_service_link_gets_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    line = error_of(capsys, [], {"ZEROHTTP_PORT": "tcp://10.96.0.12:80"})
    assert "ZEROHTTP_PORT" in line
    assert "enableServiceLinks: false" in line


@pytest.mark.parametrize(
    "variables, flag",
    [
        ({"ZEROHTTP_PORT": "70000"}, "--port 70000"),
        ({"ZEROHTTP_MAX_HEADER_BYTES": "10"}, "--max-header-bytes 10"),
        ({"ZEROHTTP_MIME": "md"}, "--mime 'md'"),
        ({"ZEROHTTP_PRECOMPRESSED": "lzma"}, "--precompressed 'lzma'"),
    ],
)
def test_value_that_cannot_work_names_the_variable(variables: dict[str, str], flag: str) -> None:
    with pytest.raises(ConfigError) as raised:
        from_env(**variables)
    message = str(raised.value)
    assert message.startswith(flag)
    (var,) = variables
    assert message.endswith(f"(from {var})")


def test_configerror_from_the_command_line_does_not_blame_the_env() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(["--port", "70000"], {"ZEROHTTP_ROOT_PATH": "/x", "ZEROHTTP_ROOT": "."})
    assert "ZEROHTTP" not in str(raised.value)


# --- through the real command --------------------------------------------------------


def zerohttp(
    *args: str, env: dict[str, str], timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={**environ_without_settings(), **env}, timeout=timeout)


def test_zerohttp_port_moves_the_server() -> None:
    port = free_port()
    env = {**environ_without_settings(), "ZEROHTTP_PORT": str(port), "ZEROHTTP_ROOT": str(SITE)}
    with zerohttp_process(["--loop", "asyncio"], cwd="/", env=env) as process:
        assert f"serving {os.path.realpath(SITE)} on http://127.0.0.1:{port}/" in process.banner
        result = zerohttp("--check", f"http://127.0.0.1:{port}/css/style.css", env={})
        assert result.returncode == 0, result.stderr
        assert process.stop(signal.SIGTERM) == 0  # and no traceback after the banner


def test_bad_variable_through_the_command() -> None:
    result = zerohttp(env={"ZEROHTTP_PORT": "http"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        "zerohttp: error: argument --port: invalid int value: 'http' (from ZEROHTTP_PORT) "
        "(see zerohttp --help)\n"
    )
    result = zerohttp(env={"ZEROHTTP_PORT": "99999"})
    assert (result.returncode, result.stderr) == (
        2,
        "zerohttp: error: --port 99999: must be between 0 and 65535 (from ZEROHTTP_PORT)\n",
    )


def test_help_explains_the_environment() -> None:
    result = zerohttp("--help", env={})
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "ZEROHTTP_PORT=8080" in text
    assert "The command line wins over the environment" in text
    assert "--check URL" in text


# --- zerohttp --check URL ------------------------------------------------------------


@pytest.fixture(scope="module")
def answering() -> Iterator[str]:
    """http://127.0.0.1:P/NNN answers status NNN."""
    with status_server() as base:
        yield base


@pytest.mark.parametrize("status", [200, 204, 301, 304, 399])
def test_check_healthy(answering: str, status: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(f"{answering}/{status}") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"zerohttp: check {answering}/{status}: {status}")


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_check_unhealthy(answering: str, status: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(f"{answering}/{status}") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(rf"zerohttp: check {answering}/{status}: {status} .*\n", captured.err)


def test_check_against_zerohttp(site: Path) -> None:
    with start_server(site) as running:
        assert check(running.url("/")) == 0
        assert check(running.url("/sub")) == 0  # 301 to /sub/
        assert check(running.url("/missing.txt")) == 1
        assert check(running.url("/.secret")) == 1


def test_check_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    assert check(url) == 1
    assert capsys.readouterr().err == f"zerohttp: check {url}: Connection refused\n"


def test_check_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        started = time.monotonic()
        assert check(url, timeout=0.5) == 1
        assert time.monotonic() - started < 3
    assert capsys.readouterr().err == f"zerohttp: check {url}: timed out\n"


@pytest.mark.parametrize("url", ["ftp://x/", "127.0.0.1:8000", "http://", "http://h:port/"])
def test_check_bad_url(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(url) == 1, "never 2: Docker reserves it in a HEALTHCHECK"
    err = capsys.readouterr().err
    assert err.startswith("zerohttp: error: --check ")
    assert err.count("\n") == 1


def test_check_https_self_signed(tmp_path: Path) -> None:
    """A self-signed certificate is accepted: the probe asks whether the server answers."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr.decode()[-200:]}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with status_server(context) as base:
        assert check(f"{base}/200") == 0
        assert check(f"{base}/503") == 1


def test_check_command_ignores_settings(answering: str) -> None:
    """The health check runs in the server's environment; it reads none of it."""
    result = zerohttp(
        "--check", f"{answering}/200", env={"ZEROHTTP_PORT": "bogus", "ZEROHTTP_SPA": "x"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"zerohttp: check {answering}/200: 200 OK\n"
    result = zerohttp("--check", f"{answering}/500", env={})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"zerohttp: check {answering}/500: 500 Internal Server Error\n"
