"""A FastAPI chat: a page, an HTTP API and a WebSocket, under zerohttp as the ASGI server.

Run it from the repository root:

    zerohttp --app examples.ws_chat:app --mount /static=examples/chat

and open http://127.0.0.1:8000/ in two browser tabs. ``/static/...`` (the page and its
script) is served by zerohttp's own static handler before the app is consulted; the app
has the rest:

- ``GET /`` redirects to the page;
- ``GET /api/messages`` returns the most recent chat messages as JSON (what a newcomer
  reads before joining);
- ``/ws/chat?name=NAME`` is the chat: every text a client sends is broadcast to every
  connected client as ``{"type": "message", "name": ..., "text": ...}``, and a client
  arriving or leaving is announced to all with ``{"type": "join"|"leave", "name": ...}``.

The room lives in this process, so run it with one worker (the default): with
``--workers N`` each worker would have a room of its own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import RedirectResponse

HISTORY = 50  # messages /api/messages keeps
MAX_NAME = 32  # characters of a name that are kept
MAX_TEXT = 2000  # characters of a message that are kept


class ChatRoom:
    """Who is connected, and the last messages said."""

    def __init__(self) -> None:
        self.members: dict[WebSocket, str] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.guests = itertools.count(1)

    def name_for(self, asked: str | None) -> str:
        name = " ".join((asked or "").split())[:MAX_NAME]
        return name or f"guest-{next(self.guests)}"

    async def join(self, websocket: WebSocket, name: str) -> None:
        self.members[websocket] = name
        await self.broadcast({"type": "join", "name": name, "online": len(self.members)})

    async def leave(self, websocket: WebSocket) -> None:
        name = self.members.pop(websocket, None)
        if name is not None:
            await self.broadcast({"type": "leave", "name": name, "online": len(self.members)})

    async def say(self, name: str, text: str) -> None:
        message = {"type": "message", "name": name, "text": text[:MAX_TEXT]}
        self.history.append(message)
        await self.broadcast(message)

    async def broadcast(self, event: dict[str, Any]) -> None:
        """Send to every member at once, so one slow reader delays no one else. A send to a
        member that has gone fails and is ignored: its own handler announces the leave."""
        members = list(self.members)
        await asyncio.gather(
            *(member.send_json(event) for member in members), return_exceptions=True
        )


room = ChatRoom()
app = FastAPI(title="zerohttp WebSocket chat example")


@app.get("/", include_in_schema=False)
def index(request: Request) -> RedirectResponse:
    """To the page, keeping the query (``/?name=ann`` joins as ann)."""
    query = request.url.query
    return RedirectResponse("/static/index.html" + (f"?{query}" if query else ""))


@app.get("/api/messages")
def messages(limit: int = HISTORY) -> list[dict[str, Any]]:
    """The most recent chat messages, oldest first."""
    recent = list(room.history)
    return recent[-limit:] if limit > 0 else []


@app.websocket("/ws/chat")
async def chat(websocket: WebSocket, name: str | None = None) -> None:
    await websocket.accept()
    name = room.name_for(name)
    await room.join(websocket, name)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text") is None:  # a binary message: this chat speaks text
                await websocket.close(1003, "text messages only")
                break
            await room.say(name, message["text"])
    finally:
        await room.leave(websocket)
