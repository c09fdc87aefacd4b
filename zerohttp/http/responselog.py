"""What is reported of every response: the access log line, the metrics, the debug line.

The drivers hand over one finished response (its request, status, body path and bytes);
this unit turns it into one ``AccessRecord`` and feeds whichever reports are on. The
drivers test ``ResponseLog.active`` first, so with nothing on a response costs one
attribute test.
"""

from __future__ import annotations

import logging
import time

from ..message.response import RequestHead
from .accesslog import AccessLog, AccessRecord
from .stats import Stats

logger = logging.getLogger("zerohttp")


class ResponseLog:
    __slots__ = ("access_log", "active", "debug", "stats", "timed")

    def __init__(self, access_log: AccessLog | None, stats: Stats | None) -> None:
        self.access_log = access_log
        self.stats = stats
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.active = self.debug or access_log is not None or stats is not None
        # a duration is measured only for what reports one (metrics, JSON lines)
        self.timed = stats is not None or (access_log is not None and access_log.needs_duration)

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
        ``started`` the perf_counter() of its head (read only when ``timed``)."""
        duration = time.perf_counter() - started if self.timed else 0.0
        if self.stats is not None:
            self.stats.count(
                request.method if request else b"", status, body_path, body_bytes, duration
            )
        log = self.access_log
        if log is not None:
            referer = agent = None
            if request is None:  # refused before it parsed
                method = target = version = b""
            else:
                method, target, version = request.method, request.target, request.http_version
                for name, value in request.headers:
                    if name == b"referer":
                        referer = value
                    elif name == b"user-agent":
                        agent = value
            record = AccessRecord(
                remote, time.time(), method, target, version, status, body_bytes, duration,
                referer, agent, body_path,
            )  # fmt: skip
            log.add(log.line(record))
        if self.debug:
            target_text = request.target.decode("latin-1") if request else "-"
            method_text = request.method.decode("latin-1") if request else "-"
            logger.debug("%s %s %d body=%s", method_text, target_text, status, body_path)
