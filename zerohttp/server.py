"""Binding, serving and graceful shutdown: the Python API that the CLI is a thin layer on."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from collections.abc import Callable

from . import __version__
from .body.zerocopy import cork_style, sendfile_function
from .config import Config
from .errors import ConfigError
from .http.connection import Handler, HTTPConnection, ServerState
from .static.handler import StaticHandler

logger = logging.getLogger("zerohttp")


def body_path_description(config: Config) -> str:
    """Which way file bodies leave, for the start banner."""
    if not config.sendfile:
        return "fallback (aiofiles reads; --no-sendfile)"
    if sendfile_function() is None:
        return "fallback (aiofiles reads; no os.sendfile on this platform)"
    return f"sendfile (head corked with {cork_style()})"


def check_root(root: str) -> str:
    if not os.path.exists(root):
        raise ConfigError(f"root directory {root!r} does not exist")
    if not os.path.isdir(root):
        raise ConfigError(f"root {root!r} is not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ConfigError(f"root directory {root!r} is not readable")
    return os.path.realpath(root)


class Server:
    """A listening zerohttp server on the running event loop."""

    def __init__(self, config: Config, handler: Handler | None = None) -> None:
        self.config = config.replace(root=check_root(config.root))
        self.handler = handler or StaticHandler(self.config)
        zero_copy = self.config.sendfile and sendfile_function() is not None
        self.state = ServerState(self.config, self.handler, zero_copy=zero_copy)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: HTTPConnection(self.state),
                self.config.host,
                self.config.port,
                backlog=self.config.backlog,
                reuse_address=True,
                reuse_port=self.config.workers > 1 or None,
            )
        except OSError as exc:
            raise ConfigError(_bind_error(self.config, exc)) from None
        self.state.start_sweeping(loop)

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

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting, close idle connections, give busy ones ``grace`` seconds."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.state.connections):
            connection.close_if_idle()
        deadline = asyncio.get_running_loop().time() + grace
        while self.state.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            for connection in list(self.state.connections):
                connection.close_if_idle()
        for connection in list(self.state.connections):
            connection.abort()
        self.state.stop_sweeping()
        if self._server is not None:
            await self._server.wait_closed()


def _bind_error(config: Config, exc: OSError) -> str:
    where = f"{config.host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: address already in use"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied"
    return f"cannot listen on {where}: {exc.strerror or exc}"


async def serve(config: Config, *, on_started: Callable[[Server], None] | None = None) -> None:
    """Run a server until cancelled or until SIGINT/SIGTERM, then shut down gracefully."""
    server = Server(config)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or Windows
    if on_started is not None:
        on_started(server)
    try:
        await stop.wait()
    finally:
        await server.shutdown()


def banner_line(config: Config, loop_name: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    workers = f", workers: {config.workers}" if config.workers > 1 else ""
    return (
        f"zerohttp {__version__} serving {config.root} on http://{shown}:{port}/ "
        f"(loop: {loop_name}, body: {body_path_description(config)}{workers})"
    )
