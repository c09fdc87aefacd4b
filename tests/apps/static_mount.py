"""A Starlette app with ``zerohttp.StaticFiles`` mounted at ``/static`` and one JSON route.

The differential tests run it under uvicorn and under ``zerohttp --app`` and compare its
answers with the plain CLI server's; the directory comes from ``ZEROHTTP_TEST_STATIC``
(default: examples/site) because the app is imported by a fresh server process.
``pathsend_app`` is the same app on a host that offers pathsend but not zerocopysend, so
that body path runs end to end too (zerohttp's host offers both and zerocopysend wins).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from zerohttp import StaticFiles

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site"
DIRECTORY = os.environ.get("ZEROHTTP_TEST_STATIC", str(EXAMPLE_SITE))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/health", health),
        Mount("/static", StaticFiles(directory=DIRECTORY, html=True), name="static"),
    ]
)


async def pathsend_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``app`` with ``http.response.zerocopysend`` hidden from the scope's extensions."""
    if scope["type"] == "http":
        extensions = dict(scope.get("extensions") or {})
        extensions.pop("http.response.zerocopysend", None)
        scope = {**scope, "extensions": extensions}
    await app(scope, receive, send)
