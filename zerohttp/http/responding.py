"""Writing responses: the head rendered, small bodies through the transport, file bodies
through ``FileSender``, then the next request cycle or the close."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from ..body.zerocopy import FileShrank, Segment
from ..message.response import FileBody, RequestHead, Response
from .filesender import Pending
from .http11 import render_head
from .phase import CLOSING, HEAD, IDLE, SENDING, DriverBase
from .reader import Head


def peer_address(transport: asyncio.BaseTransport | None) -> str:
    """The client's address for the access log; "-" where there is none (a unix socket)."""
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else "-"


class Responding(DriverBase):
    """The HTTP/1.1 driver's response side."""

    __slots__ = ()

    def _respond(
        self, head: Head | None, response: Response, keep_alive: bool, *, logged: bool = True
    ) -> None:
        request = head.request if head is not None else None
        http10 = request is not None and request.http_version == b"1.0"
        rendered = render_head(
            response, self.state.date.line(), keep_alive=keep_alive, http10=http10
        )
        body = response.body if request is None else response.body_for(request.method)
        if isinstance(body, FileBody):
            if body.segments:
                self._send_file(
                    request, response.status, [rendered, *body.segments], body, keep_alive
                )
                return
            body.close()
            body = b""
        self.write(rendered + body if body else rendered)
        if logged and self.state.log.active:
            self._log(request, response.status, "memory", len(body))
        self._response_done(keep_alive)

    def _response_done(self, keep_alive: bool) -> None:
        self.served += 1
        if not keep_alive:
            self._close(linger=True)
        elif self.flow.write_paused:
            self._run_async(self._drain_then_continue())
        else:
            self._next_cycle()

    def _next_cycle(self) -> None:
        parser = self.parser
        if parser is not None:
            self.buffer, closed = parser.trailing_data
            self.eof = self.eof or closed
            self.parser = None
        self.head = None
        self.discarded = 0
        self.sent_continue = False
        self.body_in_flight = None
        if self.phase >= CLOSING:
            return
        if self.flow.read_paused:
            self.flow.resume_reading()
        if self.buffer:
            self.phase = HEAD
            self.deadline = self.loop.time() + self.config.header_timeout
        else:
            self.phase = IDLE
            self.deadline = self.loop.time() + self.config.keepalive_timeout

    def _send_file(
        self,
        request: RequestHead | None,
        status: int,
        segments: list[Segment],
        body: FileBody,
        keep: bool,
    ) -> None:
        """Send head and body now if the socket takes them, else finish asynchronously."""
        try:
            sent = self.sender.send_now(body.fd, segments)
        except (FileShrank, OSError) as exc:
            body.close()
            self._abort(exc)
            return
        if isinstance(sent, Pending):
            self._run_async(self._finish_file(request, status, body, keep, sent), body)
            return
        body.close()
        if self.state.log.active:
            self._log(request, status, sent, body.length)
        self._response_done(keep)

    async def _finish_file(
        self,
        request: RequestHead | None,
        status: int,
        body: FileBody,
        keep: bool,
        pending: Pending,
    ) -> None:
        """Finish a body that could not go out at once: by sendfile, or by reading."""
        try:
            path = await self.sender.finish(body.fd, pending)
        except (FileShrank, OSError, TimeoutError) as exc:
            self._abort(exc)
            return
        finally:
            body.close()
        if self.state.log.active:
            self._log(request, status, path, body.length)
        self._response_done(keep)
        self._process()

    def _run_async(
        self, coroutine: Coroutine[Any, Any, None], body: FileBody | None = None
    ) -> None:
        """Finish the response in a task; ``body`` is closed on connection loss even if the
        task is cancelled before it ever ran (its ``finally`` would then never run)."""
        self.phase = SENDING
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
        await self.flow.drain()

    def write(self, data: bytes) -> None:
        if self.transport is not None and self.phase < CLOSING:
            self.transport.write(data)

    def _log(self, request: RequestHead | None, status: int, path: str, body_bytes: int) -> None:
        remote = self.remote_addr
        if remote is None:
            remote = self.remote_addr = peer_address(self.transport)
        self.state.log.report(remote, request, status, path, body_bytes, self.request_started)

    def date_line(self) -> bytes:
        return self.state.date.line()
