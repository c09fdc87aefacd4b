"""The HTTP/1.1 driver's phases, and the shape its parts see of it.

``HTTPConnection`` is one object per connection (one allocation, ``__slots__``), written
as a class per concern: the request cycle (``connection.py``), writing responses
(``responding.py``), the exchange with a responder (``exchange_side.py``) and deadlines,
closing and switching (``lifecycle.py``). ``DriverBase`` holds the state and says what each of
them may use of the others.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import h11

from ..message.response import FileBody, RequestHead, Response
from .driver import Upgrade
from .exchange import Exchange
from .filesender import FileSender
from .flow import FlowControl
from .reader import Head
from .server_state import ConnectionSettings, ServerState

NEVER = float("inf")


class Phase(enum.IntEnum):
    """Where a connection is; every phase from CLOSING on takes no more requests."""

    IDLE = 0  # between requests, nothing buffered: the keep-alive timeout runs
    HEAD = 1  # a head is arriving: the header timeout runs
    DISCARDING = 2  # answered; reading the request body only to drop it
    SENDING = 3  # a response is being written asynchronously
    EXCHANGE = 4  # a responder has the request
    CLOSING = 5  # closed, or closing once the transport has sent what it holds
    LINGERING = 6  # half-closed after a response: input is dropped until the client's EOF
    REJECTED = 7  # answered 503 over --limit-concurrency
    SWITCHED = 8  # the transport belongs to another driver now


# module constants: a global load instead of an attribute lookup on the enum per test
IDLE, HEAD, DISCARDING, SENDING, EXCHANGE = (Phase.IDLE, Phase.HEAD, Phase.DISCARDING,
                                             Phase.SENDING, Phase.EXCHANGE)  # fmt: skip
CLOSING, LINGERING, REJECTED, SWITCHED = (Phase.CLOSING, Phase.LINGERING, Phase.REJECTED,
                                          Phase.SWITCHED)  # fmt: skip


class DriverBase(asyncio.Protocol):
    """The HTTP/1.1 driver's state, and what each of its parts may call on the others
    (declared here for the type checker; the parts define them)."""

    __slots__ = (
        "__weakref__",  # the ASGI host keys per-connection values by a weak reference
        "body_in_flight",
        "buffer",
        "config",
        "deadline",
        "discarded",
        "eof",
        "exchange",
        "flow",
        "head",
        "linger_until",
        "loop",
        "parser",
        "pending",
        "phase",
        "remote_addr",
        "request_started",
        "sender",
        "sent_continue",
        "served",
        "state",
        "task",
        "tls",
        "transport",
    )

    state: ServerState
    config: ConnectionSettings
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport | None
    flow: FlowControl
    sender: FileSender
    phase: Phase
    tls: bool
    remote_addr: str | None
    request_started: float
    deadline: float
    linger_until: float
    task: asyncio.Task[None] | None
    body_in_flight: FileBody | None
    exchange: Exchange | None
    buffer: bytes
    eof: bool
    served: int
    parser: h11.Connection | None
    head: Head | None
    pending: Response | None
    discarded: int
    sent_continue: bool

    if TYPE_CHECKING:  # defined by the parts; declared here for the type checker only

        @property
        def busy(self) -> bool: ...

        def write(self, data: bytes) -> None: ...

        async def drain(self) -> None: ...

        def date_line(self) -> bytes: ...

        def _process(self) -> None: ...

        def _respond(
            self, head: Head | None, response: Response, keep_alive: bool, *, logged: bool = True
        ) -> None: ...

        def _response_done(self, keep_alive: bool) -> None: ...

        def _next_cycle(self) -> None: ...

        def _run_async(
            self, coroutine: Coroutine[Any, Any, None], body: FileBody | None = None
        ) -> None: ...

        def _log(
            self, request: RequestHead | None, status: int, path: str, body_bytes: int
        ) -> None: ...

        def _await_body(self) -> None: ...

        def _close(self, *, linger: bool = False) -> None: ...

        def _close_now(self) -> None: ...

        def _abort(self, exc: BaseException) -> None: ...

        def _body_timed_out(self, head: Head | None) -> None: ...

        def _exchange_body_stalled(self, exchange: Exchange) -> None: ...

        def _switch(self, driver: asyncio.Protocol, data: bytes) -> None: ...

        def _upgrade(self, head: Head | None, upgrade: Upgrade, *, logged: bool = True) -> None: ...

        def _pump_body(self, exchange: Exchange) -> None: ...

        def send_continue(self) -> None: ...

        def abort_exchange(self, exchange: Exchange, exc: BaseException) -> None: ...
