"""The README's Python API snippets run as written, and stop on Ctrl-C without a traceback.

Each ```python block of the "Python API" section is run as a script from the repository root,
so the README cannot drift from the API: the blocking ``zerohttp.run`` and the ``serve``
coroutine serve the example site until SIGINT and then exit 0 with nothing on stderr; the
``Server`` snippet stops by itself.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from serverprocs import REPO, fetch, server_process

SITE = REPO / "examples" / "site"


def python_api_snippets() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_three_entry_points() -> None:
    snippets = python_api_snippets()
    assert len(snippets) == 3
    assert "zerohttp.run(" in snippets[0]
    assert "await zerohttp.serve(" in snippets[1]
    assert "zerohttp.Server(" in snippets[2]


@pytest.mark.parametrize("index", [0, 1], ids=["run", "serve"])
def test_snippet_serves_until_ctrl_c(index: int, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(python_api_snippets()[index])
    with server_process([str(script)]) as server:
        reply = fetch(server.base_url, "GET", "/")
        assert reply.status == 200 and reply.body == (SITE / "index.html").read_bytes()
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(20) == 0
        output = server.output()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "never awaited" not in output, output


def test_server_snippet_stops_by_itself(tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(python_api_snippets()[2])
    done = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    size = len((SITE / "index.html").read_bytes())
    assert re.match(rf"{size} bytes from http://127\.0\.0\.1:\d+/", done.stdout), done.stdout
    assert "Traceback" not in done.stderr, done.stderr
