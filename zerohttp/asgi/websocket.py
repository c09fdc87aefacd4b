"""An ASGI application over a WebSocket (the ASGI ``websocket`` scope, spec 2.5).

The handshake runs as an ordinary exchange on the HTTP/1.1 driver, so a denial is an
ordinary HTTP response: ``websocket.close`` before accept is a 403, and the
``websocket.http.response`` extension sends the application's own status, headers and
body. ``websocket.accept`` answers 101 and switches the connection to the WebSocket driver
(``Exchange.switch``); from then on ``receive`` and ``send`` talk to that driver.

The application's end: an exception closes an open connection with 1011 (a 500 before the
handshake); returning without closing closes it with 1000; returning without accepting or
denying is a 500 with an error logged, as an HTTP app that never starts its response.
Once the connection is over for the application (its denial sent, its close sent, the
client gone) every send raises ``ClientDisconnected``, an ``OSError`` (spec 2.4); an
invalid message (both or neither of bytes and text, a second accept, a 1xx denial status)
raises RuntimeError. tests/test_ws_differential.py holds these rules against uvicorn's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ..http.deferred import send_response
from ..http.exchange import FINISHED, READY, ClientDisconnected, Exchange
from ..http.server_state import ServerState
from ..message.response import error_response
from ..websocket.codec import ABNORMAL, ServerCodec
from ..websocket.driver import GOING_AWAY, INTERNAL_ERROR, Ended, WebSocketDriver, WebSocketSettings
from ..websocket.handshake import Offer, accepted
from .loader import ASGIApp, Message

logger = logging.getLogger("zerohttp")

RESPONSE_START = "websocket.http.response.start"
RESPONSE_BODY = "websocket.http.response.body"


class WebSocketHost(Protocol):
    """What a session needs of the ASGI host (``host.ASGIHost``)."""

    app: ASGIApp

    def websocket_scope(self, exchange: Exchange, offer: Offer) -> dict[str, Any]: ...


class WebSocketSession:
    """One application call for one WebSocket handshake (a ``Responder``)."""

    def __init__(self, host: WebSocketHost, offer: Offer, settings: WebSocketSettings) -> None:
        self.host = host
        self.offer = offer
        self.settings = settings
        self.exchange: Exchange | None = None
        self.driver: WebSocketDriver | None = None
        self.connected = False  # websocket.connect handed over
        self.denied = False  # answered over HTTP: no WebSocket will follow
        # resolved when the server shuts down before the handshake is decided
        self.server_closing: asyncio.Future[None] | None = None
        self.told_going_away = False  # the app's receive said so: nothing may follow

    async def run(self, exchange: Exchange) -> None:
        self.exchange = exchange
        exchange.on_server_closing = self._server_closing
        scope = self.host.websocket_scope(exchange, self.offer)
        try:
            await self.host.app(scope, self.receive, self.send)
        except ClientDisconnected:
            pass  # raised by our send: the spec asks us not to log it
        except Exception:
            target = exchange.request.target.decode("latin-1")
            logger.exception("Exception in ASGI application (WebSocket %s)", target)
            self._failed()
            return
        driver = self.driver
        if driver is not None:
            driver.close(1000)
        elif not self.denied and exchange.phase is READY:
            if not self.told_going_away:
                logger.error("ASGI callable returned without accepting or closing the WebSocket")
                await send_response(exchange, error_response(500, close=True))
            else:  # told of the shutdown, it gave up: as any request refused while stopping
                await send_response(exchange, error_response(503, close=True))
        elif exchange.phase is not FINISHED:
            logger.error("ASGI callable returned without completing its denial response")

    def _failed(self) -> None:
        driver = self.driver
        if driver is not None:
            driver.fail(INTERNAL_ERROR, "")
        # before the handshake the exchange answers 500 (Exchange.fail, run by the driver)

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        driver = self.driver
        if driver is None:
            code = await self._client_gone()
            self.told_going_away = code == GOING_AWAY
            return {"type": "websocket.disconnect", "code": code, "reason": ""}
        got = await driver.receive()
        if isinstance(got, Ended):
            return {"type": "websocket.disconnect", "code": got.code, "reason": got.reason}
        if isinstance(got, str):
            return {"type": "websocket.receive", "text": got}
        return {"type": "websocket.receive", "bytes": got}

    async def _client_gone(self) -> int:
        """Before the handshake ends, a second receive waits for the client to leave (1006)
        or for the server to shut down (1001, going away)."""
        exchange = self.exchange
        assert exchange is not None
        closing = self.server_closing
        if closing is None:
            closing = self.server_closing = asyncio.get_running_loop().create_future()
        gone = asyncio.ensure_future(self._until_client_gone(exchange))
        try:
            await asyncio.wait((gone, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        return GOING_AWAY if closing.done() else ABNORMAL

    async def _until_client_gone(self, exchange: Exchange) -> None:
        while not self.denied and await exchange.receive_body() is not None:
            pass

    def _server_closing(self) -> None:
        closing = self.server_closing
        if closing is None:
            closing = self.server_closing = asyncio.get_running_loop().create_future()
        if not closing.done():
            closing.set_result(None)

    async def send(self, message: Message) -> None:
        kind = message["type"]
        driver = self.driver
        if driver is not None:
            if kind == "websocket.send":
                if driver.write_message(message_payload(message)):
                    await driver.drain()
            elif kind == "websocket.close":
                if driver.ended is not None:
                    raise ClientDisconnected("WebSocket closed")
                driver.close(int(message.get("code") or 1000), str(message.get("reason") or ""))
            elif kind == "websocket.accept":
                raise RuntimeError("websocket.accept sent twice")
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} on an open WebSocket")
            return
        exchange = self.exchange
        assert exchange is not None
        if (
            exchange.closed_for_sending
            or (self.denied and exchange.phase is FINISHED)
            or self.told_going_away
        ):
            # the client is gone (and the app was told), the denial is out and the
            # connection closes with it, or the app was told the server is going away:
            # spec 2.4's OSError
            raise ClientDisconnected("WebSocket closed before the handshake completed")
        if kind == "websocket.accept":
            self._accept(exchange, message)
        elif kind == "websocket.close":
            if self.denied:
                raise RuntimeError(f"websocket.close inside a {RESPONSE_START} response")
            self.denied = True
            await send_response(exchange, error_response(403, close=True))
        elif kind == RESPONSE_START:
            if exchange.phase is not READY:
                raise RuntimeError(f"{RESPONSE_START} sent twice")
            status = int(message["status"])
            if not 200 <= status < 600:  # a 1xx is no answer; a 101 would fake the switch
                raise RuntimeError(f"{RESPONSE_START} needs a final status, not {status}")
            self.denied = True
            headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
            headers.append((b"connection", b"close"))
            exchange.start(status, headers)
        elif kind == RESPONSE_BODY:
            if not self.denied:
                raise RuntimeError(f"{RESPONSE_BODY} before {RESPONSE_START}")
            await exchange.write(
                bytes(message.get("body", b"")), more=bool(message.get("more_body", False))
            )
        elif kind == "websocket.send":
            raise RuntimeError("websocket.send before websocket.accept")
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")

    def _accept(self, exchange: Exchange, message: Message) -> None:
        if self.denied:
            raise RuntimeError("websocket.accept after the handshake was denied")
        offer = self.offer
        subprotocol = message.get("subprotocol")
        headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
        response = accepted(offer, subprotocol, headers)
        request = exchange.request
        settings = self.settings

        def driver(state: ServerState) -> WebSocketDriver:
            codec = ServerCodec(
                max_size=settings.max_size, extensions=offer.extensions, hold_close=True
            )
            self.driver = WebSocketDriver(state, settings, codec, request)
            return self.driver

        exchange.switch(response, driver)


def message_payload(message: Message) -> str | bytes:
    """A ``websocket.send``'s text or bytes: exactly one of them, the other absent or None."""
    data: Any = message.get("bytes")
    text: Any = message.get("text")
    if data is not None and text is None:
        return bytes(data)
    if text is not None and data is None:
        return str(text)
    raise RuntimeError("websocket.send needs exactly one of bytes and text")
