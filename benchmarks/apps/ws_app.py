"""The one bare ASGI application every server runs for benchmarks/ws_bench.py (no framework:
the servers' own cost).

- ``/echo``: every message straight back, text as text, bytes as bytes;
- ``/broadcast``: every message received on any connection is sent, one ``await send`` after
  another, to every connection open on ``/broadcast`` (the sender too) — the loop a chat
  room or a notification fan-out writes;
- ``/idle``: accept, then wait for the client to leave;
- another path: closed before the handshake (403); plain HTTP: 200 "ok" (the harness
  waits for it before loading the server).

Lifespan is answered, so no server logs a lifespan error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

peers: dict[int, Send] = {}  # /broadcast connections, by id(scope)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await lifespan(receive, send)
    elif kind == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif kind == "websocket":
        handler = HANDLERS.get(scope["path"])
        await receive()  # websocket.connect
        if handler is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        await handler(scope, receive, send)


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def broadcast(scope: Scope, receive: Receive, send: Send) -> None:
    key = id(scope)
    peers[key] = send
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            out = {"type": "websocket.send", "text": message.get("text")}
            if out["text"] is None:
                out = {"type": "websocket.send", "bytes": message["bytes"]}
            for peer in list(peers.values()):
                try:
                    await peer(out)
                except Exception:
                    pass  # that peer is gone: its own task removes it
    finally:
        peers.pop(key, None)


async def idle(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass


HANDLERS = {"/echo": echo, "/broadcast": broadcast, "/idle": idle}
