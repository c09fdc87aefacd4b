"""Binding, serving and graceful shutdown: the Python API that the CLI is a thin layer on."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from . import __version__
from .asgi.host import ASGIHost, Mount
from .asgi.lifespan import Lifespan
from .asgi.loader import load_app
from .body.zerocopy import cork_style, sendfile_function
from .config import Config, websocket_settings
from .errors import ConfigError, bind_failure
from .http.accesslog import AccessLog
from .http.connection import Handler, HTTPConnection, ServerState
from .http.proxy import ProxyHeaders
from .http.stats import Stats
from .listeners import adopt_fd, bind_unix, describe, parse_mode
from .metrics import SNAPSHOT_SECONDS, MetricsHandler, ProcessStats
from .stack import server_stack, static_stack
from .static.filecache import FileCache
from .static.handler import StaticHandler
from .tls import ktls_unavailable_reason, server_context

logger = logging.getLogger("zerohttp")


def body_path_description(config: Config) -> str:
    """Which way file bodies leave, for the start banner."""
    if config.tls is not None:
        return f"fallback (reads; TLS without kTLS: {ktls_unavailable_reason()})"
    if not config.sendfile:
        return "fallback (reads; --no-sendfile)"
    if sendfile_function() is None:
        return "fallback (reads; no os.sendfile on this platform)"
    return f"sendfile (head corked with {cork_style()})"


def check_root(root: str, what: str = "root") -> str:
    """The directory's real path; ConfigError says ``what`` it is if it cannot be served."""
    if not os.path.exists(root):
        raise ConfigError(f"{what} directory {root!r} does not exist")
    if not os.path.isdir(root):
        raise ConfigError(f"{what} {root!r} is not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ConfigError(f"{what} directory {root!r} is not readable")
    return os.path.realpath(root)


def check_mount(prefix: str, directory: str) -> str:
    """``check_root`` for a ``--mount`` directory, whose error names the flag."""
    return check_root(directory, f"--mount {prefix}={directory}:")


class Server:
    """A listening zerohttp server on the running event loop."""

    def __init__(
        self, config: Config, handler: Handler | None = None, *, snapshot_dir: str | None = None
    ) -> None:
        self.config = config.replace(root=check_root(config.root))
        self.lifespan: Lifespan | None = None
        tls = self.config.tls
        self.ssl_context = server_context(tls) if tls is not None else None
        self.static_handlers: list[StaticHandler] = []  # ROOT's or the mounts' (caches)
        self.proxy = (
            ProxyHeaders(self.config.forwarded_allow_ips) if self.config.proxy_headers else None
        )
        self.handler = handler or server_stack(self.config, self._default_handler())
        zero_copy = self.config.sendfile and sendfile_function() is not None
        form = self.config.access_log
        self.access_log = (
            AccessLog(form, self.config.access_log_file)  # type: ignore[arg-type]
            if form != "off"
            else None
        )
        stats = Stats() if self.config.metrics_port >= 0 else None
        self.state = ServerState(
            self.config,
            self.handler,
            zero_copy=zero_copy,
            access_log=self.access_log,
            stats=stats,
            proxy=self.proxy,
        )
        self.metrics: ProcessStats | None = None
        self._metrics_server: asyncio.Server | None = None
        self._snapshots: asyncio.TimerHandle | None = None
        if stats is not None:
            state = self.state
            self.metrics = ProcessStats(
                stats, lambda: len(state.connections), self._caches(), snapshot_dir
            )
        self._server: asyncio.Server | None = None
        self._bound_uds = ""  # a unix socket file we made, removed at shutdown
        self._drain_stopped = False

    def stop_draining(self) -> None:
        """End a graceful shutdown now: connections still busy are aborted."""
        self._drain_stopped = True

    def _default_handler(self) -> Handler:
        """The static files under ROOT, or the ASGI application with its mounts."""
        config = self.config
        if not config.app:
            return static_stack(config, self._static(config))
        app = load_app(config.app, factory=config.factory)
        self.lifespan = Lifespan(app, config.lifespan)  # type: ignore[arg-type]
        mounts = []
        for prefix, directory in config.mounts:
            mounted = config.replace(root=check_mount(prefix, directory))
            handler = static_stack(mounted, self._static(mounted))
            mounts.append(Mount(quote(prefix).encode("ascii"), handler))
        state = self.lifespan.state if config.lifespan != "off" else None
        scheme = "https" if self.ssl_context is not None else "http"
        return ASGIHost(
            app,
            root_path=config.root_path,
            mounts=mounts,
            state=state,
            scheme=scheme,
            proxy=self.proxy,
            websocket=websocket_settings(config),
        )

    def _static(self, config: Config) -> StaticHandler:
        handler = StaticHandler(config)
        self.static_handlers.append(handler)
        return handler

    def _caches(self) -> list[FileCache]:
        return [h.cache for h in self.static_handlers if h.cache is not None]

    async def _start_metrics(self, loop: asyncio.AbstractEventLoop) -> None:
        """The metrics listener: our own connection layer with a one-page handler."""
        assert self.metrics is not None
        state = ServerState(self.config, MetricsHandler(self.metrics), zero_copy=False)
        host, port = self.config.metrics_host, self.config.metrics_port
        try:
            self._metrics_server = await loop.create_server(
                lambda: HTTPConnection(state),
                host,
                port,
                reuse_address=True,
                reuse_port=self.config.workers > 1 or None,
            )
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port {port}: cannot listen on {host}:{port}: {bind_failure(exc)}"
            ) from None
        if self.metrics.snapshot_dir is not None:
            self._write_snapshot(loop)

    def _write_snapshot(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.metrics is not None
        try:
            self.metrics.write_snapshot()
        except OSError as exc:
            logger.warning("metrics: cannot write the worker snapshot: %s", exc)
        self._snapshots = loop.call_later(SNAPSHOT_SECONDS, self._write_snapshot, loop)

    @property
    def metrics_port(self) -> int | None:
        if self._metrics_server is None:
            return None
        return int(self._metrics_server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for notice in dict.fromkeys([h.prepare() for h in self.static_handlers]):
            if notice:
                logger.warning("%s", notice)  # one line, however many mounts share it
        if self.metrics is not None:
            await self._start_metrics(loop)
        if self.access_log is not None:
            try:
                self.access_log.open()
            except OSError as exc:
                raise ConfigError(f"--access-log-file {self.access_log.path!r}: {exc}") from None
            self.access_log.start(loop)
        if self.lifespan is not None:
            await self.lifespan.startup()  # before the first connection is accepted
        config = self.config
        handshake = config.header_timeout if self.ssl_context else None
        sock = None
        if config.fd >= 0:
            sock = adopt_fd(config.fd)
        elif config.uds:
            sock = bind_unix(config.uds, parse_mode(config.uds_mode), config.backlog)
            self._bound_uds = config.uds
        factory = lambda: HTTPConnection(self.state)  # noqa: E731
        try:
            if sock is None:
                self._server = await loop.create_server(
                    factory,
                    config.host,
                    config.port,
                    backlog=config.backlog,
                    reuse_address=True,
                    reuse_port=config.workers > 1 or None,
                    ssl=self.ssl_context,
                    ssl_handshake_timeout=handshake,
                )
            elif sock.family == socket.AF_UNIX:
                self._server = await loop.create_unix_server(
                    factory,
                    sock=sock,
                    backlog=config.backlog,
                    ssl=self.ssl_context,
                    ssl_handshake_timeout=handshake,
                )
            else:
                self._server = await loop.create_server(
                    factory,
                    sock=sock,
                    backlog=config.backlog,
                    ssl=self.ssl_context,
                    ssl_handshake_timeout=handshake,
                )
        except OSError as exc:
            raise ConfigError(_bind_error(self.config, exc)) from None
        self.state.start_sweeping(loop)

    @property
    def url(self) -> str:
        """Where the server listens, for the banner: a URL, or ``unix:PATH``."""
        assert self._server is not None
        scheme = "https" if self.ssl_context is not None else "http"
        return describe(self._server.sockets[0], scheme)[0]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def shutdown(self, grace: float = 10.0, *, again: str = "") -> None:
        """Stop accepting, close idle connections, give busy ones (and application calls
        still running) ``grace`` seconds.

        ``again`` names what ends the wait early ("Ctrl-C"): then the wait is announced.
        """
        if self._server is not None:
            self._server.close()
        self.state.stopping = True
        for connection in list(self.state.connections):
            connection.close_if_idle()
        if again and self.state.connections and grace > 0:
            logger.info("%s", waiting_line(self.config, len(self.state.connections), grace, again))
        deadline = asyncio.get_running_loop().time() + grace
        # the applications too, as uvicorn waits for its tasks: one told its WebSocket is
        # going away (websocket.disconnect 1001) may still be cleaning up
        while (
            (self.state.connections or self.state.responders)
            and asyncio.get_running_loop().time() < deadline
            and not self._drain_stopped
        ):
            await asyncio.sleep(0.05)
            for connection in list(self.state.connections):
                connection.close_if_idle()
        for connection in list(self.state.connections):
            connection.abort()
        for task in list(self.state.responders):  # app calls that outlived their connection
            task.cancel()
        if self.state.responders:
            await asyncio.wait(list(self.state.responders), timeout=1.0)
        self.state.stop_sweeping()
        if self._server is not None:
            await self._server.wait_closed()
        if self.lifespan is not None:
            await self.lifespan.shutdown()
        if self.access_log is not None:
            await self.access_log.close()
        if self._snapshots is not None:
            self._snapshots.cancel()
            assert self.metrics is not None
            self.metrics.write_snapshot()  # the last counts of this worker
        if self._metrics_server is not None:
            self._metrics_server.close()
        if self._bound_uds:
            with contextlib.suppress(OSError):
                os.unlink(self._bound_uds)
        for handler in self.static_handlers:
            handler.close()  # the compression threads


def _bind_error(config: Config, exc: OSError) -> str:
    where = f"{config.host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: address already in use"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied"
    return f"cannot listen on {where}: {exc.strerror or exc}"


async def serve(
    config: Config,
    *,
    on_started: Callable[[Server], None] | None = None,
    snapshot_dir: str | None = None,
) -> None:
    """Run a server until cancelled or until SIGINT/SIGTERM, then shut down gracefully."""
    server = Server(config, snapshot_dir=snapshot_dir)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        """The first SIGINT/SIGTERM drains gracefully; a second one ends the drain now."""
        received.append(sig)
        if stop.is_set():
            server.stop_draining()
            if len(received) == 2 and server.state.connections:
                logger.info(
                    "stopping now: %s cut short", _busy(config, len(server.state.connections))
                )
        elif config.workers == 1:  # the supervisor speaks for its workers
            logger.info("stopping on %s", sig.name)
        stop.set()

    handled: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
    if config.workers > 1:
        # a worker: the supervisor turns Ctrl-C into SIGTERM, so the terminal's own SIGINT
        # to the whole process group must not count as a second signal and cut the drain
        handled = (signal.SIGTERM,)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in handled:
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or Windows
    if on_started is not None:
        on_started(server)
    try:
        await stop.wait()
    finally:
        again = "" if not received else "Ctrl-C" if received[0] == signal.SIGINT else "SIGTERM"
        if received and config.workers > 1:
            again = "Ctrl-C or SIGTERM"  # as the supervisor forwards either
        await server.shutdown(config.timeout_graceful_shutdown, again=again)


def waiting_line(config: Config, busy: int, grace: float, again: str) -> str:
    """What a graceful stop says it waits for, and how to end the wait."""
    worker = f"worker {os.getpid()}: " if config.workers > 1 else ""
    return (
        f"{worker}waiting up to {grace:g} s for {_busy(config, busy)} in progress "
        f"({again} again to stop now)"
    )


def _busy(config: Config, count: int) -> str:
    what = "request" if config.app else "download"
    return f"{count} {what}{'s' if count != 1 else ''}"


def banner_line(config: Config, loop_name: str, url: str, metrics_port: int | None = None) -> str:
    workers = f", workers: {config.workers}" if config.workers > 1 else ""
    if metrics_port is None and config.metrics_port > 0:
        metrics_port = config.metrics_port
    if metrics_port is not None:
        metrics_host = config.metrics_host
        metrics_host = f"[{metrics_host}]" if ":" in metrics_host else metrics_host
        workers += f", metrics: http://{metrics_host}:{metrics_port}/metrics"
    what = config.root
    if config.app:
        name = config.app if isinstance(config.app, str) else app_name(config.app)
        mounts = "".join(f", {prefix}/ -> {d}" for prefix, d in config.mounts)
        what = f"ASGI app {name}{mounts}"
    return (
        f"zerohttp {__version__} serving {what} on {url} "
        f"(loop: {loop_name}, body: {body_path_description(config)}{workers})"
    )


def app_name(app: Any) -> str:
    module = getattr(app, "__module__", None) or type(app).__module__
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return f"{module}:{name}"
