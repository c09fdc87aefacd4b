"""The ASGI app of the conformance battery: it records and echoes what its host gives it.

Served as ``apps.conformance:app`` with tests/ as the working directory, by uvicorn (the
reference) and by zerohttp's ASGI host alike. The request path (with ``root_path``
stripped off, as Starlette's ``get_route_path`` does) picks the behaviour; any path not in
``ROUTES`` echoes the scope as JSON. bytes become ``{"$bytes": base64}`` in that JSON, so
the test can tell ``bytes`` from ``str``.

Environment: ``CONFORMANCE_DATA`` is the directory the file routes serve from,
``CONFORMANCE_MARKER`` a file lifespan shutdown writes its event list to.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send, dict[str, str]], Awaitable[None]]

PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"

# What this process's lifespan saw, in order ("startup", "shutdown").
LIFESPAN_EVENTS: list[str] = []
# The one nested object lifespan startup puts in the state: a shallow copy shares it.
SHARED: list[str] = []
# What the recording routes saw, by the ``id`` the test chose; read back with /record.
RECORDS: dict[str, dict[str, Any]] = {}

# zerocopysend plans: a step is {"body": bytes}, {"seek": n} or {"offset": o, "count": c}
# (either may be None: absent from the message). The last step ends the response.
ZEROCOPY_PLANS: dict[str, list[dict[str, Any]]] = {
    "mixed": [
        {"body": b"<<"},
        {"offset": 10, "count": 100},
        {"body": b"|"},
        {"seek": 1000},
        {"offset": None, "count": 5000},  # from the file's current position
        {"offset": 1 << 20, "count": None},  # to the end of the file
        {"body": b">>"},
    ],
    "file-last": [
        {"offset": 0, "count": 1000},
        {"offset": 5000, "count": None},  # the final message: more_body left out
    ],
}


def zerocopy_expected(plan: list[dict[str, Any]], data: bytes) -> bytes:
    """The body a plan must produce from a file holding ``data``."""
    out = bytearray()
    position = 0
    for step in plan:
        if "body" in step:
            out += step["body"]
        elif "seek" in step:
            position = step["seek"]
        else:
            start = position if step["offset"] is None else step["offset"]
            end = len(data) if step["count"] is None else start + step["count"]
            out += data[start:end]
    return bytes(out)


def data_dir() -> Path:
    return Path(os.environ["CONFORMANCE_DATA"]).resolve()


def jsonable(value: Any) -> Any:
    """The scope (or part of it) as JSON values; bytes as {"$bytes": base64}."""
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return {"$repr": type(value).__name__}


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8"
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, value: Any, status: int = 200) -> None:
    await respond(send, status, json.dumps(value).encode(), b"application/json")


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise RuntimeError(f"unexpected {message['type']} while reading the body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


# --- routes -------------------------------------------------------------------------------


async def echo_scope(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    body = await read_body(receive)
    await respond_json(send, {"scope": jsonable(dict(scope)), "body_length": len(body)})


async def upload(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Read the body however it arrives; report its digest and the messages it came in.

    ``first_wait``: seconds before the first receive(). ``delay``: seconds slept after each
    receive(). ``rate``: bytes per second this app reads at most (it sleeps when ahead).
    """
    first_wait = float(query.get("first_wait", 0))
    delay = float(query.get("delay", 0))
    rate = float(query.get("rate", 0))
    if first_wait:
        await asyncio.sleep(first_wait)
    digest = hashlib.sha256()
    length = messages = largest = 0
    problems: list[str] = []
    started = time.monotonic()
    while True:
        message = await receive()
        messages += 1
        if message["type"] != "http.request":
            problems.append(f"got {message['type']} after {length} bytes")
            break
        body = message.get("body", b"")
        if not isinstance(body, bytes):
            problems.append(f"body is {type(body).__name__}")
            body = bytes(body)
        digest.update(body)
        length += len(body)
        largest = max(largest, len(body))
        if not message.get("more_body", False):
            break
        if delay:
            await asyncio.sleep(delay)
        if rate:
            ahead = length / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    await respond_json(
        send,
        {
            "length": length,
            "sha256": digest.hexdigest(),
            "messages": messages,
            "largest": largest,
            "problems": problems,
        },
    )


async def no_read(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Answer without ever calling receive()."""
    await respond(send, 200, b"not reading your body\n")


def describe(message: Message) -> str:
    """A received message in a record: its type, and for http.request its body and flag."""
    if message["type"] == "http.request":
        body = len(message.get("body", b""))
        return f"http.request(body={body}, more_body={bool(message.get('more_body', False))})"
    return str(message["type"])


async def watch_disconnect(
    scope: Scope, receive: Receive, send: Send, query: dict[str, str]
) -> None:
    """Read the body, then keep calling receive() until it has said http.disconnect twice
    (at most four calls), recording each message; then try to send a response and record
    whether send() raised."""
    record: dict[str, Any] = {"body": None, "after": [], "send": None}
    RECORDS[query["id"]] = record
    record["body"] = len(await read_body(receive))
    after: list[str] = record["after"]
    while after.count("http.disconnect") < 2 and len(after) < 4:
        try:
            message = await asyncio.wait_for(receive(), 10)
        except asyncio.TimeoutError:
            after.append("timeout")
            break
        after.append(describe(message))
    try:
        await asyncio.wait_for(respond(send, 200, b"too late\n"), 5)
    except OSError as exc:
        record["send"] = {"raised": type(exc).__name__, "oserror": True}
    except Exception as exc:
        record["send"] = {"raised": type(exc).__name__, "oserror": False}
    else:
        record["send"] = {"raised": None, "oserror": False}


async def after_response(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Read the body, respond, then call receive() once more and record what it returns."""
    await read_body(receive)
    await respond(send, 200, b"done\n")
    try:
        message = await asyncio.wait_for(receive(), 5)
    except asyncio.TimeoutError:
        RECORDS[query["id"]] = {"after": "timeout"}
    else:
        RECORDS[query["id"]] = {"after": message["type"]}


async def record(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await respond_json(send, RECORDS.get(query["id"]))


async def stream(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """No Content-Length: n body messages, then an empty final one."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for index in range(int(query.get("n", 3))):
        await send({"type": "http.response.body", "body": b"chunk-%d;" % index, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


FIXED_BODY = b"fixed body\n"


async def fixed(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Content-Length given; the body in two messages."""
    headers = [(b"content-length", str(len(FIXED_BODY)).encode()), (b"x-app", b"fixed")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": FIXED_BODY[:5], "more_body": True})
    await send({"type": "http.response.body", "body": FIXED_BODY[5:]})


async def raise_before(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    raise RuntimeError("conformance: raised before http.response.start (expected)")


async def raise_after(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Start (Content-Length 1000, or none: chunked), send 10 bytes, raise."""
    headers = [(b"content-length", b"1000")] if query.get("framing") == "length" else []
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
    raise RuntimeError("conformance: raised after http.response.start (expected)")


async def no_response(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    return None


async def state(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Report scope["state"], then mutate it: top-level changes must not outlive the request;
    the nested list is shared (a shallow copy), so the append does."""
    namespace = scope.get("state")
    report = {
        "present": namespace is not None,
        "state": jsonable(dict(namespace)) if namespace is not None else None,
        "shared_is_startup_object": namespace is not None and namespace.get("shared") is SHARED,
    }
    if namespace is not None:
        namespace["leak"] = "set by an earlier request"
        namespace.pop("greeting", None)
        if isinstance(namespace.get("shared"), list):
            namespace["shared"].append("request")
    await respond_json(send, report)


async def lifespan_report(
    scope: Scope, receive: Receive, send: Send, query: dict[str, str]
) -> None:
    namespace = scope.get("state")
    await respond_json(
        send,
        {
            "events": LIFESPAN_EVENTS,
            "state_keys": None if namespace is None else sorted(namespace),
        },
    )


def advertised(scope: Scope, extension: str) -> bool:
    """The spec's detection rule: the key is present in scope["extensions"]."""
    return extension in (scope.get("extensions") or {})


async def pathsend(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    if not advertised(scope, PATHSEND):
        await respond(send, 501, b"http.response.pathsend is not advertised\n")
        return
    path = data_dir() / query["name"]
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(path.stat().st_size).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": PATHSEND, "path": str(path)})


async def zerocopy(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Send ZEROCOPY_PLANS[plan] from the named file; Content-Length only if length=1."""
    if not advertised(scope, ZEROCOPYSEND):
        await respond(send, 501, b"http.response.zerocopysend is not advertised\n")
        return
    plan = ZEROCOPY_PLANS[query["plan"]]
    path = data_dir() / query["name"]
    headers = [(b"content-type", b"application/octet-stream")]
    if query.get("length") == "1":
        length = len(zerocopy_expected(plan, path.read_bytes()))
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    with open(path, "rb", buffering=0) as file:
        for index, step in enumerate(plan):
            last = index == len(plan) - 1
            if "body" in step:
                await send(
                    {"type": "http.response.body", "body": step["body"], "more_body": not last}
                )
            elif "seek" in step:
                file.seek(step["seek"])
            else:
                message: dict[str, Any] = {"type": ZEROCOPYSEND, "file": file}
                if step["offset"] is not None:
                    message["offset"] = step["offset"]
                if step["count"] is not None:
                    message["count"] = step["count"]
                if not last:
                    message["more_body"] = True  # the last one relies on the default, False
                await send(message)


ROUTES: dict[str, Handler] = {
    "/upload": upload,
    "/no-read": no_read,
    "/watch-disconnect": watch_disconnect,
    "/after-response": after_response,
    "/record": record,
    "/stream": stream,
    "/fixed": fixed,
    "/raise-before": raise_before,
    "/raise-after": raise_after,
    "/no-response": no_response,
    "/state": state,
    "/lifespan": lifespan_report,
    "/pathsend": pathsend,
    "/zerocopy": zerocopy,
}


# --- FastAPI and Starlette (imported on first use: launches without them stay fast) --------


_RANGE = re.compile(r"bytes=(\d+)-(\d+)\Z")


def make_fastapi_app(data: Path) -> Any:
    """``/fa/file/{name}``: a stock FileResponse (pathsend where advertised).
    ``/fa/zc/{name}``: a FileResponse that answers a single ``bytes=a-b`` Range with one
    zerocopysend where advertised (Starlette streams every Range as body bytes)."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse
    from starlette.datastructures import Headers, MutableHeaders

    class ZeroCopyRangeFileResponse(FileResponse):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            match = _RANGE.match(Headers(scope=scope).get("range", ""))
            if match is None or scope["method"] != "GET" or not advertised(scope, ZEROCOPYSEND):
                await super().__call__(scope, receive, send)
                return
            size = os.stat(self.path).st_size
            first, last = int(match[1]), min(int(match[2]), size - 1)
            if first > last:
                await super().__call__(scope, receive, send)
                return
            self.set_stat_headers(os.stat(self.path))
            headers = MutableHeaders(raw=list(self.raw_headers))
            headers["content-range"] = f"bytes {first}-{last}/{size}"
            headers["content-length"] = str(last - first + 1)
            await send({"type": "http.response.start", "status": 206, "headers": headers.raw})
            with open(self.path, "rb", buffering=0) as file:
                await send(
                    {"type": ZEROCOPYSEND, "file": file, "offset": first, "count": last - first + 1}
                )

    api = FastAPI()

    @api.get("/fa/file/{name}")
    async def fa_file(name: str) -> FileResponse:
        return FileResponse(data / name)

    @api.get("/fa/zc/{name}")
    async def fa_zc(name: str) -> FileResponse:
        return ZeroCopyRangeFileResponse(data / name)

    return api


def make_starlette_app(data: Path) -> Any:
    """``/st/file/{name}``: a stock Starlette FileResponse."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse
    from starlette.routing import Route

    async def st_file(request: Request) -> FileResponse:
        return FileResponse(data / request.path_params["name"])

    return Starlette(routes=[Route("/st/file/{name}", st_file)])


@functools.cache
def fastapi_app() -> Any:
    return make_fastapi_app(data_dir())


@functools.cache
def starlette_app() -> Any:
    return make_starlette_app(data_dir())


# --- the app ------------------------------------------------------------------------------


def route_path(scope: Scope) -> str:
    """``path`` without ``root_path`` (Starlette's get_route_path rule)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            LIFESPAN_EVENTS.append("startup")
            namespace = scope.get("state")
            if namespace is not None:
                namespace["greeting"] = "hello"
                namespace["shared"] = SHARED
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            LIFESPAN_EVENTS.append("shutdown")
            marker = os.environ.get("CONFORMANCE_MARKER")
            if marker:
                Path(marker).write_text(json.dumps(LIFESPAN_EVENTS))
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']!r}")
    route = route_path(scope)
    if route.startswith("/fa/"):
        await fastapi_app()(scope, receive, send)
        return
    if route.startswith("/st/"):
        await starlette_app()(scope, receive, send)
        return
    query = dict(urllib.parse.parse_qsl(scope["query_string"].decode("latin-1")))
    await ROUTES.get(route, echo_scope)(scope, receive, send, query)


async def broken_lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``app``, except that it raises on the lifespan scope (an app without lifespan)."""
    if scope["type"] == "lifespan":
        raise RuntimeError("conformance: this app does not speak lifespan (expected)")
    await app(scope, receive, send)
