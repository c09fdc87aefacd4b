"""Errors of valid settings that fail at start name the option the user wrote, in one line
(exit status 1): a --mount directory that is missing, --lifespan on for an app without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_cli import assert_one_line_error

NO_LIFESPAN_APP = """
async def app(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def zerohttp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ZEROHTTP_")}
    return subprocess.run(
        [sys.executable, "-m", "zerohttp", *args],
        cwd=cwd,
        env=clean,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_missing_mount_directory_names_mount(tmp_path: Path) -> None:
    (tmp_path / "noapp.py").write_text(NO_LIFESPAN_APP)
    missing = tmp_path / "nope"
    result = zerohttp("--app", "noapp:app", "--mount", f"/s={missing}", "--port", "0", cwd=tmp_path)
    line = assert_one_line_error(result, 1)
    assert line == f"zerohttp: error: --mount /s={missing}: directory '{missing}' does not exist"


def test_lifespan_on_with_an_app_without_lifespan_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "noapp.py").write_text(NO_LIFESPAN_APP)
    result = zerohttp("--app", "noapp:app", "--lifespan", "on", "--port", "0", cwd=tmp_path)
    line = assert_one_line_error(result, 1)
    assert line == (
        "zerohttp: error: --lifespan on: the application does not speak the ASGI lifespan "
        "protocol (it raised AssertionError before asking for a message); "
        "use --lifespan auto or off"
    )
