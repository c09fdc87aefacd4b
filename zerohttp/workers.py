"""``--workers N``: N forked processes, each with its own event loop and its own listening
socket, bound to one port with SO_REUSEPORT so the kernel spreads connections among them.

The parent only supervises: it resolves and holds the port (bound, never listening, so no
connection can be routed to it) until every worker is listening, prints the banner,
forwards SIGINT/SIGTERM, and restarts a worker that dies unexpectedly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator

from .config import Config
from .errors import ConfigError, bind_failure
from .listeners import adopt_fd, bind_unix, describe, parse_mode
from .server import Server, banner_line

logger = logging.getLogger("zerohttp")

WorkerMain = Callable[[Config, Callable[[Server], None]], None]
READY_TIMEOUT = 15.0
MAX_RESTARTS_PER_MINUTE = 10
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def reserve_port(config: Config) -> socket.socket:
    """Bind (without listening) the address the workers will share; resolves port 0."""
    return _reserve(config.host, config.port, "")


def reserve_metrics_port(config: Config) -> socket.socket:
    """Bind the metrics port once here, so a port in use is one line naming the flag, not
    one ``[Errno 98]`` from each worker."""
    return _reserve(
        config.metrics_host, config.metrics_port, f"--metrics-port {config.metrics_port}: "
    )


def _reserve(host: str, port: int, flag: str) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        probe = socket.socket(family, kind, proto)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind(address)
    except OSError as exc:
        raise ConfigError(f"{flag}cannot listen on {host}:{port}: {bind_failure(exc)}") from None
    return probe


def _release(*reservations: socket.socket | None) -> None:
    """Close the supervisor's port reservations (closing one twice is harmless)."""
    for reservation in reservations:
        if reservation is not None:
            reservation.close()


def describe_exit(pid: int, wait_status: int) -> str:
    """``os.wait``'s status in words: ``worker 12 exited with code 3`` or ``worker 12 was
    killed by SIGKILL`` (the raw status 9 reads like an exit code, and is not one)."""
    code = os.waitstatus_to_exitcode(wait_status)
    if code >= 0:
        return f"worker {pid} exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"worker {pid} was killed by {name}"


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a worker is forked and recorded in ``children``: the stop
    handler forwards them to the workers recorded there, so one arriving in between would
    miss the new worker, and the supervisor would wait for it for ever."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _spawn(
    config: Config,
    worker_main: WorkerMain,
    ready_fd: int,
    probe: socket.socket | None,
    metrics_probe: socket.socket | None = None,
) -> int:
    pid = os.fork()
    if pid:
        return pid
    # in the worker
    code = 0
    try:
        _release(probe, metrics_probe)  # the parent's reservations, not the worker's to keep
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # held by the parent

        def ready(_: Server) -> None:
            os.write(ready_fd, b"1")

        worker_main(config, ready)
    except ConfigError as exc:
        print(f"zerohttp: error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        pass
    except BaseException:
        logger.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        os._exit(code)


def run_workers(config: Config, worker_main: WorkerMain, loop_name: str) -> None:
    scheme = "https" if config.tls is not None else "http"
    listener: socket.socket | None = None  # one socket all workers accept on
    if config.fd >= 0:
        listener = adopt_fd(config.fd)
    elif config.uds:
        listener = bind_unix(config.uds, parse_mode(config.uds_mode), config.backlog)
        config = config.replace(uds="", fd=listener.fileno())
    if listener is not None:
        url = describe(listener, scheme)[0]
        probe = None
    else:
        probe = reserve_port(config)
        url = describe(probe, scheme)[0]
        config = config.replace(port=probe.getsockname()[1])
    metrics_probe = None
    try:
        if config.metrics_port > 0:
            metrics_probe = reserve_metrics_port(config)
        _run(config, worker_main, loop_name, url, probe, metrics_probe)
    finally:
        _release(probe, metrics_probe)
        if listener is not None and listener.family == socket.AF_UNIX:
            with contextlib.suppress(OSError):
                os.unlink(listener.getsockname())
            listener.close()


def _run(
    config: Config,
    worker_main: WorkerMain,
    loop_name: str,
    url: str,
    probe: socket.socket | None,
    metrics_probe: socket.socket | None = None,
) -> None:
    ready_read, ready_write = os.pipe()
    children: set[int] = set()
    stop = Stopper(children)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for _ in range(config.workers):
            with _stop_signals_held():
                children.add(_spawn(config, worker_main, ready_write, probe, metrics_probe))
        _wait_ready(ready_read, config.workers, children)
        _release(probe, metrics_probe)  # every worker listens: the ports stay theirs
        logger.info("%s", banner_line(config, loop_name, url))
        _supervise(config, worker_main, ready_write, children, lambda: stop.stopping)
        stop.say_unsaid()
    finally:
        if probe is not None:
            probe.close()
        os.close(ready_read)
        os.close(ready_write)


class Stopper:
    """The supervisor's SIGINT/SIGTERM handler: every worker gets SIGTERM, then the line.

    A Python signal handler runs between two bytecodes of whatever it interrupted; when that
    is a write to stderr (the banner, just logged), a second write from the handler is
    refused as reentrant (RuntimeError). Logging first then lost the kills, and the workers
    never stopped. So the workers are signalled first, and a line that cannot be written now
    is written once they are gone.
    """

    def __init__(self, children: set[int]) -> None:
        self.children = children
        self.stopping = False
        self.unsaid: list[str] = []

    def __call__(self, signum: int, _frame: object) -> None:
        first = not self.stopping
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if first:  # the workers say what they wait for; this says why they stop
            name = signal.Signals(signum).name
            try:
                logger.info("stopping on %s", name)
            except RuntimeError:
                self.unsaid.append(name)

    def say_unsaid(self) -> None:
        for name in self.unsaid:
            logger.info("stopping on %s", name)
        self.unsaid.clear()


def _wait_ready(ready_read: int, count: int, children: set[int]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    seen = 0
    os.set_blocking(ready_read, False)
    while seen < count:
        try:
            seen += len(os.read(ready_read, count))
        except BlockingIOError:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                children.discard(pid)
                for other in children:
                    os.kill(other, signal.SIGTERM)
                raise ConfigError("a worker failed to start (see the line above)") from None
            if time.monotonic() > deadline:
                raise ConfigError("workers did not start within 15 s") from None
            time.sleep(0.02)


def _supervise(
    config: Config,
    worker_main: WorkerMain,
    ready_write: int,
    children: set[int],
    stopping: Callable[[], bool],
) -> None:
    restarts: list[float] = []
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        children.discard(pid)
        with _stop_signals_held():
            if stopping():
                continue
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < 60] + [now]
            if len(restarts) > MAX_RESTARTS_PER_MINUTE:
                logger.error("workers keep dying; stopping")
                for other in children:
                    os.kill(other, signal.SIGTERM)
                continue
            logger.warning("%s; starting a new one", describe_exit(pid, status))
            children.add(_spawn(config, worker_main, ready_write, None))
