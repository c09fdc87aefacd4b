"""The HTTP/1.1 driver: bytes in, request heads out to the handler; responses in, bytes out.

Each request cycle starts on the bytes buffered so far: ``simple_head.read_simple_head``
reads a complete bodiless GET/HEAD head (most requests to a static server), and any other
head goes to a fresh ``h11.Connection`` for that one cycle, whose leftover bytes come back
to the buffer afterwards (responses are rendered by us and never pass through h11).
``reader.head_of_h11`` reads what the driver needs from such a head in one pass.

The driver keeps the connection's phase (``phase.Phase``): the request cycle is written
here, the response side, the exchange side and the lifecycle (deadlines, closing,
switching) beside it as classes of their own (``phase.py`` says why), and every other
concern has its own unit: ``FlowControl`` (both directions), ``FileSender`` (sendfile,
the fallback and TLS bodies), ``ResponseLog`` (access log and metrics), ``closing``
(lingering close), ``ServerState``'s sweeper (deadlines) and ``driver`` (the switch to
another protocol). A handler answers synchronously with a ``Response``, with a
``Responder`` that runs as a task over an ``Exchange`` (``exchange.py``), or with an
``Upgrade``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

import h11

from ..message.response import FileBody, RequestHead, Response, error_response
from .closing import LINGER_IDLE
from .driver import Upgrade, preface_state
from .exchange import Exchange
from .exchange_side import ExchangeSide
from .filesender import FileSender
from .flow import FlowControl
from .lifecycle import Lifecycle
from .phase import (
    CLOSING,
    DISCARDING,
    EXCHANGE,
    HEAD,
    IDLE,
    LINGERING,
    NEVER,
    REJECTED,
    SENDING,
    SWITCHED,
    Phase,
)
from .reader import Head, head_of_h11
from .responding import Responding, peer_address
from .server_state import ConnectionSettings, Handler, ServerState
from .simple_head import read_simple_head

__all__ = ["ConnectionSettings", "HTTPConnection", "Handler", "Phase", "ServerState"]

logger = logging.getLogger("zerohttp")

# Bytes an SSL transport may buffer before it pauses us (see connection_made).
TLS_WRITE_HIGH = 256 * 1024


class HTTPConnection(Responding, ExchangeSide, Lifecycle):
    __slots__ = ()

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.loop = state.loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.flow = FlowControl(self.loop, state.config.send_timeout)
        self.sender = FileSender(self.flow, self.write, state.config.send_timeout)
        self.phase = HEAD
        self.tls = False
        self.remote_addr: str | None = None  # for the access log, looked up once
        self.request_started = 0.0  # perf_counter(), kept only while responses are timed
        self.deadline = NEVER  # loop time at which the sweeper calls on_deadline
        self.linger_until = NEVER
        self.task: asyncio.Task[None] | None = None
        self.body_in_flight: FileBody | None = None  # closed on loss, even before its task ran
        self.exchange: Exchange | None = None
        # Unparsed bytes stay in ``buffer`` until the start of a request cycle, where
        # ``read_simple_head`` reads the common shape; anything else goes to a fresh h11
        # parser for that one cycle (``parser``), whose leftovers come back to ``buffer``.
        self.buffer = b""
        self.eof = False  # the client shut its side while no parser was active
        self.served = 0  # responses sent: a preface is looked for before the first only
        # per request cycle
        self.parser: h11.Connection | None = None
        self.head: Head | None = None
        self.pending: Response | None = None  # sent once the request body has been dropped
        self.discarded = 0
        self.sent_continue = False

    @property
    def busy(self) -> bool:
        """A response is being written asynchronously, or a responder has the request."""
        return self.phase is SENDING or self.phase is EXCHANGE

    @property
    def lingering(self) -> bool:
        return self.phase is LINGERING

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        state = self.state
        if state.access_log is not None:  # now: a transport closed by a reset forgets it
            self.remote_addr = peer_address(transport)
        if state.limit and len(state.connections) >= state.limit:
            self._reject(transport)
            return
        self.flow.attach(transport)
        # TCP_NODELAY: both loops set it on every TCP transport (asyncio's _set_nodelay,
        # uvloop's TCPTransport); tests/test_e2e_http.py checks that they still do.
        zero_copy = state.zero_copy
        if transport.get_extra_info("sslcontext") is not None:
            # An SSL transport with a high-water mark of 0 pauses its writing for good (the
            # head goes out, the body never does): give it room, and bodies by reading.
            self.tls = True
            zero_copy = False
            transport.set_write_buffer_limits(high=TLS_WRITE_HIGH, low=TLS_WRITE_HIGH // 4)
        else:
            transport.set_write_buffer_limits(high=0, low=0)
        self.sender.attach(transport, zero_copy=zero_copy)
        state.connections.add(self)
        self.deadline = self.loop.time() + self.config.header_timeout

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase >= CLOSING:
            if phase is LINGERING:  # dropped; the client is still there: wait a while longer
                self.deadline = min(self.loop.time() + LINGER_IDLE, self.linger_until)
            return
        parser = self.parser
        if parser is not None:
            parser.receive_data(data)
        elif self.buffer:
            self.buffer += data
        else:
            self.buffer = data
        if phase is IDLE:
            self.phase = HEAD
            self.deadline = self.loop.time() + self.config.header_timeout
        elif phase is DISCARDING:  # a body read to be dropped: it is moving
            self._await_body()
        elif phase is EXCHANGE:
            exchange = self.exchange
            if exchange is not None and not exchange.body_complete:
                self._await_body()
                self._pump_body(exchange)
            else:
                self.flow.pause_reading()
            return
        elif phase is SENDING:
            self.flow.pause_reading()
            return
        self._process()

    def eof_received(self) -> bool:
        if self.phase >= CLOSING:
            self._close_now()
            return False
        self.eof = True  # the client sends no more: a close needs no linger
        if self.parser is not None:
            self.parser.receive_data(b"")
        exchange = self.exchange
        if exchange is not None:
            if not exchange.body_complete:
                self._pump_body(exchange)
            exchange.client_closed()
        elif not self.busy:
            self._process()
        # keep the write side open for the response in progress (TLS has no half-close:
        # asyncio warns that True has no effect there)
        return not self.tls

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.phase is REJECTED:
            self.state.rejecting -= 1
        if self.phase is not SWITCHED:
            self.phase = CLOSING
        self.deadline = NEVER
        self.flow.lost()
        if self.task is not None:
            self.task.cancel()
        if self.body_in_flight is not None:
            self.body_in_flight.close()
        if self.pending is not None:
            self.pending.release()
            self.pending = None
        if self.exchange is not None:
            self.exchange.connection_lost()  # the responder learns it; it is not cancelled
        self.sender.release()
        self.state.connections.discard(self)

    def _process(self) -> None:
        """Handle every complete request buffered, in order, until one goes async."""
        while self.phase <= DISCARDING:
            parser = self.parser
            if parser is None:
                buffer = self.buffer
                if not buffer:
                    if self.eof:
                        self._close()  # the client closed between requests
                    return
                simple = read_simple_head(buffer, self.config.max_header_bytes)
                if simple is not None:
                    request, used, keep_alive = simple
                    self.buffer = buffer[used:]
                    self._on_head(Head(request, 0, keep_alive))
                    continue
                if self.state.prefaces and not self.served and self._by_preface(buffer):
                    return
                parser = self._start_parser()
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as exc:
                if self.state.log.timed and self.head is None:
                    # a head h11 refused was never timed: its life is this moment
                    self.request_started = time.perf_counter()
                self._refuse(exc.error_status_hint)
                return
            if event is h11.NEED_DATA:
                self._need_data()
                return
            kind = type(event)
            if kind is h11.Request:
                self._on_head(head_of_h11(event, self.config.max_header_bytes))  # type: ignore[arg-type]
            elif kind is h11.Data:
                self._on_body_bytes(len(event.data))  # type: ignore[union-attr]
            elif kind is h11.EndOfMessage:
                response, self.pending = self.pending, None
                assert response is not None and self.head is not None
                self._respond(self.head, response, self._keep_alive(self.head, response))
            else:  # ConnectionClosed (PAUSED cannot happen: one parser per cycle)
                self._close()
                return

    def _start_parser(self) -> h11.Connection:
        """Hand the buffered bytes (and a seen EOF) to h11 for this request cycle."""
        parser = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes)
        if self.buffer:
            parser.receive_data(self.buffer)
            self.buffer = b""
        if self.eof:
            parser.receive_data(b"")
        self.parser = parser
        return parser

    def _by_preface(self, buffer: bytes) -> bool:
        """A connection opening with a registered preface goes to its driver; True when
        that happened or more bytes are needed to tell."""
        found = preface_state(buffer, self.state.prefaces)
        if found is False:
            return False
        if found is not True:
            self.buffer = b""
            self._switch(found(self.state), buffer)
        return True

    def _on_head(self, head: Head) -> None:
        if self.state.log.timed:
            self.request_started = time.perf_counter()
        if head.refusal is not None:
            self._refuse(head.refusal)
            return
        self.head = head
        request = head.request
        body = head.body
        if self.state.health is not None:
            health = self.state.health.answer(request)
            if health is not None:
                # never logged nor counted: probes every few seconds would drown the access
                # log and skew the request metrics; a body sent with one is not read (close)
                keep_alive = body == 0 and self._keep_alive(head, health)
                self._respond(head, health, keep_alive, logged=False)
                return
        if body == 0:
            # Complete already: h11's EndOfMessage would only cost another next_event();
            # the parser (if any) is dropped after the response, keeping what it buffered.
            self.deadline = NEVER
            try:
                answer = self.state.handler.handle(request)
            except Exception:
                answer = self._handler_failed(request)
            if isinstance(answer, Response):
                self._respond(head, answer, head.keep_alive and not answer.close)
            elif isinstance(answer, Upgrade):
                self._upgrade(head, answer)
            else:
                self._start_exchange(head, answer, body_pending=False)
            return
        self._await_body()
        try:
            answer = self.state.handler.handle(request)
        except Exception:
            answer = self._handler_failed(request)
        if isinstance(answer, Upgrade):  # an upgrade carries no body: refuse it whole
            answer = error_response(400, close=True)
        if not isinstance(answer, Response):
            self._start_exchange(head, answer, body_pending=True)
        elif body is None or body > self.config.max_discard_bytes:
            # A body we would read only to drop: answer now and close instead.
            self._respond(head, answer, keep_alive=False)
        else:
            self.pending = answer
            self.phase = DISCARDING

    def _on_body_bytes(self, count: int) -> None:
        self.discarded += count
        response = self.pending
        if self.discarded > self.config.max_discard_bytes and response is not None:
            self.pending = None
            self._respond(self.head, response, keep_alive=False)

    def _need_data(self) -> None:
        head = self.head
        if head is not None and self.pending is not None and head.expects_continue:
            self.send_continue()

    @staticmethod
    def _handler_failed(request: RequestHead) -> Response:
        logger.exception("handler failed for %r", request.target)
        return error_response(500, close=True)

    @staticmethod
    def _keep_alive(head: Head, response: Response) -> bool:
        return head.keep_alive and not response.close

    def _refuse(self, status: int) -> None:
        """Answer a request we cannot parse or accept, then close."""
        self.deadline = NEVER
        self._respond(None, error_response(status, close=True), keep_alive=False)
