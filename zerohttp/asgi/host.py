"""zerohttp as an ASGI server: each request becomes one application call over an Exchange.

The host advertises ``http.response.pathsend`` and ``http.response.zerocopysend``, so a
Starlette/FastAPI ``FileResponse`` (which uses pathsend when offered) and any app that
hands over an open file go out through the same sendfile path as the static server.
``--mount /prefix=DIR`` paths never reach the application: the native static handler
answers them synchronously, with its open-file cache.

With ``--proxy-headers``, a request from a trusted peer (``http.proxy``) gets the client
address and scheme its proxy names in the scope's ``client`` and ``scheme``; from any other
peer the headers stay what they are, request headers for the application to see.

Send after the client has gone raises ``ClientDisconnected`` (an ``OSError``), as ASGI
spec 2.4 asks; Starlette then stops streaming instead of polling ``receive``.

A WebSocket handshake is checked here (``websocket.handshake``: a broken one is a 400 the
application never sees) and then runs as a ``WebSocketSession`` (``websocket.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes
from weakref import WeakKeyDictionary

from ..http.exchange import FINISHED, READY, TOLD, ClientDisconnected, Exchange, Responder
from ..http.proxy import ProxyHeaders
from ..message.response import RequestHead, Response, error_response
from ..static.handler import under_prefix
from ..websocket.driver import WebSocketSettings
from ..websocket.handshake import Offer, read_offer, wants_websocket
from .loader import ASGIApp, Message
from .websocket import WebSocketSession

logger = logging.getLogger("zerohttp")

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
# 2.5: websocket.disconnect carries the close reason
ASGI_WEBSOCKET_VERSION = {"version": "3.0", "spec_version": "2.5"}
WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}
BODY_MESSAGES = ("http.response.body", "http.response.zerocopysend", "http.response.pathsend")
METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}
Address = tuple[str, "int | None"] | None
# (client, server, whether the peer may name the client: trusted, or a unix socket)
Addresses = tuple[Address, Address, bool]
WEBSOCKET_REFUSAL = "WebSocket is off on this server (--ws none)"


class FileHandler(Protocol):
    """The static handler for a directory, with what stands around it (``stack.py``)."""

    def handle(self, request: RequestHead) -> Response: ...


@dataclass(frozen=True, slots=True)
class Mount:
    """A URL prefix answered by the static handler for a directory."""

    prefix: bytes  # "/static", percent-encoded as on the wire, no trailing slash
    handler: FileHandler

    def matches(self, target: bytes) -> bool:
        prefix = self.prefix
        return target.startswith(prefix) and target[len(prefix) : len(prefix) + 1] in (
            b"/",
            b"?",
            b"",
        )

    def handle(self, request: RequestHead) -> Response:
        rest = request.target[len(self.prefix) :]
        if not rest.startswith(b"/"):  # "/static" or "/static?x": the directory wants its slash
            location = (self.prefix + b"/" + rest).decode("latin-1")
            return error_response(308, [("Location", location)])
        inner = RequestHead(request.method, rest, request.http_version, request.headers)
        return under_prefix(self.handler.handle(inner), self.prefix.decode("latin-1"))


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """``(raw_path, query_string)``; an absolute-form target keeps only its path."""
    if target[:8].lower().startswith((b"http://", b"https://")):
        rest = target.split(b"//", 1)[1]
        slash = rest.find(b"/")
        mark = rest.find(b"?")
        if slash < 0 or 0 <= mark < slash:
            target = b"/" + (rest[mark:] if mark >= 0 else b"")
        else:
            target = rest[slash:]
    path, _, query = target.partition(b"?")
    return path, query.partition(b"#")[0]


def websocket_refusal() -> Response:
    """501 with a body that says why, instead of passing a handshake the app cannot finish."""
    body = WEBSOCKET_REFUSAL.encode("ascii") + b"\n"
    fields = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))))
    return Response(501, fields, body)


class ASGIHost:
    """The connection layer's handler for an application (and its mounts)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        root_path: str = "",
        mounts: Sequence[Mount] = (),
        state: dict[str, Any] | None = None,
        scheme: str = "http",
        proxy: ProxyHeaders | None = None,
        websocket: WebSocketSettings | None = None,
    ) -> None:
        self.app = app
        self.websocket = websocket  # None: --ws none
        self.root_path = root_path.rstrip("/")
        self.mounts = tuple(mounts)
        self.state = state
        self.scheme = scheme
        self.proxy = proxy
        # (client, server, trusted) per connection, looked up on its first request (two syscalls)
        self._addresses: WeakKeyDictionary[object, Addresses] = WeakKeyDictionary()

    def handle(self, request: RequestHead) -> Response | Responder:
        for mount in self.mounts:
            if mount.matches(request.target):
                return mount.handle(request)
        for name, _ in request.headers:
            # a plain loop finds no Upgrade field in ~0.3 µs, a third of is_upgrade's cost:
            # this runs for every request the application gets
            if name == b"upgrade":
                if wants_websocket(request):
                    return self._websocket(request)
                break
        return self  # the request runs as self.run(exchange)

    def _websocket(self, request: RequestHead) -> Response | Responder:
        settings = self.websocket
        if settings is None:
            return websocket_refusal()
        offer = read_offer(request, deflate=settings.per_message_deflate)
        if isinstance(offer, Response):
            return offer
        return WebSocketSession(self, offer, settings)

    def scope(self, exchange: Exchange) -> dict[str, Any]:
        request = exchange.request
        raw_path, query, path = _paths(request.target)
        client, server, scheme = self._peers(exchange, self.scheme)
        method = request.method
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": "1.1" if request.http_version == b"1.1" else "1.0",
            "method": METHODS.get(method) or method.decode("ascii"),
            "scheme": scheme,
            "path": self.root_path + path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": self.root_path,
            "headers": list(request.headers),
            "client": client,
            "server": server,
            "extensions": {"http.response.pathsend": {}, "http.response.zerocopysend": {}},
        }
        if self.state is not None:
            scope["state"] = self.state.copy()  # shallow, per request (uvicorn#1902)
        return scope

    def websocket_scope(self, exchange: Exchange, offer: Offer) -> dict[str, Any]:
        """The HTTP scope of the handshake, as the ``websocket`` scope (spec 2.5) has it."""
        scope = self.scope(exchange)
        del scope["method"]
        scope["type"] = "websocket"
        scope["asgi"] = ASGI_WEBSOCKET_VERSION
        scope["scheme"] = WEBSOCKET_SCHEMES.get(scope["scheme"], scope["scheme"])
        scope["subprotocols"] = list(offer.subprotocols)
        scope["extensions"] = {"websocket.http.response": {}}
        return scope

    def _peers(self, exchange: Exchange, scheme: str) -> tuple[Address, Address, str]:
        """The scope's client, server and scheme (as a trusted proxy names them)."""
        connection = exchange.connection
        addresses = self._addresses.get(connection)
        if addresses is None:
            addresses = self._addresses[connection] = _addresses(connection.transport, self.proxy)
        client = addresses[0]
        if addresses[2]:
            client, scheme = self._forwarded(exchange.request, client, scheme)
        return client, addresses[1], scheme

    def _forwarded(self, request: RequestHead, client: Address, scheme: str) -> tuple[Address, str]:
        """The scope's client and scheme as a trusted peer's proxy headers name them."""
        assert self.proxy is not None
        found = self.proxy.forwarded(request.headers)
        if found is None:
            return client, scheme
        if found.host is not None:
            client = (found.host, found.port)
        return client, found.scheme or scheme

    async def run(self, exchange: Exchange) -> None:
        """One application call; whatever it leaves unfinished, the exchange completes."""
        # partial, not closures: the app's ``await send(m)`` is then one coroutine, _send's
        receive = partial(self._receive, exchange)
        send = partial(self._send, exchange)
        try:
            result: object = await self.app(self.scope(exchange), receive, send)  # type: ignore[func-returns-value]
        except ClientDisconnected:
            return  # raised by our send: the spec asks us not to log it
        except Exception:
            target = exchange.request.target.decode("latin-1")
            logger.exception("Exception in ASGI application (%s)", target)
            return
        if result is not None:
            logger.error("ASGI callable returned a value (%r) instead of None", result)
        if exchange.closed_for_sending:
            return
        if exchange.phase is READY:
            logger.error("ASGI callable returned without starting a response")
        elif exchange.phase is not FINISHED:
            logger.error("ASGI callable returned without completing the response")

    @staticmethod
    async def _receive(exchange: Exchange) -> Message:
        got = await exchange.receive_body()
        if got is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": got[0], "more_body": got[1]}

    async def _send(self, exchange: Exchange, message: Message) -> None:
        kind = message["type"]
        phase = exchange.phase
        if phase is FINISHED and kind in BODY_MESSAGES:
            return  # ASGI: further messages on a complete response are ignored
        if exchange.peer >= TOLD:
            raise ClientDisconnected("client disconnected")
        if kind == "http.response.body":
            await exchange.write(
                bytes(message.get("body", b"")), more=bool(message.get("more_body", False))
            )
        elif kind == "http.response.start":
            if phase is not READY:
                raise RuntimeError("http.response.start sent twice")
            headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
            exchange.start(int(message["status"]), headers)
        elif kind == "http.response.zerocopysend":
            await exchange.send_file(
                message["file"].fileno(),
                message.get("offset"),
                message.get("count"),
                more=bool(message.get("more_body", False)),
            )
        elif kind == "http.response.pathsend":
            path = message["path"]
            if not os.path.isabs(path):
                raise RuntimeError(f"http.response.pathsend needs an absolute path, not {path!r}")
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                await exchange.send_file(fd, 0, None, more=False)
            finally:
                os.close(fd)
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")


def _paths(target: bytes) -> tuple[bytes, bytes, str]:
    """The scope's ``raw_path``, ``query_string`` and ``path`` (before ``root_path``)."""
    if target[:1] == b"/" and b"?" not in target:  # the common shape: no query, no form
        raw_path, query = target, b""
    else:
        raw_path, query = split_target(target)
    if b"%" in raw_path:
        return raw_path, query, unquote_to_bytes(raw_path).decode("utf-8", "replace")
    return raw_path, query, raw_path.decode("utf-8", "replace")


def _addresses(transport: Any, proxy: ProxyHeaders | None) -> Addresses:
    if transport is None:
        return None, None, False
    peer = transport.get_extra_info("peername")
    trusted = False
    if proxy is not None:
        # a TCP peer is a (host, port, ...) tuple; a unix-socket peer's name is a string
        # (often empty); None, a transport that lost its peer, is never trusted
        if isinstance(peer, tuple) and peer:
            trusted = proxy.trusts(str(peer[0]))
        elif isinstance(peer, str):
            trusted = proxy.trusts(None)
    return _address(peer), _address(transport.get_extra_info("sockname")), trusted


def _address(info: Any) -> tuple[str, int | None] | None:
    """``(host, port)``; a unix socket's own name is ``(path, None)`` (ASGI spec 2.2)."""
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, str) and info:
        return (info, None)
    return None
