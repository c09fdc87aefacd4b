"""A FastAPI app whose FileResponses zerohttp sends with sendfile(2), unchanged.

Run it with zerohttp as the ASGI server (from the repository root):

    zerohttp --app examples.asgi_host:app --mount /static=examples/site

``/report`` is a FastAPI ``FileResponse``: Starlette sees ``http.response.pathsend`` in the
scope's extensions and hands zerohttp the path, which goes out zero-copy. ``/static/...`` is
served by zerohttp's own static handler, before the app is consulted.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

SITE = Path(__file__).resolve().parent / "site"

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/report")
async def report() -> FileResponse:
    return FileResponse(SITE / "index.html", media_type="text/html")
