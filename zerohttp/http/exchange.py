"""One request/response cycle handed to an asynchronous handler (the ASGI host).

The connection layer owns the socket; an ``Exchange`` is the narrow channel through which
a ``Responder`` reads the request body and writes its response. It keeps the rules that
are about bytes, not about ASGI: body flow control (reading pauses while more than
``BODY_HIGH_WATER`` bytes wait unread), ``100 Continue`` only once the body is asked for,
framing (Content-Length, chunked or close-delimited), HEAD and 204/304 without body bytes,
a head held back until the first body bytes (so a failure before them can still become a
500), and file bodies through the zero-copy path the static server uses.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol

from ..body.zerocopy import FileShrank, Segment, settle
from ..message.response import ByteRange
from .http11 import (
    LAST_CHUNK,
    Framing,
    InvalidResponse,
    app_response_framing,
    chunk,
    render_app_head,
)

if TYPE_CHECKING:
    from ..message.response import RequestHead, Response
    from .driver import DriverFactory

# Unread request body buffered before the connection stops reading (uvicorn's value).
BODY_HIGH_WATER = 65536
# A response's last write up to this size goes out at the end of the loop pass (finish_soon)
DEFER_MAX = 65536


class ClientDisconnected(OSError):
    """The client is gone: what the ASGI 2.4 ``send`` raises instead of writing."""


class Connection(Protocol):
    """What an exchange needs of its connection (``HTTPConnection``)."""

    transport: asyncio.Transport | None

    @property
    def write_paused(self) -> bool:
        """The transport holds unsent bytes: ``drain`` would wait."""
        ...

    def date_line(self) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    async def send_segments(self, fd: int, segments: list[Segment]) -> str: ...
    def finish_soon(self, exchange: Exchange, data: bytes) -> None: ...
    def resume_body(self) -> None: ...
    def send_continue(self) -> None: ...
    def exchange_done(self, exchange: Exchange) -> None: ...
    def exchange_failed(self, exchange: Exchange) -> None: ...
    def switch_exchange(
        self, exchange: Exchange, response: Response, factory: DriverFactory
    ) -> None: ...
    def abort_exchange(self, exchange: Exchange, exc: BaseException) -> None: ...


class Responder(Protocol):
    """What a handler returns when the response cannot be decided synchronously."""

    async def run(self, exchange: Exchange) -> None: ...


class Body(IntEnum):
    """The request body, as the responder sees it."""

    CONTINUE = 0  # the client waits for our 100 Continue, sent once the body is asked for
    HELD = 1  # it still waits, but the response started: no 100 any more (RFC 9110 §10.1.1)
    STREAMING = 2  # bytes are coming (or may)
    COMPLETE = 3  # all of it is buffered; not all handed over yet
    DELIVERED = 4  # the responder has had all of it (the final ``more=False``)


class Phase(IntEnum):
    """The response."""

    READY = 0
    STARTED = 1  # head rendered and held back
    FLUSHED = 2  # head handed to the transport or the socket
    FINISHED = 3  # complete, or failed


class Peer(IntEnum):
    """The client."""

    CONNECTED = 0
    GONE = 1  # closed or half-closed: ``receive`` reports a disconnect; sends still go out
    TOLD = 2  # gone, and ``receive`` said so (http.disconnect): from then on sends raise
    LOST = 3  # the connection is gone: sends fail


CONTINUE, HELD, STREAMING, COMPLETE, DELIVERED = Body
READY, STARTED, FLUSHED, FINISHED = Phase
CONNECTED, GONE, TOLD, LOST = Peer


class Exchange:
    """The request body in, the response out, for one request on one connection."""

    def __init__(
        self,
        connection: Connection,
        request: RequestHead,
        *,
        body_pending: bool,
        keep_alive: bool,
        expects_continue: bool,
    ) -> None:
        self.connection = connection
        self.request = request
        self.keep_alive = keep_alive
        if not body_pending:
            self.body = COMPLETE
        elif expects_continue:
            self.body = CONTINUE
        else:
            self.body = STREAMING
        self.phase = READY
        self.peer = CONNECTED
        self._chunks: list[bytes] = []
        self.buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.status = 0
        self._head = b""
        self._framing: Framing | None = None
        self._sent = 0  # body bytes sent, to check them against Content-Length
        self.body_bytes = 0  # body bytes written (HEAD, 204, 304: none), for the access log
        self.body_path = "memory"
        # called (maybe more than once) when the server shuts down while this runs
        self.on_server_closing: Callable[[], None] | None = None

    @property
    def body_complete(self) -> bool:
        return self.body >= COMPLETE

    @property
    def awaiting_continue(self) -> bool:
        """The client holds its body back until our 100 Continue (or until it sends
        anyway): its silence meanwhile is no stall (see HTTPConnection's --body-timeout)."""
        return self.body <= HELD

    @property
    def flushed(self) -> bool:
        return self.phase is FLUSHED

    @property
    def closed_for_sending(self) -> bool:
        """The connection is gone, or the client closed its side and the app was told so
        (``http.disconnect``): ASGI 2.4 sends raise instead of writing for nobody."""
        return self.peer >= TOLD

    # --- request body (fed by the connection) ------------------------------------------

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self.buffered += len(data)
            if self.body <= HELD:
                self.body = STREAMING
            self._wake()

    def feed_end(self) -> None:
        self.body = COMPLETE
        self._wake()

    def client_closed(self) -> None:
        """EOF from the client: ``receive`` now reports a disconnect; sends still go out."""
        if self.peer is CONNECTED:
            self.peer = GONE
        self._wake()

    def connection_lost(self) -> None:
        self.peer = LOST
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            settle(self._waiter)

    async def receive_body(self) -> tuple[bytes, bool] | None:
        """The next body bytes and whether more follow; None once the client is gone or
        the response is complete (ASGI's ``http.disconnect``)."""
        while True:
            body = self.body
            if self._chunks:
                data = b"".join(self._chunks)
                self._chunks.clear()
                self.buffered = 0
                self.connection.resume_body()
                if self.body is COMPLETE:
                    self.body = DELIVERED
                    return data, False
                return data, True
            if body is COMPLETE:
                self.body = DELIVERED
                return b"", False
            if self.peer is not CONNECTED or self.phase is FINISHED:
                if self.peer is GONE and self.phase is not FINISHED:
                    self.peer = TOLD
                return None
            if body is CONTINUE:  # the response has not started (start() makes it HELD)
                self.body = STREAMING
                self.connection.send_continue()
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    # --- response ---------------------------------------------------------------------

    def start(self, status: int, headers: Sequence[tuple[bytes, bytes]]) -> None:
        """Render the head; it leaves with the first body bytes (see ``flushed``)."""
        request = self.request
        framing = app_response_framing(
            request.method, request.http_version, status, headers, keep_alive=self.keep_alive
        )
        self._head = render_app_head(
            status,
            headers,
            self.connection.date_line(),
            framing,
            http10=request.http_version == b"1.0",
        )
        self._framing = framing
        self.keep_alive = framing.keep_alive
        self.status = status
        self.phase = STARTED
        if self.body is CONTINUE:
            self.body = HELD  # answering without reading: no 100 (RFC 9110 §10.1.1)

    async def write(self, data: bytes, *, more: bool) -> None:
        """Body bytes; returns once the transport has them and sent what it can. The last
        write of a response (up to DEFER_MAX, nothing held back) is handed to the connection
        to go out at the end of this loop pass, with the other connections' responses."""
        framing = self._checked_framing(len(data))
        out = self._take_head()
        if data and not framing.bodiless:
            out += chunk(data) if framing.chunked else data
            self.body_bytes += len(data)
        if not more and framing.chunked and not framing.bodiless:
            out += LAST_CHUNK
        if out:
            connection = self.connection
            if not more and len(out) <= DEFER_MAX and not connection.write_paused:
                # the last bytes of the response: written with the other connections' at the
                # end of this loop pass, one wake-up of the client's side for many responses
                self.phase = FINISHED
                self._wake()
                connection.finish_soon(self, out)
                return
            connection.write(out)
            if connection.write_paused:  # the transport holds bytes: wait until they leave
                await self._drain()
        if not more:
            self._finish()

    async def send_file(
        self, fd: int, offset: int | None, count: int | None, *, more: bool
    ) -> None:
        """``count`` bytes of ``fd`` from ``offset`` (None: the file position, advanced
        afterwards; count None: to the end of the file), zero-copy where possible."""
        advance = offset is None
        start = os.lseek(fd, 0, os.SEEK_CUR) if offset is None else offset
        if count is None:
            count = max(0, os.fstat(fd).st_size - start)
        framing = self._checked_framing(count)
        segments: list[Segment] = []
        head = self._take_head()
        if head:
            segments.append(head)
        if count and not framing.bodiless:
            if framing.chunked:
                segments.append(b"%x\r\n" % count)
            segments.append(ByteRange(start, start + count - 1))
            if framing.chunked:
                segments.append(b"\r\n")
        if not more and framing.chunked and not framing.bodiless:
            segments.append(LAST_CHUNK)
        if segments:
            try:
                path = await self.connection.send_segments(fd, segments)
            except (FileShrank, OSError, TimeoutError) as exc:
                self.connection.abort_exchange(self, exc)
                raise ClientDisconnected(str(exc)) from exc
            if count and not framing.bodiless:
                self.body_path = path
                self.body_bytes += count
        if advance:
            os.lseek(fd, start + count, os.SEEK_SET)
        if not more:
            self._finish()

    def _checked_framing(self, count: int) -> Framing:
        if self.peer >= TOLD:
            raise ClientDisconnected("client disconnected")
        framing = self._framing
        if self.phase is READY or self.phase is FINISHED or framing is None:
            raise RuntimeError("body sent before the response started, or after it ended")
        if framing.length is not None and not framing.bodiless:
            self._sent += count
            if self._sent > framing.length:
                raise InvalidResponse(
                    f"response body exceeds its content-length of {framing.length} bytes"
                )
        return framing

    def _take_head(self) -> bytes:
        head = self._head
        if head:
            self._head = b""
            self.phase = FLUSHED
        return head

    async def _drain(self) -> None:
        try:
            await self.connection.drain()
        except (OSError, TimeoutError) as exc:
            self.connection.abort_exchange(self, exc)
            raise ClientDisconnected(str(exc)) from exc

    def _finish(self) -> None:
        self.phase = FINISHED
        self._wake()
        self.complete()

    def complete(self) -> None:
        """All of the response is written: the connection moves on (or drops it if short)."""
        framing = self._framing
        assert framing is not None
        if framing.length is not None and not framing.bodiless and self._sent != framing.length:
            # fewer bytes than promised: the response cannot look complete
            self.connection.abort_exchange(
                self, InvalidResponse(f"body ended {framing.length - self._sent} bytes short")
            )
            return
        self.connection.exchange_done(self)

    def switch(self, response: Response, factory: DriverFactory) -> None:
        """Answer with ``response`` (a 101) and hand the connection to the driver
        ``factory`` builds: this exchange is over, its responder may go on with that
        driver (ClientDisconnected when the connection is gone already)."""
        if self.phase is not READY:
            raise RuntimeError("a protocol switch after the response started")
        if self.peer >= LOST:
            raise ClientDisconnected("client disconnected")
        self.phase = FINISHED
        self.status = response.status
        self._wake()
        self.connection.switch_exchange(self, response, factory)

    def fail(self) -> None:
        """The responder ended without completing the response: 500 if nothing has been
        sent yet, else drop the connection (an incomplete response must not look whole)."""
        phase = self.phase
        if phase is FINISHED:
            return
        self.phase = FINISHED
        self._wake()
        if phase is FLUSHED or self.peer is LOST:
            self.connection.abort_exchange(self, RuntimeError("response not completed"))
        else:
            self.connection.exchange_failed(self)
