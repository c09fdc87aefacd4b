"""``zerohttp --check`` runs every few seconds in every container, so it must not import the
server: what it loads is checked here as a list of modules (its CPU time is a benchmark's
business, not a test's). ``import zerohttp`` is lazy too, and its public names still work.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from helpers import status_server
from serverprocs import REPO

import zerohttp

#: what the server needs and the health check does not
SERVER_MODULES = (
    "asyncio",
    "h11",
    "uvloop",
    "prometheus_client",
    "aiofiles",
    "logging",
    "dataclasses",
    "zerohttp.config",
    "zerohttp.runner",
    "zerohttp.server",
)

REPORT = "print(' '.join(sorted(name for name in sys.modules if name in {wanted!r})))"


def loaded_after(code: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``code`` in a fresh interpreter; which of SERVER_MODULES it loaded."""
    script = f"import sys\n{code}\n{REPORT.format(wanted=set(SERVER_MODULES))}\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    return result, set(lines[-1].split())


@pytest.fixture(scope="module")
def answering() -> Iterator[str]:
    """An HTTP server that answers 200, in this process: nothing of zerohttp's."""
    with status_server() as base:
        yield f"{base}/"


@pytest.mark.parametrize("form", ["--check URL", "--check=URL"])
def test_check_imports_nothing_of_the_server(answering: str, form: str) -> None:
    argv = ["--check", answering] if form == "--check URL" else [f"--check={answering}"]
    code = (
        "from zerohttp.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    print('status', exc.code)\n"
    )
    result, loaded = loaded_after(code)
    assert f"zerohttp: check {answering}: 200 OK" in result.stdout
    assert "status 0" in result.stdout
    assert loaded == set(), f"--check imported {sorted(loaded)}"


def test_other_check_forms_still_work(answering: str) -> None:
    """Not the fast path's exact form: the full parser answers, with the same result."""
    result = subprocess.run(
        [sys.executable, "-m", "zerohttp", "--port", "1", "--check", answering],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (0, f"zerohttp: check {answering}: 200 OK\n")


def test_import_zerohttp_is_lazy() -> None:
    _, loaded = loaded_after("import zerohttp")
    assert loaded == set()
    result, loaded = loaded_after(
        "from zerohttp import Config, Server, StaticFiles, run, serve\n"
        "print(Config.__module__, Server.__module__, StaticFiles.__module__, run.__module__)"
    )
    assert "zerohttp.config zerohttp.server zerohttp.asgi.staticfiles zerohttp.runner" in (
        result.stdout
    )
    assert {"asyncio", "zerohttp.config", "zerohttp.server"} <= loaded


def test_public_names() -> None:
    for name in zerohttp.__all__:
        assert getattr(zerohttp, name) is not None
        assert name in dir(zerohttp)
    assert zerohttp.Config().port == 8000
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        zerohttp.nope  # type: ignore[attr-defined]  # noqa: B018
