"""What is reported of every response: the access log line, the metrics, the debug line.

The drivers hand over one finished response (its request, status, body path and bytes)
to ``ResponseLog.report``; this unit feeds it to whichever reports are on. The drivers
test ``ResponseLog.active`` first, so with nothing on a response costs one attribute
test; with the access log alone, ``report`` is the log's own method.

With ``--proxy-headers``, the line's client is the one a trusted proxy names
(``proxy.py``); that costs a scan of the request's fields per logged response, and only
then: without it the connection's peer address, looked up once, is written as it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..message.response import RequestHead
from .accesslog import AccessLog
from .proxy import ProxyHeaders
from .stats import Stats

logger = logging.getLogger("zerohttp")

# (remote, request, status, body path, body bytes, perf_counter() of the head)
Report = Callable[[str, RequestHead | None, int, str, int, float], None]


class ResponseLog:
    __slots__ = ("access_log", "active", "debug", "proxy", "report", "stats", "timed")

    def __init__(
        self,
        access_log: AccessLog | None,
        stats: Stats | None,
        proxy: ProxyHeaders | None = None,
    ) -> None:
        self.access_log = access_log
        self.proxy = proxy if access_log is not None else None  # only the log names a client
        self.stats = stats
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.active = self.debug or access_log is not None or stats is not None
        # a duration is measured only for what reports one (metrics, JSON lines)
        self.timed = stats is not None or (access_log is not None and access_log.needs_duration)
        # What the drivers call per response: with the access log alone on (the common
        # production case), its own method, one call instead of two.
        alone = stats is None and self.proxy is None and not self.debug
        self.report: Report = (
            access_log.respond if access_log is not None and alone else self.response
        )

    def response(
        self,
        remote: str,
        request: RequestHead | None,
        status: int,
        body_path: str,
        body_bytes: int,
        started: float,
    ) -> None:
        """One finished response; ``request`` is None for a head refused unparsed, and
        ``started`` the perf_counter() of its head (read only when ``timed``); ``remote``
        is the peer's address, ``-`` for a unix-socket peer."""
        duration = time.perf_counter() - started if self.timed else 0.0
        if self.stats is not None:
            self.stats.count(
                request.method if request else b"", status, body_path, body_bytes, duration
            )
        log = self.access_log
        if log is not None:
            if request is not None and self.proxy is not None:
                remote = client_address(self.proxy, remote, request)
            log.respond(remote, request, status, body_path, body_bytes, started)
        if self.debug:
            target_text = request.target.decode("latin-1") if request else "-"
            method_text = request.method.decode("latin-1") if request else "-"
            logger.debug("%s %s %d body=%s", method_text, target_text, status, body_path)


def client_address(proxy: ProxyHeaders, remote: str, request: RequestHead) -> str:
    """The access log's client: the peer's ``remote`` address, or the one its proxy
    headers name when the peer is trusted (``-`` is a unix-socket peer, always trusted)."""
    found = proxy.client(None if remote == "-" else remote, request.headers)
    if found is None or found.host is None:
        return remote
    return found.host
