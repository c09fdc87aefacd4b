"""Deadlines, closing and switching: how an HTTP/1.1 connection waits, ends, or becomes
another protocol's.

The deadline is one float per connection, swept by ``ServerState``; what it means depends
on the phase (keep-alive, header, body or linger timeout). After a response that ends the
connection the driver closes by a lingering close where a reset could destroy the
response (``closing.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from ..message.response import error_response
from .closing import (
    LINGER_IDLE,
    LINGER_TOTAL,
    REJECT_LINGER_MAX,
    REJECT_LINGER_SECONDS,
    half_close,
)
from .driver import Upgrade, switch_protocol
from .exchange import Exchange
from .http11 import render_head
from .phase import (
    CLOSING,
    DISCARDING,
    EXCHANGE,
    HEAD,
    LINGERING,
    NEVER,
    REJECTED,
    SWITCHED,
    DriverBase,
)
from .reader import Head

logger = logging.getLogger("zerohttp")


class Lifecycle(DriverBase):
    """Deadlines, the close paths and the switch to another driver."""

    __slots__ = ()

    def _reject(self, transport: asyncio.Transport) -> None:
        """Over --limit-concurrency: 503, then close. The request the client is sending
        would make an immediate close reset the connection and lose the 503, so up to
        REJECT_LINGER_MAX rejected connections at a time half-close and drop input for
        REJECT_LINGER_SECONDS; beyond that they close at once. Descriptors stay bounded
        by the limit plus that constant, whatever clients do."""
        state = self.state
        self.phase = CLOSING
        self.flow.closed = True
        response = error_response(503, [("Retry-After", "1")], close=True)
        head = render_head(response, state.date.line(), keep_alive=False, http10=False)
        transport.write(head + cast(bytes, response.body))
        if state.rejecting < REJECT_LINGER_MAX and half_close(transport):
            state.rejecting += 1
            self.phase = REJECTED
            self.loop.call_later(REJECT_LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def _await_body(self) -> None:
        """Request body bytes are due: the next read must come within --body-timeout."""
        self.deadline = self.loop.time() + self.config.body_timeout

    def on_deadline(self) -> None:
        """Called by the server's sweeper once ``deadline`` has passed."""
        self.deadline = NEVER
        phase = self.phase
        if phase is LINGERING:
            self._close_now()
        elif phase is DISCARDING:
            self._body_timed_out(self.head)  # the body we read to drop stalled
        elif phase <= HEAD:
            self._close()
        elif phase is EXCHANGE and self.exchange is not None and not self.exchange.body_complete:
            self._exchange_body_stalled(self.exchange)

    def _exchange_body_stalled(self, exchange: Exchange) -> None:
        """No body bytes for --body-timeout while a responder has the request: unless we
        are the ones waiting (reading paused for the responder, or the client waits for
        our 100 Continue), 408 if none of the response has left, else close."""
        if self.flow.read_paused or exchange.awaiting_continue:
            self._await_body()
            return
        self.exchange = None
        exchange.connection_lost()  # the responder's receive() reports a disconnect
        if exchange.flushed:
            self._abort(TimeoutError("request body timed out"))
        else:
            self._body_timed_out(self.head)

    def _body_timed_out(self, head: Head | None) -> None:
        """408, then close at once: a client that stalls its body gets no linger."""
        if self.pending is not None:
            self.pending.release()
            self.pending = None
        request = head.request if head is not None else None
        response = error_response(408, close=True)
        http10 = request is not None and request.http_version == b"1.0"
        rendered = render_head(response, self.date_line(), keep_alive=False, http10=http10)
        body = cast(bytes, response.body)
        self.write(rendered + body)
        if self.state.log.active:
            self._log(request, 408, "memory", len(body))
        self._close()

    def _close(self, *, linger: bool = False) -> None:
        """Close after everything written so far has been sent; after a response
        (``linger``) by a lingering close (``closing.py``) unless the client has closed."""
        if self.phase >= CLOSING:
            return
        self.phase = CLOSING
        self.flow.closed = True
        self.deadline = NEVER
        self.sender.release()
        transport = self.transport
        if transport is None:
            return
        if linger and not self.eof and not self.state.stopping and half_close(transport):
            self.flow.resume_reading()
            self.phase = LINGERING
            now = self.loop.time()
            self.deadline = now + LINGER_IDLE
            self.linger_until = now + LINGER_TOTAL
        else:
            transport.close()

    def _close_now(self) -> None:
        self.deadline = NEVER
        if self.transport is not None:
            self.transport.close()

    def _abort(self, exc: BaseException) -> None:
        """Drop the connection now: an incomplete response must not look complete."""
        logger.debug("aborting connection: %r", exc)
        if self.phase is not SWITCHED:
            self.phase = CLOSING
        self.flow.closed = True
        self.deadline = NEVER
        if self.transport is not None:
            self.transport.abort()
        self.sender.release()

    def _upgrade(self, head: Head | None, upgrade: Upgrade, *, logged: bool = True) -> None:
        """Send the 101, then hand the transport and the bytes past this head over
        (``logged=False``: the new driver logs the connection itself, when it ends)."""
        response = upgrade.response
        self.write(render_head(response, self.state.date.line(), keep_alive=True, http10=False))
        if logged and head is not None and self.state.log.active:
            self._log(head.request, response.status, "memory", 0)
        leftover = self.buffer
        if self.parser is not None:
            leftover = self.parser.trailing_data[0]
            self.parser = None
        self.buffer = b""
        self._switch(upgrade.factory(self.state), leftover)

    def _switch(self, driver: asyncio.Protocol, data: bytes) -> None:
        self.phase = SWITCHED
        self.deadline = NEVER
        self.sender.release()
        self.state.connections.discard(self)
        assert self.transport is not None
        switch_protocol(self.transport, driver, data)
        if self.eof:  # the client's EOF came before the switch: the new driver learns it
            driver.eof_received()

    def close_if_idle(self) -> bool:
        """For graceful shutdown: close now unless a request is in progress (whose
        responder hears of it, if it asked: a WebSocket handshake that waits for its app)."""
        if self.phase is LINGERING:
            self._close_now()  # shutting down: the server closes on its own, as on a timeout
            return True
        if self.busy or self.head is not None:
            exchange = self.exchange
            if exchange is not None and exchange.on_server_closing is not None:
                exchange.on_server_closing()
            return False
        self._close()
        return True

    def abort(self) -> None:
        self._abort(ConnectionAbortedError("server shutting down"))
