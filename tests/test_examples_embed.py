"""The examples run as their docstrings say and serve examples/site."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import free_port
from serverprocs import REPO, fetch, server_process

SITE = REPO / "examples" / "site"


@pytest.mark.parametrize("how", ["argv", "env"])
def test_embed_api_serves_the_site(how: str) -> None:
    script = str(REPO / "examples" / "embed_api.py")
    args, env = ([script, "0"], {}) if how == "argv" else ([script], {"PORT": "0"})
    with server_process(args, env=env) as server:
        reply = fetch(server.base_url, "GET", "/css/style.css")
        assert reply.status == 200
        assert reply.body == (SITE / "css" / "style.css").read_bytes()
        assert reply.headers["cache-control"] == "max-age=60"
        assert fetch(server.base_url, "GET", "/").body == (SITE / "index.html").read_bytes()


@pytest.mark.parametrize("how", ["script", "uvicorn", "zerohttp"])
def test_fastapi_mount_serves_files_and_json(how: str) -> None:
    port: int | None = free_port()
    if how == "script":
        args = [str(REPO / "examples" / "fastapi_mount.py"), str(port)]
    elif how == "uvicorn":
        args = ["-m", "uvicorn", "examples.fastapi_mount:app", "--port", str(port)]
    else:  # zerohttp's own host: the banner names the port
        args, port = ["-m", "zerohttp", "--app", "examples.fastapi_mount:app", "--port", "0"], None
    with server_process(args, port=port) as server:
        logo: Path = SITE / "img" / "logo.svg"
        reply = fetch(server.base_url, "GET", "/static/img/logo.svg")
        assert reply.status == 200 and reply.body == logo.read_bytes()
        assert reply.headers["content-type"].startswith("image/svg+xml")
        part = fetch(server.base_url, "GET", "/static/img/logo.svg", {"Range": "bytes=0-4"})
        assert part.status == 206 and part.body == logo.read_bytes()[:5]
        moved = fetch(server.base_url, "GET", "/static/docs")
        assert moved.status == 308 and moved.headers["location"] == "/static/docs/"
        hello = fetch(server.base_url, "GET", "/api/hello")
        assert hello.status == 200 and b'"message":"hello"' in hello.body
