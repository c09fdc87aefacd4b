"""A FastAPI app that serves examples/site under /static with ``zerohttp.StaticFiles``.

    uvicorn examples.fastapi_mount:app            # from the repository root
    python examples/fastapi_mount.py [PORT]       # the same, through uvicorn.run
    zerohttp --app examples.fastapi_mount:app     # zerohttp's host: file bodies zero-copy

``StaticFiles`` answers exactly as ``zerohttp examples/site`` would (ranges, conditional
requests, precompressed siblings, 308 to add a directory's slash, under the mount). On a
host that offers ``http.response.zerocopysend`` or ``http.response.pathsend`` file bodies
leave without passing through Python; elsewhere (uvicorn) they are streamed in chunks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fastapi import FastAPI

from zerohttp import StaticFiles

SITE = Path(__file__).resolve().parent / "site"

app = FastAPI(title="zerohttp StaticFiles example")


@app.get("/api/hello")
def hello() -> dict[str, str]:
    """A JSON route next to the mount: only /static/... goes to StaticFiles."""
    return {"message": "hello", "static": "/static/index.html"}


app.mount("/static", StaticFiles(directory=SITE, html=True), name="static")


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8000"))
    uvicorn.run(app, host="127.0.0.1", port=port)
