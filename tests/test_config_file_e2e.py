"""``zerohttp --config FILE`` as a process: it serves with the file's port and root (a
relative root taken from the file's directory, wherever zerohttp starts), the command line
beats the environment beats the file, a bad file is one line and exit status 2, and
``--check`` never reads the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port, status_server
from serverprocs import REPO, environ_without_settings, fetch, run_cli, zerohttp

EXAMPLE = REPO / "examples" / "site.toml"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """tmp/conf/site.toml naming ../public, which holds hello.txt; returns the file."""
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "hello.txt").write_text("hello from the file's root\n")
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "site.toml"
    path.write_text(f'port = {free_port()}\nroot = "../public"\nloop = "asyncio"\n')
    return path


def port_of(path: Path) -> int:
    return int(path.read_text().split("\n")[0].removeprefix("port = "))


def env(**variables: str) -> dict[str, str]:
    return {**environ_without_settings(), **variables}


def test_serves_the_files_port_and_root(site: Path) -> None:
    port = port_of(site)
    with zerohttp(["--config", str(site)], cwd="/", env=env()) as process:
        public = os.path.realpath(site.parent.parent / "public")
        assert f"serving {public} on http://127.0.0.1:{port}/" in process.banner
        reply = fetch(f"http://127.0.0.1:{port}", "GET", "/hello.txt")
        assert (reply.status, reply.body) == (200, b"hello from the file's root\n")
        assert process.stop() == 0


def test_the_path_from_zerohttp_config(site: Path) -> None:
    with zerohttp([], cwd="/", env=env(ZEROHTTP_CONFIG=str(site))) as process:
        assert process.port == port_of(site)
        assert process.stop() == 0


@pytest.mark.parametrize("winner", ["environment", "command line"])
def test_command_line_beats_environment_beats_file(site: Path, winner: str) -> None:
    from_env, from_cli = free_port(), free_port()
    args = ["--config", str(site)]
    if winner == "command line":
        args += ["--port", str(from_cli)]
    with zerohttp(args, cwd="/", env=env(ZEROHTTP_PORT=str(from_env))) as process:
        assert process.port == (from_cli if winner == "command line" else from_env)
        reply = fetch(f"http://127.0.0.1:{process.port}", "GET", "/hello.txt")
        assert reply.status == 200, "the root still comes from the file"
        assert process.stop() == 0


def test_the_example_serves_its_site() -> None:
    """examples/site.toml as shipped, from another directory; only the port moved."""
    with zerohttp(["--config", str(EXAMPLE), "--port", "0"], cwd="/", env=env()) as process:
        assert f"serving {os.path.realpath(REPO / 'examples' / 'site')} on" in process.banner
        base = f"http://127.0.0.1:{process.port}"
        assert fetch(base, "GET", "/css/style.css").status == 200
        assert fetch(base, "GET", "/healthz").body == b"ok\n"
        assert process.stop() == 0


# --- a bad file: one line, exit status 2 ----------------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr == lines[0] + "\n", result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "content, line",
    [
        ("prot = 8080\n", "zerohttp: error: {path}: prot: unknown setting; did you mean port?"),
        ('port = "80"\n', 'zerohttp: error: {path}: port: expected an integer, got "80"'),
        ("port = 80\nroot =\n", "zerohttp: error: {path}:2:7: invalid TOML: invalid value"),
        ("port = 70000\n", "zerohttp: error: --port 70000: must be between 0 and 65535 (from "
         "{path}: port)"),
        ('[[redirects]]\nfrom = "/a"\nto = "/b"\nstatus = 404\n', "zerohttp: error: {path}: "
         "redirects[1].status: expected one of 200, 301, 302, 303, 307, 308, got 404"),
        ('[[headers]]\nfor = "/a"\nset = { A = "b\\r\\nX-Evil: 1" }\n', "zerohttp: error: "
         '{path}: headers[1].set: A: "b\\r\\nX-Evil: 1": a header field value must be printable '
         "ASCII (no CR, LF or control character)"),
        ('uds = "z.sock"\nport = 9000\n', 'zerohttp: error: uds = "{dir}/z.sock" in {path} and '
         "port = 9000 in {path}: two addresses to listen on: --port ignored"),
    ],
)  # fmt: skip
def test_bad_file_is_one_line(tmp_path: Path, content: str, line: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(content)
    result = run_cli("--config", str(path), env=env(), cwd=tmp_path)
    assert one_line_error(result) == line.format(path=path, dir=tmp_path)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    for args, environ in [
        (["--config", "nope.toml"], env()),
        ([], env(ZEROHTTP_CONFIG="nope.toml")),
    ]:
        result = run_cli(*args, env=environ, cwd=tmp_path)
        assert one_line_error(result) == (
            "zerohttp: error: nope.toml: cannot read the settings file: No such file or directory"
        )


def test_a_relative_file_path_is_from_the_working_directory(site: Path) -> None:
    """The file's own path is relative to where zerohttp starts; what it names, to it."""
    with zerohttp(["--config", "conf/site.toml"], cwd=site.parent.parent, env=env()) as process:
        assert process.port == port_of(site)
        assert fetch(f"http://127.0.0.1:{process.port}", "GET", "/hello.txt").status == 200
        assert process.stop() == 0


# --- --check does not read it -----------------------------------------------------------------


@pytest.fixture(scope="module")
def answering() -> Iterator[str]:
    with status_server() as base:
        yield f"{base}/200"


def test_check_neither_reads_nor_imports_the_file(tmp_path: Path, answering: str) -> None:
    """The health check runs every few seconds with the image's environment: a settings
    file named there is not its business (not even a missing one)."""
    code = (
        "import sys\n"
        "from zerohttp.cli import main\n"
        "try:\n"
        f"    main(['--check', {answering!r}])\n"
        "except SystemExit as exc:\n"
        "    print('status', exc.code)\n"
        "print(sorted(m for m in ('tomllib', 'tomli', 'zerohttp.config_file') if m in "
        "sys.modules))\n"
    )
    environ = env(ZEROHTTP_CONFIG=str(tmp_path / "missing.toml"), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=30
    )
    assert result.stdout.splitlines()[-2:] == ["status 0", "[]"], result.stderr
    # the full parser's form answers before the settings are gathered, too
    result = run_cli("--port", "1", "--check", answering, env=environ)
    assert (result.returncode, result.stderr) == (0, "")
