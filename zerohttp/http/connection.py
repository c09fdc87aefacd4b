"""The asyncio edge: one ``HTTPConnection`` per TCP connection, moving bytes only.

Each request cycle starts on the bytes buffered so far: ``simple_head.read_simple_head``
reads a complete bodiless GET/HEAD head (most requests to a static server), and any other
head goes to a fresh ``h11.Connection`` for that one cycle, whose leftover bytes come back
to the buffer afterwards (responses are rendered by us and never pass through h11). The
handler decides the response; this class writes it — small bodies through the
transport, file bodies zero-copy straight onto the socket, or through the aiofiles
fallback — and keeps the connection's bookkeeping: keep-alive, pipelining order,
discarded request bodies, timeouts and flow control.

A handler answers synchronously with a ``Response`` (the static files) or with a
``Responder``, which then runs as a task over an ``Exchange`` (``exchange.py``): it reads
the request body as it arrives and writes its response through the same body paths.

Flow control invariant: the transport's write-buffer limits are (0, 0), so it pauses us
the moment anything stays buffered, and no new response starts until it is empty again.
That bounds buffered output to one response and makes direct socket writes safe.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Coroutine
from typing import Any, Protocol, cast

import h11

from ..body.fallback import copy_segments, render_cached
from ..body.zerocopy import (
    FileShrank,
    FileTransfer,
    Segment,
    SendfileUnsupported,
    complete_transfer,
)
from ..message.dates import DateHeader
from ..message.response import FileBody, RequestHead, Response, error_response
from .accesslog import AccessLog
from .exchange import BODY_HIGH_WATER, Exchange, Responder
from .health import health_check
from .http11 import (
    CONTINUE_100,
    declared_body,
    expects_continue,
    keep_alive_requested,
    render_head,
    request_error,
)
from .simple_head import read_simple_head
from .stats import Stats

logger = logging.getLogger("zerohttp")

# How long a lingering close waits for the client's EOF before closing anyway.
# A lingering close drops what the client still sends until it closes its side, waiting
# at most LINGER_IDLE seconds for each next packet and LINGER_TOTAL in all (nginx's
# lingering_timeout and lingering_time).
LINGER_IDLE = 5.0
LINGER_TOTAL = 30.0
# Connections refused over --limit-concurrency that may linger, and for how long.
REJECT_LINGER_MAX = 32
REJECT_LINGER_SECONDS = 1.0
NEVER = float("inf")
# Longest pause between two passes of the deadline sweeper: a deadline is kept to within it.
SWEEP_MAX = 0.5
# Bytes an SSL transport may buffer before it pauses us (see connection_made).
TLS_WRITE_HIGH = 256 * 1024
# Without zero-copy, a response with at most this many file bytes, all page-cached, is
# read and written at once in the loop (no task, no thread hop); bigger ones stream.
READ_NOW_MAX = 64 * 1024


def header_pairs(event: h11.Request) -> tuple[tuple[bytes, bytes], ...]:
    """``(lower-case name, value)`` pairs, read once.

    Iterating h11's ``Headers`` goes through ``Sequence.__iter__`` and a ``__getitem__``
    per field (~12 calls per request measured); its ``_full_items`` list is the same data.
    """
    full = getattr(event.headers, "_full_items", None)
    if full is None:
        return tuple(event.headers)
    return tuple([(name, value) for _, name, value in full])


def peer_address(transport: asyncio.BaseTransport | None) -> str:
    """The client's address for the access log; "-" where there is none (a unix socket)."""
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else "-"


class ConnectionSettings(Protocol):
    """The settings this layer reads (``zerohttp.Config`` has them all)."""

    @property
    def max_header_bytes(self) -> int: ...
    @property
    def keepalive_timeout(self) -> float: ...
    @property
    def header_timeout(self) -> float: ...
    @property
    def send_timeout(self) -> float: ...
    @property
    def body_timeout(self) -> float: ...
    @property
    def max_discard_bytes(self) -> int: ...
    @property
    def limit_concurrency(self) -> int: ...
    @property
    def health_path(self) -> str: ...


class Handler(Protocol):
    def handle(self, request: RequestHead) -> Response | Responder: ...


class ServerState:
    """What every connection of one server shares."""

    def __init__(
        self,
        config: ConnectionSettings,
        handler: Handler,
        *,
        zero_copy: bool,
        access_log: AccessLog | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.config = config
        self.handler = handler
        self.zero_copy = zero_copy
        self.date = DateHeader()
        self.connections: set[HTTPConnection] = set()
        self.limit = config.limit_concurrency  # 0: none
        self.rejecting = 0  # connections over the limit, answered 503, not yet closed
        self.responders: set[asyncio.Task[None]] = set()  # may outlive their connection
        self.access_log = access_log
        self.debug_responses = logger.isEnabledFor(logging.DEBUG)
        self.stats = stats
        self.log_responses = self.debug_responses or access_log is not None or stats is not None
        # a duration is measured only for what reports one (metrics, JSON lines)
        self.time_requests = stats is not None or (
            access_log is not None and access_log.needs_duration
        )
        timeouts = (
            config.keepalive_timeout,
            config.header_timeout,
            config.body_timeout,
            LINGER_IDLE,
        )
        self.sweep_interval = min(SWEEP_MAX, min(timeouts) / 4)
        self._sweeper: asyncio.TimerHandle | None = None
        self.health = health_check(config.health_path)  # None: off

    def start_sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        """One periodic pass over all connections enforces every idle, header, body and
        linger deadline: far cheaper than a timer handle cancelled and re-armed per request."""
        now = loop.time()
        for connection in list(self.connections):
            if connection.deadline <= now:
                connection.on_deadline()
        self._sweeper = loop.call_later(self.sweep_interval, self.start_sweeping, loop)

    def stop_sweeping(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


class HTTPConnection(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        # Every attribute is set here and none elsewhere, and at most 29 of them: up to that
        # CPython (3.11-3.13) keeps them in a compact layout shared by all instances; a 30th
        # turns each connection's attributes into a dict of its own (296 -> 1584 bytes) and
        # cost 2-4 % of the small-file rate (benchmarks/RESULTS.md, issue 16).
        # shared
        self.state = state
        self.config = state.config
        self.loop = asyncio.get_running_loop()
        # per connection
        self.transport: asyncio.Transport | None = None
        self.sock: socket.socket | None = None  # borrows the transport's fd, for send(MSG_MORE)
        self.zero_copy = state.zero_copy
        self.closing = False
        self.tls = False
        self.remote_addr: str | None = None  # for the access log, looked up once
        self.request_started = 0.0  # perf_counter(), kept only while responses are logged
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.deadline = NEVER  # loop time at which the sweeper closes us (see ServerState)
        self.idle = False
        self.lingering = False
        self.linger_until = NEVER
        self.rejected = False  # answered 503 over the concurrency limit
        self.task: asyncio.Task[None] | None = None
        self.busy = False  # a response is still being written asynchronously
        self.body_in_flight: FileBody | None = None
        self.exchange: Exchange | None = None  # a Responder's request in progress
        # Unparsed bytes stay in ``buffer`` until the start of a request cycle, where
        # ``read_simple_head`` reads the common shape; anything else goes to a fresh h11
        # parser for that one cycle (``parser``), whose leftovers come back to ``buffer``.
        self.buffer = b""
        self.eof = False  # the client shut its side while no parser was active
        # per request cycle
        self.parser: h11.Connection | None = None
        self.request: RequestHead | None = None
        self.pending: Response | None = None  # sent once the request body has been dropped
        self.discarded = 0
        self.sent_continue = False

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

    # --- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        state = self.state
        if state.access_log is not None:  # now: a transport closed by a reset forgets it
            self.remote_addr = peer_address(transport)
        if state.limit and len(state.connections) >= state.limit:
            self._reject(transport)
            return
        # TCP_NODELAY: both loops set it on every TCP transport (asyncio's _set_nodelay,
        # uvloop's TCPTransport); tests/test_e2e_http.py checks that they still do.
        if transport.get_extra_info("sslcontext") is not None:
            # An SSL transport with a high-water mark of 0 pauses its writing for good (the
            # head goes out, the body never does): give it room, and bodies by reading.
            self.tls = True
            self.zero_copy = False
            transport.set_write_buffer_limits(high=TLS_WRITE_HIGH, low=TLS_WRITE_HIGH // 4)
        else:
            transport.set_write_buffer_limits(high=0, low=0)
            if transport.get_extra_info("socket") is None:
                self.zero_copy = False
        self.state.connections.add(self)
        self._arm_timer(self.config.header_timeout, idle=False)

    def _reject(self, transport: asyncio.Transport) -> None:
        """Over --limit-concurrency: 503, then close. The request the client is sending
        would make an immediate close reset the connection and lose the 503, so up to
        REJECT_LINGER_MAX rejected connections at a time half-close and drop input for
        REJECT_LINGER_SECONDS; beyond that they close at once. Descriptors stay bounded
        by the limit plus that constant, whatever clients do."""
        state = self.state
        self.closing = True
        response = error_response(503, [("Retry-After", "1")], close=True)
        head = render_head(503, response.fields, state.date.line(), keep_alive=False, http10=False)
        transport.write(head + cast(bytes, response.body))
        if state.rejecting < REJECT_LINGER_MAX and transport.can_write_eof():
            state.rejecting += 1
            self.rejected = True
            transport.write_eof()
            self.loop.call_later(REJECT_LINGER_SECONDS, transport.close)
        else:
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            if self.lingering:  # dropped; the client is still there: wait a while longer
                self.deadline = min(self.loop.time() + LINGER_IDLE, self.linger_until)
            return
        parser = self.parser
        if parser is not None:
            parser.receive_data(data)
        elif self.buffer:
            self.buffer += data
        else:
            self.buffer = data
        if self.busy:
            exchange = self.exchange
            if exchange is not None and not exchange.body_complete:
                self._await_body()
                self._pump_body(exchange)
            else:
                self._pause_reading()
            return
        if self.idle:
            self._arm_timer(self.config.header_timeout, idle=False)
        elif self.pending is not None:  # a body read to be dropped: it is moving
            self._await_body()
        self._process()

    def eof_received(self) -> bool:
        if self.closing:
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
        elif not self.busy and not self.closing:
            self._process()
        # keep the write side open for the response in progress (TLS has no half-close:
        # asyncio warns that True has no effect there)
        return not self.tls  # keep the write side open for the response in progress

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.rejected:
            self.rejected = False
            self.state.rejecting -= 1
        self.closing = True
        self._cancel_timer()
        self._wake_drain(ConnectionResetError("connection lost"))
        if self.task is not None:
            self.task.cancel()
        if self.body_in_flight is not None:
            self.body_in_flight.close()
        if self.pending is not None:
            self.pending.release()
            self.pending = None
        if self.exchange is not None:
            self.exchange.connection_lost()  # the responder learns it; it is not cancelled
        self._close_socket()
        self.state.connections.discard(self)

    # --- request cycle -----------------------------------------------------------------

    def _process(self) -> None:
        """Handle every complete request buffered, in order, until one goes async."""
        while not self.busy and not self.closing:
            parser = self.parser
            if parser is None:
                buffer = self.buffer
                if not buffer:
                    if self.eof:
                        self._close()  # the client closed between requests
                    return
                simple = read_simple_head(buffer, self.config.max_header_bytes)
                if simple is not None:
                    request, used = simple
                    self.buffer = buffer[used:]
                    self._on_request(request)
                    continue
                parser = self._start_parser()
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as exc:
                if self.state.time_requests and self.request is None:
                    # a head h11 refused was never timed: its life is this moment
                    self.request_started = time.perf_counter()
                self._refuse(exc.error_status_hint)
                return
            if event is h11.NEED_DATA:
                self._need_data()
                return
            kind = type(event)
            if kind is h11.Request:
                self._on_h11_request(event)  # type: ignore[arg-type]
            elif kind is h11.Data:
                self._on_body_bytes(len(event.data))  # type: ignore[union-attr]
            elif kind is h11.EndOfMessage:
                response, self.pending = self.pending, None
                assert response is not None and self.request is not None
                self._respond(self.request, response, self._keep_alive(self.request, response))
            else:  # ConnectionClosed (PAUSED cannot happen: one parser per cycle)
                self._close()
                return

    def _on_h11_request(self, event: h11.Request) -> None:
        self._on_request(
            RequestHead(event.method, event.target, event.http_version, header_pairs(event))
        )

    def _on_request(self, request: RequestHead) -> None:
        if self.state.time_requests:
            self.request_started = time.perf_counter()
        headers = request.headers
        status = request_error(
            request.http_version,
            request.method,
            request.target,
            headers,
            self.config.max_header_bytes,
        )
        if status is not None:
            self._refuse(status)
            return
        self.request = request
        body = declared_body(headers)
        if self.state.health is not None:
            health = self.state.health.answer(request)
            if health is not None:
                # never logged nor counted: probes every few seconds would drown the access
                # log and skew the request metrics; a body sent with one is not read (close)
                keep_alive = body == 0 and self._keep_alive(request, health)
                self._respond(request, health, keep_alive, logged=False)
                return
        if body == 0:
            # Complete already: h11's EndOfMessage would only cost another next_event();
            # the parser (if any) is dropped after the response, keeping what it buffered.
            self._dispatch(request)
            return
        self._await_body()
        answer = self._handle(request)
        if not isinstance(answer, Response):
            self._start_exchange(request, answer, body_pending=True)
        elif body is None or body > self.config.max_discard_bytes:
            # A body we would read only to drop: answer now and close instead.
            self._respond(request, answer, keep_alive=False)
        else:
            self.pending = answer

    def _on_body_bytes(self, count: int) -> None:
        self.discarded += count
        response = self.pending
        if self.discarded > self.config.max_discard_bytes and response is not None:
            self.pending = None
            self._respond(self.request, response, keep_alive=False)

    def _need_data(self) -> None:
        request = self.request
        if (
            request is not None
            and self.pending is not None
            and not self.sent_continue
            and expects_continue(request.http_version, request.headers)
        ):
            self.sent_continue = True
            self.write(CONTINUE_100)

    def _dispatch(self, request: RequestHead) -> None:
        """A request whose body (if any) is complete: answer it, or start its responder."""
        self._cancel_timer()
        answer = self._handle(request)
        if isinstance(answer, Response):
            self._respond(request, answer, self._keep_alive(request, answer))
        else:
            self._start_exchange(request, answer, body_pending=False)

    def _handle(self, request: RequestHead) -> Response | Responder:
        try:
            return self.state.handler.handle(request)
        except Exception:
            logger.exception("handler failed for %r", request.target)
            return error_response(500, close=True)

    @staticmethod
    def _keep_alive(request: RequestHead, response: Response) -> bool:
        return not response.close and keep_alive_requested(request.http_version, request.headers)

    def _refuse(self, status: int) -> None:
        """Answer a request we cannot parse or accept, then close."""
        self._cancel_timer()
        self._respond(None, error_response(status, close=True), keep_alive=False)

    def _respond(
        self,
        request: RequestHead | None,
        response: Response,
        keep_alive: bool,
        *,
        logged: bool = True,
    ) -> None:
        http10 = request is not None and request.http_version == b"1.0"
        head = render_head(
            response.status,
            response.fields,
            self.state.date.line(),
            keep_alive=keep_alive,
            http10=http10,
        )
        body = response.body
        if request is not None and request.method == b"HEAD":
            response.release()
            body = b""
        if isinstance(body, FileBody):
            if body.segments:
                self._send_file(request, response.status, [head, *body.segments], body, keep_alive)
                return
            body.close()
            body = b""
        self.write(head + body if body else head)
        if self.state.log_responses and logged:
            self._log(request, response.status, "memory", len(body))
        self._response_done(keep_alive)

    def _response_done(self, keep_alive: bool) -> None:
        if not keep_alive:
            self._close(linger=True)
        elif self.write_paused:
            self._run_async(self._drain_then_continue())
        else:
            self._next_cycle()

    def _next_cycle(self) -> None:
        parser = self.parser
        if parser is not None:
            self.buffer, closed = parser.trailing_data
            self.eof = self.eof or closed
            self.parser = None
        self.request = None
        self.discarded = 0
        self.sent_continue = False
        self.busy = False
        self.body_in_flight = None
        if self.read_paused and not self.closing:
            self.read_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        if self.buffer:
            self._arm_timer(self.config.header_timeout, idle=False)
        else:
            self._arm_timer(self.config.keepalive_timeout, idle=True)

    # --- file bodies ---------------------------------------------------------------------

    def _send_file(
        self,
        request: RequestHead | None,
        status: int,
        segments: list[Segment],
        body: FileBody,
        keep: bool,
    ) -> None:
        """Send head and body now if the socket takes them, else finish asynchronously."""
        sock = self.sock
        if sock is None and self.zero_copy:
            sock = self._direct_socket()
        if sock is None:
            data = None if self.write_paused else render_cached(body.fd, segments, READ_NOW_MAX)
            if data is None:
                coroutine = self._stream_file(request, status, segments, body, keep, None)
                self._run_async(coroutine, body)
                return
            body.close()
            self.write(data)
            if self.state.log_responses:
                self._log(request, status, "fallback", body.length)
            self._response_done(keep)
            return
        if self.write_paused:  # the transport still holds bytes (a 100 Continue): they go first
            self._run_async(
                self._send_file_after_drain(request, status, segments, body, keep), body
            )
            return
        transfer = FileTransfer(sock, body.fd, segments)
        try:
            done = transfer.pump()
        except SendfileUnsupported:
            rest = transfer.remaining()
            self._run_async(self._stream_file(request, status, rest, body, keep, None), body)
            return
        except (FileShrank, OSError) as exc:
            body.close()
            self._abort(exc)
            return
        if not done:
            self._run_async(self._stream_file(request, status, [], body, keep, transfer), body)
            return
        body.close()
        if self.state.log_responses:
            self._log(request, status, "sendfile", body.length)
        self._response_done(keep)

    async def _stream_file(
        self,
        request: RequestHead | None,
        status: int,
        segments: list[Segment],
        body: FileBody,
        keep: bool,
        transfer: FileTransfer | None,
    ) -> None:
        """Finish a body that could not go out at once: by sendfile, or by reading."""
        try:
            path = await self._finish_transfer(body.fd, segments, transfer)
        except (FileShrank, OSError, TimeoutError) as exc:
            self._abort(exc)
            return
        finally:
            body.close()
        if self.state.log_responses:
            self._log(request, status, path, body.length)
        self._response_done(keep)
        self._process()

    async def _send_file_after_drain(
        self,
        request: RequestHead | None,
        status: int,
        segments: list[Segment],
        body: FileBody,
        keep: bool,
    ) -> None:
        try:
            await self.drain()
        except (OSError, TimeoutError) as exc:
            body.close()
            self._abort(exc)
            return
        except asyncio.CancelledError:
            body.close()
            raise
        self._send_file(request, status, segments, body, keep)
        self._process()

    async def _finish_transfer(
        self, fd: int, segments: list[Segment], transfer: FileTransfer | None
    ) -> str:
        """Complete ``transfer`` (or send ``segments`` by reading, when there is none, or
        when sendfile turns out not to work before a byte went); the body path used."""
        if transfer is not None:
            try:
                await complete_transfer(self.loop, transfer, self.config.send_timeout)
                return "sendfile"
            except SendfileUnsupported:
                segments = transfer.remaining()
        await self.drain()
        await copy_segments(fd, segments, self.write, self.drain)
        return "fallback"

    async def send_segments(self, fd: int, segments: list[Segment]) -> str:
        """For an exchange: bytes and ranges of ``fd`` in order, zero-copy when possible.

        Raises FileShrank, OSError or TimeoutError; the caller aborts the connection.
        """
        await self.drain()  # what the transport holds goes first
        sock = self.sock
        if sock is None and self.zero_copy:
            sock = self._direct_socket()
        if sock is None or self.closing:
            return await self._finish_transfer(fd, segments, None)
        transfer = FileTransfer(sock, fd, segments)
        try:
            if transfer.pump():
                return "sendfile"
        except SendfileUnsupported:
            return await self._finish_transfer(fd, transfer.remaining(), None)
        return await self._finish_transfer(fd, [], transfer)

    # --- exchanges: requests answered by a Responder -------------------------------------

    def _start_exchange(
        self, request: RequestHead, responder: Responder, *, body_pending: bool
    ) -> None:
        keep_alive = keep_alive_requested(request.http_version, request.headers)
        exchange = Exchange(self, request, body_pending=body_pending, keep_alive=keep_alive)
        self.exchange = exchange
        self.busy = True
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
                self._cancel_timer()  # the whole body is in: the wait for it is over
            elif event is h11.NEED_DATA:
                break
            else:  # ConnectionClosed before the body ended
                exchange.client_closed()
                break
        if exchange.buffered > BODY_HIGH_WATER:
            self._pause_reading()

    def resume_body(self) -> None:
        """The responder took the buffered body: read on, unless a next request waits."""
        exchange = self.exchange
        if self.read_paused and exchange is not None and not exchange.body_complete:
            self.read_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
            self._await_body()  # we held the client back until now: its wait starts here
            self._pump_body(exchange)

    def send_continue(self) -> None:
        """For an exchange: ``100 Continue``; the body it asks for is timed from now."""
        self.write(CONTINUE_100)
        self._await_body()

    def date_line(self) -> bytes:
        return self.state.date.line()

    def exchange_done(self, exchange: Exchange) -> None:
        """The response is complete: on to the next request (the responder may run on)."""
        if self.exchange is not exchange:
            return
        self.exchange = None
        keep_alive = exchange.keep_alive and not self.closing
        if not exchange.body_complete:
            keep_alive = False  # the rest of the body is still coming: never parse it as a head
        if self.state.log_responses:
            self._log(exchange.request, exchange.status, exchange.body_path, exchange.body_bytes)
        self._response_done(keep_alive)
        if not self.busy:
            self._process()

    def exchange_failed(self, exchange: Exchange) -> None:
        """Nothing of the response went out: answer 500 and close."""
        if self.exchange is not exchange:
            return
        self.exchange = None
        self._respond(exchange.request, error_response(500, close=True), keep_alive=False)

    def abort_exchange(self, exchange: Exchange, exc: BaseException) -> None:
        if self.exchange is exchange:
            self.exchange = None
        exchange.connection_lost()
        self._abort(exc)

    def _direct_socket(self) -> socket.socket | None:
        """A socket object over the transport's own descriptor, for send(MSG_MORE).

        It does not own the descriptor (no dup: an idle connection costs one fd, not two)
        and is detached, never closed, in ``_close_socket``. The descriptor is already
        non-blocking (both loops make it so), and passing family/type/proto avoids any
        syscall here. Waiting for writability needs a dup; ``complete_transfer`` makes
        one only for a transfer that did not fit at once.
        """
        if self.sock is None and self.transport is not None:
            raw = self.transport.get_extra_info("socket")
            if raw is None:
                return None
            self.sock = socket.socket(raw.family, raw.type, raw.proto, fileno=raw.fileno())
        return self.sock

    # --- plumbing --------------------------------------------------------------------------

    def _run_async(
        self, coroutine: Coroutine[Any, Any, None], body: FileBody | None = None
    ) -> None:
        """Finish the response in a task; ``body`` is closed on connection loss even if the
        task is cancelled before it ever ran (its ``finally`` would then never run)."""
        self.busy = True
        self.body_in_flight = body
        self.task = self.loop.create_task(coroutine)

    async def _drain_then_continue(self) -> None:
        try:
            await self.drain()
        except (OSError, TimeoutError) as exc:
            self._abort(exc)
            return
        self._next_cycle()
        self._process()

    async def drain(self) -> None:
        """Wait until the transport has sent everything it holds."""
        if not self.write_paused:
            return
        if self.closing:
            raise ConnectionResetError("connection closing")
        waiter: asyncio.Future[None] = self.loop.create_future()
        self.drain_waiter = waiter
        timer = self.loop.call_later(
            self.config.send_timeout, self._wake_drain, TimeoutError("send timed out")
        )
        try:
            await waiter
        finally:
            timer.cancel()
            self.drain_waiter = None

    def _wake_drain(self, exc: BaseException | None) -> None:
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _arm_timer(self, seconds: float, *, idle: bool) -> None:
        """A deadline, not a timer handle: arming per request costs one attribute write."""
        self.idle = idle
        self.deadline = self.loop.time() + seconds

    def _await_body(self) -> None:
        """Request body bytes are due: the next read must come within --body-timeout."""
        self.deadline = self.loop.time() + self.config.body_timeout

    def _cancel_timer(self) -> None:
        self.deadline = NEVER

    def on_deadline(self) -> None:
        """Called by the server's sweeper once ``deadline`` has passed."""
        self.deadline = NEVER
        if self.lingering:
            self._close_now()
        elif self.pending is not None:
            self._body_timed_out(self.request)  # the body we read to drop stalled
        elif not self.busy:
            self._close()
        elif self.exchange is not None and not self.exchange.body_complete:
            self._exchange_body_stalled(self.exchange)

    def _exchange_body_stalled(self, exchange: Exchange) -> None:
        """No body bytes for --body-timeout while a responder has the request: unless we
        are the ones waiting (reading paused for the responder, or the client waits for
        our 100 Continue), 408 if none of the response has left, else close."""
        if self.read_paused or exchange.awaiting_continue:
            self._await_body()
            return
        self.exchange = None
        exchange.connection_lost()  # the responder's receive() reports a disconnect
        if exchange.flushed:
            self._abort(TimeoutError("request body timed out"))
        else:
            self._body_timed_out(exchange.request)

    def _body_timed_out(self, request: RequestHead | None) -> None:
        """408, then close at once: a client that stalls its body gets no linger."""
        if self.pending is not None:
            self.pending.release()
            self.pending = None
        response = error_response(408, close=True)
        http10 = request is not None and request.http_version == b"1.0"
        head = render_head(408, response.fields, self.date_line(), keep_alive=False, http10=http10)
        body = cast(bytes, response.body)
        self.write(head + body)
        if self.state.log_responses:
            self._log(request, 408, "memory", len(body))
        self._close()

    def _close(self, *, linger: bool = False) -> None:
        """Close after everything written so far has been sent.

        After a response (``linger``), the client may still be sending: an unread body,
        requests pipelined behind a ``Connection: close``, a request we refused. Closing at
        once would make the kernel answer those bytes with RST, which destroys the part of
        our response the client has not read yet. So, like nginx's lingering close,
        half-close first and drop what still arrives until the client's EOF (usually one
        round trip), LINGER_IDLE without a packet, or LINGER_TOTAL. Not when the client has
        closed already, nor when we close on our own (a timeout: a slowloris gets none).
        """
        if self.closing:
            return
        self.closing = True
        self._cancel_timer()
        self._close_socket()
        transport = self.transport
        if transport is None:
            return
        if linger and not self.eof and transport.can_write_eof():
            transport.write_eof()
            if self.read_paused:
                self.read_paused = False
                transport.resume_reading()
            self.lingering = True
            self._arm_timer(LINGER_IDLE, idle=False)
            self.linger_until = self.loop.time() + LINGER_TOTAL
        else:
            transport.close()

    def _close_now(self) -> None:
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    def _abort(self, exc: BaseException) -> None:
        """Drop the connection now: an incomplete response must not look complete."""
        logger.debug("aborting connection: %r", exc)
        self.closing = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()
        self._close_socket()

    def _close_socket(self) -> None:
        """Let go of the borrowed descriptor; the transport closes it."""
        if self.sock is not None:
            sock, self.sock = self.sock, None
            sock.detach()

    def _log(self, request: RequestHead | None, status: int, path: str, body_bytes: int) -> None:
        """The metrics, access log line and debug line of a response (callers check
        ``state.log_responses`` first: the hot path pays one attribute test)."""
        state = self.state
        if state.stats is not None:
            duration = time.perf_counter() - self.request_started
            state.stats.count(
                request.method if request else b"", status, path, body_bytes, duration
            )
        if state.access_log is not None:
            self._log_access(state.access_log, request, status, path, body_bytes)
        if state.debug_responses:
            target = request.target.decode("latin-1") if request else "-"
            method = request.method.decode("latin-1") if request else "-"
            logger.debug("%s %s %d body=%s", method, target, status, path)

    def _log_access(
        self,
        log: AccessLog,
        request: RequestHead | None,
        status: int,
        path: str,
        body_bytes: int,
    ) -> None:
        remote = self.remote_addr
        if remote is None:
            remote = self.remote_addr = peer_address(self.transport)
        duration = time.perf_counter() - self.request_started if log.needs_duration else 0.0
        referer = agent = None
        if request is None:  # refused before it parsed
            method = target = version = b""
        else:
            method, target, version = request.method, request.target, request.http_version
            for name, value in request.headers:
                if name == b"referer":
                    referer = value
                elif name == b"user-agent":
                    agent = value
        line = log.line(
            remote, time.time(), method, target, version, status, body_bytes, duration,
            referer, agent, path,
        )  # fmt: skip
        log.add(line)

    # --- shutdown ------------------------------------------------------------------------

    def close_if_idle(self) -> bool:
        """For graceful shutdown: close now unless a request is in progress."""
        if self.busy or self.request is not None:
            return False
        self._close()
        return True

    def abort(self) -> None:
        self._abort(ConnectionAbortedError("server shutting down"))
