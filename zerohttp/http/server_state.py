"""What every connection of one server shares, and the one sweeper of their deadlines."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from ..message.dates import DateHeader
from ..message.response import RequestHead, Response
from .accesslog import AccessLog
from .closing import LINGER_IDLE
from .health import health_check
from .proxy import ProxyHeaders
from .responselog import ResponseLog
from .stats import Stats

if TYPE_CHECKING:
    from .driver import DriverFactory, Upgrade
    from .exchange import Responder

# Longest pause between two passes of the deadline sweeper: a deadline is kept to within it.
SWEEP_MAX = 0.5


class ConnectionSettings(Protocol):
    """The settings the drivers read (``zerohttp.Config`` has them all)."""

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
    """Decides a request: a ``Response`` now, a ``Responder`` that answers asynchronously,
    or an ``Upgrade`` that hands the connection to another protocol driver."""

    def handle(self, request: RequestHead) -> Response | Responder | Upgrade: ...


class Driver(Protocol):
    """What the server asks of every connection's protocol driver."""

    deadline: float  # loop time at which the sweeper calls on_deadline

    def on_deadline(self) -> None: ...
    def close_if_idle(self) -> bool: ...
    def abort(self) -> None: ...


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
        proxy: ProxyHeaders | None = None,
    ) -> None:
        self.config = config
        self.handler = handler
        self.zero_copy = zero_copy
        self.date = DateHeader()
        self.connections: set[Driver] = set()
        self.limit = config.limit_concurrency  # 0: none
        self.rejecting = 0  # connections over the limit, answered 503, not yet closed
        self.responders: set[asyncio.Task[None]] = set()  # may outlive their connection
        # (connection, exchange, last bytes): responses finished in this loop pass
        self.finishing: list[tuple[Any, Any, bytes]] = []
        # WebSocket drivers holding messages to write at the end of this loop pass
        self.writing_soon: list[Any] = []
        self.access_log = access_log
        self.stats = stats
        self.log = ResponseLog(access_log, stats, proxy)
        self.health = health_check(config.health_path)  # None: off
        timeouts = (
            config.keepalive_timeout,
            config.header_timeout,
            config.body_timeout,
            LINGER_IDLE,
        )
        self.sweep_interval = min(SWEEP_MAX, min(timeouts) / 4)
        self._sweeper: asyncio.TimerHandle | None = None
        # the serving loop, once sweeping starts: a new connection reads it here, since
        # asyncio.get_running_loop() costs a getpid() syscall per call
        self.loop: asyncio.AbstractEventLoop | None = None
        # connection prefaces that hand a new connection to another driver (HTTP/2 by
        # prior knowledge registers one): looked for before the first request only
        self.prefaces: dict[bytes, DriverFactory] = {}
        # shutting down: a response that closes its connection now does not linger (the
        # server closes on its own, as after a timeout), and lingering ones close at once
        self.stopping = False

    def start_sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        """One periodic pass over all connections enforces every idle, header, body and
        linger deadline: far cheaper than a timer handle cancelled and re-armed per request."""
        self.loop = loop
        now = loop.time()
        for connection in list(self.connections):
            if connection.deadline <= now:
                connection.on_deadline()
        self._sweeper = loop.call_later(self.sweep_interval, self.start_sweeping, loop)

    def stop_sweeping(self) -> None:
        self.loop = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
