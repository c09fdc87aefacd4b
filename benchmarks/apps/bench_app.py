"""The FastAPI apps that benchmarks/asgi_bench.py serves with zerohttp, uvicorn and Granian.

Both apps have the same routes, written the way a FastAPI user writes them:

    /small         FileResponse of small.html (1 KiB)
    /medium        FileResponse of medium.js (100 KiB)
    /json          a small dict, rendered by FastAPI
    /static/...    a static-files app mounted in FastAPI

``raw_app`` is no framework at all: a bare ASGI callable answering /json with the bytes FastAPI
renders, so its rate is the server's own per-request cost (HTTP parsing, scope, send).

``app`` mounts ``zerohttp.StaticFiles`` at /static (left out, with ``ZEROHTTP_STATIC`` False,
while the installed zerohttp has no ``StaticFiles``); ``starlette_static_app`` mounts
Starlette's own ``StaticFiles``. The files come from $ASGI_BENCH_ROOT (asgi_bench.py builds it).
Starlette's FileResponse hands a server that advertises ``http.response.pathsend`` the path
(zerohttp, Granian); under uvicorn it streams the file in 64 KiB chunks.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles as StarletteStaticFiles

ROOT = Path(os.environ.get("ASGI_BENCH_ROOT", "/tmp/asgi-bench-root")).resolve()
SMALL = ROOT / "small.html"
MEDIUM = ROOT / "medium.js"
JSON_BODY: dict[str, Any] = {"message": "Hello, World!", "id": 42, "ok": True, "tags": ["a", "b"]}


def base_app() -> FastAPI:
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/small")
    async def small() -> FileResponse:
        return FileResponse(SMALL)

    @api.get("/medium")
    async def medium() -> FileResponse:
        return FileResponse(MEDIUM)

    @api.get("/json")
    async def json_() -> dict[str, Any]:
        return JSON_BODY

    return api


app = base_app()
try:
    from zerohttp import StaticFiles as ZerohttpStaticFiles  # type: ignore[attr-defined]
except ImportError:
    ZEROHTTP_STATIC = False
else:
    ZEROHTTP_STATIC = True
    app.mount("/static", ZerohttpStaticFiles(directory=ROOT), name="static")

starlette_static_app = base_app()
starlette_static_app.mount("/static", StarletteStaticFiles(directory=ROOT), name="static")

JSON_BYTES = b'{"message":"Hello, World!","id":42,"ok":true,"tags":["a","b"]}'
RAW_HEADERS = [(b"content-length", str(len(JSON_BYTES)).encode()),
               (b"content-type", b"application/json")]  # fmt: skip


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The /json answer without FastAPI: what the server alone costs per request."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": RAW_HEADERS})
    await send({"type": "http.response.body", "body": JSON_BYTES})


# --- bare variants for the per-stage profile (benchmarks/asgi_ab.py): each adds one stage
# to raw_app, so the difference in server CPU per request is that stage's cost on a server.
SMALL_BYTES = SMALL.read_bytes() if SMALL.is_file() else b""
SMALL_HEADERS = [(b"content-length", str(len(SMALL_BYTES)).encode()),
                 (b"content-type", b"text/html; charset=utf-8")]  # fmt: skip


async def raw_recv_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """raw_app plus one ``receive()`` (a bodiless request: the empty http.request)."""
    if scope["type"] != "http":
        return
    await receive()
    await raw_app(scope, receive, send)


async def raw_listen_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """raw_recv_app plus Starlette's disconnect listener (responses.py listen_for_disconnect,
    spec < 2.4): a second task calling ``receive()`` until http.disconnect, cancelled once
    the response is out, as anyio's task group would."""
    if scope["type"] != "http":
        return

    async def listen() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    task = asyncio.get_running_loop().create_task(listen())
    await raw_app(scope, receive, send)
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def raw_pathsend_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """small.html the way Starlette's FileResponse sends it: the path where the server offers
    ``http.response.pathsend``, else the bytes (read once at import, as a best case)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": SMALL_HEADERS})
    if "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": str(SMALL)})
    else:
        await send({"type": "http.response.body", "body": SMALL_BYTES})
