"""Starlette and FastAPI WebSocket routes for tests/test_ws_asgi.py (``zerohttp --app``).

Served as ``apps.ws_frameworks:app`` with tests/ as the working directory. FastAPI routes
live under ``/fa``, a plain Starlette app under ``/st``. What a route learns when its
client goes (``WebSocketDisconnect``: code and reason) is kept by the ``id`` the client
named, and answered as JSON by ``GET /fa/record/{id}`` (404 until the route has ended).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, WebSocket, WebSocketDisconnect, WebSocketException
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.routing import Mount, WebSocketRoute

RECORDS: dict[str, dict[str, Any]] = {}

api = FastAPI()


@api.get("/record/{ident}")
async def read_record(ident: str) -> JSONResponse:
    record = RECORDS.get(ident)
    if record is None:
        return JSONResponse({"error": "not yet"}, status_code=404)
    return JSONResponse(record)


@api.websocket("/echo")
async def echo(websocket: WebSocket, id: str = "") -> None:
    """Echo text and bytes; keep how the client left."""
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="chat" if "chat" in offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message["code"], message.get("reason"))
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as exc:
        RECORDS[id] = {"code": exc.code, "reason": exc.reason}


@api.websocket("/info/{name}")
async def info(websocket: WebSocket, name: str, flag: str = "") -> None:
    """What Starlette's WebSocket reads from the scope, then a close with a reason."""
    await websocket.accept()
    await websocket.send_json(
        {
            "url": str(websocket.url),
            "path": websocket.url.path,
            "client": list(websocket.client) if websocket.client else None,
            "header": websocket.headers.get("x-custom"),
            "name": name,
            "flag": flag,
            "state": getattr(websocket.state, "greeting", None),
        }
    )
    await websocket.close(code=4000, reason="done with info")


def user_from_token(token: Annotated[str | None, Query()] = None) -> str:
    """A dependency of a WebSocket route: a missing token denies before accept (1008 ->
    the server answers 403)."""
    if token != "secret":
        raise WebSocketException(code=1008, reason="bad token")
    return "alice"


@api.websocket("/room/{room}")
async def room(
    websocket: WebSocket, room: str, user: Annotated[str, Depends(user_from_token)]
) -> None:
    await websocket.accept()
    await websocket.send_text(f"{user} joined {room}")
    await websocket.close()


@api.websocket("/deny")
async def deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(
        PlainTextResponse("members only\n", status_code=401, headers={"x-why": "login"})
    )


@api.websocket("/fail")
async def fail(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("about to fail")
    raise RuntimeError("route failed on purpose (tests/test_ws_asgi.py)")


class Shout(WebSocketEndpoint):
    """Starlette's class-based endpoint: text in, upper-case text out."""

    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        if data == "bye":
            await websocket.close(code=4001, reason="said bye")
            return
        await websocket.send_text(str(data).upper())

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        ident = websocket.query_params.get("id", "")
        RECORDS[ident] = {"code": close_code}


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    yield {"greeting": "hello"}  # the state every scope gets a copy of


app = Starlette(
    routes=[
        Mount("/fa", app=api),
        Mount("/st", routes=[WebSocketRoute("/shout", Shout)]),
    ],
    lifespan=lifespan,
)
