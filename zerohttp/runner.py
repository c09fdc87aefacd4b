"""Process start-up: choose the loop, then serve in this process or in forked workers.

Kept apart from ``server.py`` so that ``workers`` (which runs a ``Server`` per process) and
the single-process path both sit below this module instead of importing each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Callable

from .asgi.loader import load_app
from .config import Config
from .listeners import systemd_listen_fd
from .loops import loop_factory
from .metrics import make_snapshot_dir
from .server import Server, banner_line, check_mount, check_root, serve
from .workers import run_workers

logger = logging.getLogger("zerohttp")


def run(
    config: Config,
    *,
    on_started: Callable[[Server], None] | None = None,
    address_given: bool = True,
) -> None:
    """Choose the loop, serve until interrupted; with ``workers > 1``, fork them first.

    ``address_given`` is False when the command line named no --port, --uds or --fd: then
    a socket passed by systemd socket activation (LISTEN_FDS) is served, if there is one.
    Returns on Ctrl-C at any point, as the CLI does, rather than raise KeyboardInterrupt.
    """
    try:
        _run(config, on_started, address_given)
    except KeyboardInterrupt:
        pass  # before the server could handle it (while the app is imported, say)


def _run(config: Config, on_started: Callable[[Server], None] | None, address_given: bool) -> None:
    if not address_given and config.fd < 0 and not config.uds:
        inherited = systemd_listen_fd(os.environ, os.getpid())
        if inherited is not None:
            for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
                os.environ.pop(name, None)  # not for the app's child processes
            config = config.replace(fd=inherited)
    loop_name, factory = loop_factory(config.loop)
    config = config.replace(root=check_root(config.root))
    if config.app:
        # imported before any fork (workers share it, like gunicorn's preload), so a bad
        # --app is one error line, not one per worker; Server gets the same object back
        load_app(config.app, factory=config.factory)
        for prefix, directory in config.mounts:
            check_mount(prefix, directory)
    if config.workers > 1:
        snapshots = make_snapshot_dir() if config.metrics_port > 0 else None
        try:
            run_workers(
                config, lambda cfg, ready: run_one(cfg, factory, ready, snapshots), loop_name
            )
        finally:
            if snapshots is not None:
                shutil.rmtree(snapshots, ignore_errors=True)
        return

    def banner(server: Server) -> None:
        line = banner_line(server.config, loop_name, server.url, server.metrics_port)
        logger.info("%s", line)
        if on_started is not None:
            on_started(server)

    run_one(config, factory, banner)


def run_one(
    config: Config,
    factory: Callable[[], asyncio.AbstractEventLoop],
    on_started: Callable[[Server], None] | None,
    snapshot_dir: str | None = None,
) -> None:
    """One process, one event loop, one server; returns on Ctrl-C, even one that comes
    before serve() handles SIGINT itself (while the app starts, say), as the CLI does."""
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        main = loop.create_task(serve(config, on_started=on_started, snapshot_dir=snapshot_dir))
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # until serve() puts its graceful handler in place: Ctrl-C cancels the start
            loop.add_signal_handler(signal.SIGINT, main.cancel)
        try:
            loop.run_until_complete(main)
        except asyncio.CancelledError:
            pass  # Ctrl-C while starting
        finally:
            _cancel_all_tasks(loop)  # what the start left running (the lifespan task, say)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left and let it finish, as ``asyncio.run`` does on its way out."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
