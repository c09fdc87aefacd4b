"""The WebSocket protocol driver: frames in and out of one transport, for one application.

The HTTP/1.1 driver hands the transport over after the 101 (``http/driver.py``). From then
on this driver moves bytes through the codec (``codec.py``) and keeps the rules that are
about the connection, not about ASGI:

- backpressure both ways: ``receive`` is fed from a queue of at most ``max_queue``
  messages, and reading stops while it is full; ``send`` returns once the transport has
  sent what it holds (write limits (0, 0), as for HTTP), so a slow reader cannot make us
  buffer more than one message per sending task (several tasks wait for the drain in
  turn); ``benchmarks/ws_slow_reader.py`` measures both with 1 GiB;
- the keepalive: a ping every ``ping_interval`` seconds; no pong within ``ping_timeout``
  fails the connection with 1011. Pings keep a connection alive: there is no idle timeout.
  While reading is paused for a slow application a pong cannot be seen, and is not missed;
- the closing handshake: after our close frame (or our answer to the client's) the client
  has CLOSE_TIMEOUT seconds to answer, or to take what we sent, before the connection is
  aborted (a close() would wait for ever for a client that does not read);
- shutdown: ``close_if_idle`` (SIGTERM) tells the application (``websocket.disconnect``,
  1001) and sends the client a close frame with 1001, "going away" (RFC 6455 §7.4.1: "a
  server going down"). uvicorn sends 1012, "service restart"; a server told to stop does
  not know that it will come back;
- one access log line and the metrics when the connection ends (status 101, duration,
  bytes sent after the handshake).

Deadlines (ping, pong, close) ride on the server's sweeper, as HTTP's do.
"""

from __future__ import annotations

import asyncio
import enum
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

from ..http.exchange import ClientDisconnected
from ..http.flow import FlowControl
from ..http.responding import peer_address
from ..http.server_state import ServerState
from ..message.response import RequestHead
from .codec import Message, ServerCodec, frame

NEVER = float("inf")
# Seconds the client has to answer our close frame before the TCP connection is closed.
CLOSE_TIMEOUT = 10.0
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
# Framed messages held for the end of the loop pass, per connection, before they are
# written at once: the bound on what a send may add without the wait for the drain.
BATCH_BYTES = 65536
# Bytes an SSL transport may buffer before it pauses us (as for HTTP over TLS).
TLS_WRITE_HIGH = 256 * 1024


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """uvicorn's options and defaults, under uvicorn's names (``--ws-*``)."""

    max_size: int = 16 * 1024 * 1024
    max_queue: int = 32
    ping_interval: float = 20.0  # 0: no pings
    ping_timeout: float = 20.0
    per_message_deflate: bool = True
    send_timeout: float = 60.0


class Link(enum.IntEnum):
    """The connection, as the application sees it."""

    OPEN = 0
    CLOSING = 1  # our close frame is out: waiting for the client's
    ENDED = 2  # the application has been told (or will be: the end is queued)


OPEN, CLOSING, ENDED = Link


@dataclass(frozen=True, slots=True)
class Ended:
    """The connection is over: what ``websocket.disconnect`` says."""

    code: int
    reason: str


class WebSocketDriver(asyncio.Protocol):
    """One WebSocket connection after its handshake."""

    def __init__(
        self,
        state: ServerState,
        settings: WebSocketSettings,
        codec: ServerCodec,
        request: RequestHead,
    ) -> None:
        self.state = state
        self.settings = settings
        self.codec = codec
        self.request = request
        self.loop = state.loop or asyncio.get_running_loop()
        self.flow = FlowControl(self.loop, settings.send_timeout)
        self.transport: asyncio.Transport | None = None
        self.link = OPEN
        self.ended: Ended | None = None
        self.queue: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._draining: asyncio.Lock | None = None  # made at the first send that must wait
        self.deadline = NEVER
        self._ping_pongs: int | None = None  # pongs seen when our ping went out: one due
        self._ping_sent = 0.0
        self.bytes_sent = 0
        self.held: list[bytes] = []  # framed messages to write at the end of the loop pass
        self.held_bytes = 0
        self.started = time.perf_counter()
        self.remote = "-"  # for the access log: read now, a closed transport forgets it
        self.lost = False

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.flow.attach(transport)
        if transport.get_extra_info("sslcontext") is not None:
            transport.set_write_buffer_limits(high=TLS_WRITE_HIGH, low=TLS_WRITE_HIGH // 4)
        else:
            transport.set_write_buffer_limits(high=0, low=0)
        transport.resume_reading()  # the HTTP driver may have paused it for the handshake
        state = self.state
        if state.log.active:
            self.remote = peer_address(transport)
        state.connections.add(self)
        stats = state.stats
        if stats is not None:
            stats.websockets_open += 1
        self._schedule_ping(self.loop.time())

    def data_received(self, data: bytes) -> None:
        codec = self.codec
        if codec.closed:
            return
        messages = codec.feed(data)
        if messages:
            self.queue.extend(messages)
            stats = self.state.stats
            if stats is not None:
                stats.websocket_messages_in += len(messages)
            if len(self.queue) >= self.settings.max_queue:
                self.flow.pause_reading()
        if codec.held_close is not None:
            if self.queue:  # the app may still answer those messages (Autobahn 7.1.1)
                self.deadline = self.loop.time() + CLOSE_TIMEOUT
            else:
                codec.answer_close()
        if not codec.open:
            self._closing_by_codec()
        if codec.writes:  # a pong, a close: rarely anything
            self._flush()
        self._wake()

    def eof_received(self) -> bool:
        self.codec.receive_eof()
        self._flush()
        return False  # close: a WebSocket has no half-open state

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        self.deadline = NEVER
        self.held.clear()
        self.flow.lost()
        self._end(*self.codec.ending())
        state = self.state
        state.connections.discard(self)
        stats = state.stats
        if stats is not None:
            stats.websockets_open -= 1
        log = state.log
        if log.active:
            log.response(self.remote, self.request, 101, "websocket", self.bytes_sent, self.started)

    # --- what the application side calls ------------------------------------------------

    async def receive(self) -> Message | Ended:
        """The next message, or how the connection ended (every later call too)."""
        while True:
            queue = self.queue
            if queue:
                message = queue.popleft()
                if self.flow.read_paused and len(queue) < self.settings.max_queue:
                    self.flow.resume_reading()
                return message
            if self.codec.held_close is not None:
                self._answer_held_close()
            ended = self.ended
            if ended is not None:
                return ended
            waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def send(self, message: Message) -> None:
        """Frame and write ``message``; returns once the transport has sent it (raises
        ClientDisconnected once the connection is closing or gone)."""
        if self.write_message(message):
            await self.drain()

    def write_message(self, message: Message) -> bool:
        """``send`` without its wait: True when the transport holds bytes, and the caller
        must ``await drain()`` before it sends more (one coroutine less per message).

        The frame is written once the callbacks of this loop pass have run, with whatever
        else this pass sends on the connection (up to BATCH_BYTES): a broadcast of a burst
        of messages is then one write per connection, not one per message, and the
        clients' side wakes once for many connections (``finish_soon`` does the same for
        HTTP responses)."""
        codec = self.codec
        if self.link is not OPEN or self.lost or not codec.open:
            raise ClientDisconnected("WebSocket closed")
        if codec.frames_directly:
            data = frame(message)  # the common case, past the codec's list of writes
        else:  # compressed: only the codec can frame it (its list holds nothing else now)
            codec.send_message(message)
            data = b"".join(codec.data_to_send())
        self.bytes_sent += len(data)
        held = self.held
        if not held:
            soon = self.state.writing_soon
            if not soon:
                self.loop.call_soon(_write_held, soon)
            soon.append(self)
        held.append(data)
        self.held_bytes += len(data)
        if self.held_bytes >= BATCH_BYTES:
            self.write_held()
        stats = self.state.stats
        if stats is not None:
            stats.websocket_messages_out += 1
        return self.flow.write_paused

    def write_held(self) -> None:
        """Write the messages held for the end of the loop pass (before anything else)."""
        held = self.held
        if held:
            data = held[0] if len(held) == 1 else b"".join(held)
            held.clear()
            self.held_bytes = 0
            transport = self.transport
            if transport is not None and not self.lost and not transport.is_closing():
                transport.write(data)

    async def drain(self) -> None:
        """Wait for the transport to send what it holds. FlowControl wakes one waiter, so
        sends from several tasks at once (a broadcast beside an echo) wait in turn."""
        lock = self._draining
        if lock is None:
            lock = self._draining = asyncio.Lock()
        async with lock:
            try:
                await self.flow.drain()
            except (OSError, TimeoutError) as exc:
                self.abort()
                raise ClientDisconnected(str(exc)) from exc

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (the application's ``websocket.close``)."""
        if self.link is not OPEN:
            return
        codec = self.codec
        if codec.open:
            codec.send_close(code, reason)
            self._flush()
        self.link = CLOSING
        self._end(code, reason)
        if not self.lost:
            self.deadline = self.loop.time() + CLOSE_TIMEOUT

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (an application error, a pong that never came): close
        after our close frame, abort if it has not left within CLOSE_TIMEOUT."""
        if self.codec.open:
            self.codec.fail(code, reason)
            self._flush()
        self._end(code, reason)
        if self.transport is not None and not self.lost:
            self.write_held()
            self.transport.close()
            self.deadline = self.loop.time() + CLOSE_TIMEOUT

    # --- what the server calls (http.server_state.Driver) ---------------------------------

    def on_deadline(self) -> None:
        now = self.loop.time()
        if self.codec.held_close is not None:  # the app never took its last messages
            self._answer_held_close()
            return
        if self.link is not OPEN or not self.codec.open:
            # the client never answered our close frame, or never took it: a transport
            # still holding bytes for a client that does not read would wait for ever
            self.abort()
            return
        if self._ping_pongs is not None:
            # while reading is paused (the app is behind) a pong cannot be seen: the
            # client that filled the queue is not the one that is gone
            if self.codec.pongs == self._ping_pongs and not self.flow.read_paused:
                self.fail(INTERNAL_ERROR, "keepalive ping timeout")
                return
            self._ping_pongs = None
            self._schedule_ping(self._ping_sent)
            if self.deadline > now:
                return
        self._ping(now)

    def close_if_idle(self) -> bool:
        """Graceful shutdown: the application is told, the client gets 1001; the server
        waits for the connection to end within its grace period."""
        self.close(GOING_AWAY, "server shutting down")
        return False

    def abort(self) -> None:
        self.deadline = NEVER
        self.held.clear()
        self._end(*self.codec.ending())
        if self.transport is not None:
            self.transport.abort()

    # --- inside -----------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what the codec framed; its EOF marker means: close the TCP connection."""
        self.write_held()
        transport = self.transport
        for data in self.codec.data_to_send():
            if transport is None or self.lost:
                continue
            if data:
                transport.write(data)
                self.bytes_sent += len(data)
            else:
                transport.close()

    def _answer_held_close(self) -> None:
        """The app has had every message before the client's close: answer it now."""
        self.codec.answer_close()
        self._closing_by_codec()
        self._flush()

    def _closing_by_codec(self) -> None:
        """The client closed, or broke the protocol: the application learns how."""
        if self.link is OPEN:
            self.link = ENDED
            if not self.lost:  # our answer is on its way: CLOSE_TIMEOUT for it to leave
                self.deadline = self.loop.time() + CLOSE_TIMEOUT
        self._end(*self.codec.ending())

    def _end(self, code: int, reason: str) -> None:
        if self.ended is None:
            self.ended = Ended(code, reason)
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _schedule_ping(self, since: float) -> None:
        interval = self.settings.ping_interval
        self.deadline = since + interval if interval > 0 else NEVER

    def _ping(self, now: float) -> None:
        self.codec.send_ping(os.urandom(4))
        self._flush()
        self._ping_pongs = self.codec.pongs
        self._ping_sent = now
        self.deadline = now + self.settings.ping_timeout


def _write_held(soon: list[WebSocketDriver]) -> None:
    drivers = soon.copy()
    soon.clear()
    for driver in drivers:
        driver.write_held()
