"""A recording ASGI app for the WebSocket differential test (tests/test_ws_differential.py).

Served as ``apps.ws_record:app`` (tests/ as the working directory) by uvicorn and by
``zerohttp --app`` alike. A WebSocket connection runs the script its query names:
``?id=ID&script=JSON``, where JSON is a list of steps:

- ``["send", MESSAGE]``: ``await send(MESSAGE)``; headers given as strings become bytes,
  and ``{"$bytes": "...", "repeat": n}`` anywhere becomes ``bytes`` (latin-1, n times);
- ``["recv"]`` / ``["recv", seconds]``: one ``await receive()`` (a timeout is recorded as
  such: a server may never answer a receive after the end);
- ``["until_disconnect"]``: receive until ``websocket.disconnect``;
- ``["echo"]``: send every message back until ``websocket.disconnect``;
- ``["raise"]``: raise RuntimeError out of the application;
- ``["sleep", seconds]``.

A script returns after its last step. Every message received and every send's outcome
(``ok``, or the exception's class and whether it is an ``OSError``: ASGI spec 2.4) is
recorded with the scope, less what changes from run to run (ports, the client's key).
``GET /record?id=ID`` answers the record as JSON once the script has ended (404 before;
``&partial=1`` answers it while the script runs);
with ``WS_RECORD_DIR`` set, it is also written there as ``ID.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RECORDS: dict[str, dict[str, Any]] = {}
STATE = {"greeting": "hello"}


class ScriptError(RuntimeError):
    """The ``raise`` step: the application fails on purpose."""


def plain(value: Any) -> Any:
    """JSON-able: bytes as ``{"$bytes": latin-1}``, tuples as lists."""
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).decode("latin-1")}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def unplain(value: Any) -> Any:
    """The inverse of ``plain`` for the messages a script sends."""
    if isinstance(value, dict):
        if "$bytes" in value:  # {"$bytes": s, "repeat": n}: s n times (a URL is short)
            return str(value["$bytes"]).encode("latin-1") * int(value.get("repeat", 1))
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unplain(v) for v in value]
    return value


def outgoing(message: dict[str, Any]) -> dict[str, Any]:
    result = unplain(message)
    if "headers" in result:
        result["headers"] = [[_latin1(n), _latin1(v)] for n, v in result["headers"]]
    return result


def _latin1(value: Any) -> Any:
    return value.encode("latin-1") if isinstance(value, str) else value


def recorded_scope(scope: Scope) -> dict[str, Any]:
    """The scope, as JSON, less its volatile values."""
    out = plain(dict(scope))
    for key in ("client", "server"):
        if out.get(key):
            port = out[key][1]
            out[key] = [out[key][0], "<port>" if port else port]  # 0 and None stay
    headers = []
    for name, value in out.get("headers", []):
        text = value["$bytes"]
        if name["$bytes"].lower() == "sec-websocket-key":
            text = "<key>"
        elif name["$bytes"].lower() == "host":
            text = text.rsplit(":", 1)[0] + ":<port>"
        headers.append([name, {"$bytes": text}])
    out["headers"] = headers
    return out


def failure(exc: BaseException) -> dict[str, Any]:
    return {
        "error": type(exc).__name__,
        "oserror": isinstance(exc, OSError),
        "detail": str(exc),
    }


async def run_script(scope: Scope, receive: Receive, send: Send, record: dict[str, Any]) -> None:
    query = dict(urllib.parse.parse_qsl(scope["query_string"].decode("latin-1")))
    script = json.loads(query.get("script", "[]"))
    events: list[dict[str, Any]] = record["events"]

    async def recv(timeout: float = 10.0) -> Message | None:
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except asyncio.TimeoutError:  # TimeoutError only from 3.11 on
            events.append({"recv": "timeout"})
            return None
        events.append({"recv": plain(dict(message))})
        return message

    for step in script:
        kind = step[0]
        if kind == "send":
            message = outgoing(step[1])
            try:
                await send(message)
            except Exception as exc:
                events.append({"send": message["type"], **failure(exc)})
            else:
                events.append({"send": message["type"], "ok": True})
        elif kind == "recv":
            await recv(*step[1:])
        elif kind == "until_disconnect":
            while True:
                got = await recv()
                if got is None or got["type"] == "websocket.disconnect":
                    break
        elif kind == "echo":
            while True:
                got = await recv()
                if got is None or got["type"] != "websocket.receive":
                    break
                back = {"type": "websocket.send"}
                if got.get("text") is not None:
                    back["text"] = got["text"]
                else:
                    back["bytes"] = got["bytes"]
                await send(back)
        elif kind == "raise":
            events.append({"raise": True})
            raise ScriptError("raised by the script, on purpose")
        elif kind == "sleep":
            await asyncio.sleep(step[1])
        else:
            raise ValueError(f"unknown step {step!r}")


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    query = dict(urllib.parse.parse_qsl(scope["query_string"].decode("latin-1")))
    record: dict[str, Any] = {"scope": recorded_scope(scope), "events": [], "done": False}
    RECORDS.setdefault(query.get("id", ""), record)
    try:
        await run_script(scope, receive, send, record)
    except BaseException as exc:
        record["raised"] = type(exc).__name__
        if not isinstance(exc, ScriptError):
            record["traceback"] = traceback.format_exc()
        raise
    finally:
        record["done"] = True
        directory = os.environ.get("WS_RECORD_DIR")
        if directory:  # read after the server has stopped (a shutdown test)
            Path(directory, f"{query.get('id', '')}.json").write_text(json.dumps(record))


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    query = dict(urllib.parse.parse_qsl(scope["query_string"].decode("latin-1")))
    record = RECORDS.get(query.get("id", ""))
    wanted = record is not None and (record["done"] or "partial" in query)
    if scope["path"].endswith("/record") and wanted:
        status, body = 200, json.dumps(record).encode()
    else:
        status, body = 404, b"not yet\n"
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state = scope.get("state")
            if state is not None:
                state.update(STATE)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "websocket":
        await websocket(scope, receive, send)
    elif kind == "http":
        await http(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(scope, receive, send)
