"""The HTTP/1.1 driver's side of an ``Exchange``: a request handed to a ``Responder``
(the ASGI host) gets its body pumped from h11 with flow control, and its response written
through the same paths as every other response."""

from __future__ import annotations

import logging

import h11

from ..body.zerocopy import Segment
from ..message.response import Response, error_response
from .driver import DriverFactory, Upgrade
from .exchange import BODY_HIGH_WATER, ClientDisconnected, Exchange, Responder
from .http11 import CONTINUE_100
from .phase import CLOSING, EXCHANGE, NEVER, DriverBase
from .reader import Head

logger = logging.getLogger("zerohttp")


class ExchangeSide(DriverBase):
    """What an ``Exchange`` calls on its connection (``exchange.Connection``)."""

    __slots__ = ()

    @property
    def write_paused(self) -> bool:
        return self.flow.write_paused

    async def send_segments(self, fd: int, segments: list[Segment]) -> str:
        """For an exchange: bytes and ranges of ``fd`` in order, zero-copy when possible.

        Raises FileShrank, OSError or TimeoutError; the caller aborts the connection.
        """
        return await self.sender.send_segments(fd, segments)

    def finish_soon(self, exchange: Exchange, data: bytes) -> None:
        """Write ``data``, the end of ``exchange``'s response, and complete it, once the
        callbacks of this loop pass have run: the responses of many connections then leave
        back to back, and the client's side wakes once for them instead of once for each
        (an idle client woken per response costs the server a few µs of CPU each time).
        With no other responder running there is nothing to share a wake-up with: the
        bytes go now, not one loop pass later."""
        state = self.state
        if len(state.responders) < 2:
            self._finish_deferred(exchange, data)
            return
        batch = state.finishing
        if not batch:
            self.loop.call_soon(_finish_batch, batch)
        batch.append((self, exchange, data))

    def _finish_deferred(self, exchange: Exchange, data: bytes) -> None:
        if self.exchange is exchange:  # else aborted meanwhile: nothing more goes out
            self.write(data)
            exchange.complete()

    def _start_exchange(self, head: Head, responder: Responder, *, body_pending: bool) -> None:
        exchange = Exchange(
            self,
            head.request,
            body_pending=body_pending,
            keep_alive=head.keep_alive,
            expects_continue=head.expects_continue,
        )
        self.exchange = exchange
        self.phase = EXCHANGE
        task = self.loop.create_task(self._run_responder(responder, exchange))
        responders = self.state.responders
        responders.add(task)
        task.add_done_callback(responders.discard)
        if body_pending:
            self._pump_body(exchange)

    async def _run_responder(self, responder: Responder, exchange: Exchange) -> None:
        try:
            await responder.run(exchange)
        except Exception:
            logger.exception("responder failed for %r", exchange.request.target)
        finally:
            exchange.fail()  # a no-op once the response is complete

    def _pump_body(self, exchange: Exchange) -> None:
        """Move the request body from h11 to the exchange; stop reading above the mark."""
        parser = self.parser
        while parser is not None and not exchange.body_complete:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as exc:
                self.abort_exchange(exchange, exc)
                return
            kind = type(event)
            if kind is h11.Data:
                exchange.feed(event.data)  # type: ignore[union-attr]
            elif kind is h11.EndOfMessage:
                exchange.feed_end()
                self.deadline = NEVER  # the whole body is in: the wait for it is over
            elif event is h11.NEED_DATA:
                break
            else:  # ConnectionClosed before the body ended
                exchange.client_closed()
                break
        if exchange.buffered > BODY_HIGH_WATER:
            self.flow.pause_reading()

    def resume_body(self) -> None:
        """The responder took the buffered body: read on, unless a next request waits."""
        exchange = self.exchange
        if self.flow.read_paused and exchange is not None and not exchange.body_complete:
            self.flow.resume_reading()
            self._await_body()  # we held the client back until now: its wait starts here
            self._pump_body(exchange)

    def send_continue(self) -> None:
        """``100 Continue`` (once per request); the body it asks for is timed from now."""
        if not self.sent_continue:
            self.sent_continue = True
            self.write(CONTINUE_100)
        self._await_body()

    def exchange_done(self, exchange: Exchange) -> None:
        """The response is complete: on to the next request (the responder may run on)."""
        if self.exchange is not exchange:
            return
        self.exchange = None
        keep_alive = exchange.keep_alive and self.phase < CLOSING
        if not exchange.body_complete:
            keep_alive = False  # the rest of the body is still coming: never parse it as a head
        if self.state.log.active:
            self._log(exchange.request, exchange.status, exchange.body_path, exchange.body_bytes)
        self._response_done(keep_alive)
        if not self.busy:
            self._process()

    def exchange_failed(self, exchange: Exchange) -> None:
        """Nothing of the response went out: answer 500 and close."""
        if self.exchange is not exchange:
            return
        self.exchange = None
        self._respond(self.head, error_response(500, close=True), keep_alive=False)

    def switch_exchange(
        self, exchange: Exchange, response: Response, factory: DriverFactory
    ) -> None:
        """The responder answers with a 101: the transport goes to the driver ``factory``
        builds, which logs the connection when it ends."""
        if self.exchange is not exchange or self.phase >= CLOSING:
            raise ClientDisconnected("client disconnected")
        self.exchange = None
        self._upgrade(self.head, Upgrade(response, factory), logged=False)

    def abort_exchange(self, exchange: Exchange, exc: BaseException) -> None:
        if self.exchange is exchange:
            self.exchange = None
        exchange.connection_lost()
        self._abort(exc)


def _finish_batch(batch: list[tuple[ExchangeSide, Exchange, bytes]]) -> None:
    items = batch.copy()
    batch.clear()
    for connection, exchange, data in items:
        connection._finish_deferred(exchange, data)
