"""The access log: one line per response, in Common, Combined or JSON form.

The forms are plain functions in ``loglines.py``. ``AccessLog.respond`` is what a response
costs: its fields kept, then formatted with the next BATCH responses in one go (measured
in benchmarks/RESULTS.md, "Issue 21": formatting each line between two responses cost
three times as much under load). Writing never blocks the loop: the buffer is handed, at
least once a second and at shutdown, to a thread that writes it in one ``os.write``. A
full disk or a closed pipe is logged once, and the server keeps serving (lines are
dropped until writing works again).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Literal

from ..message.response import RequestHead
from .loglines import (
    BODY_PATHS,
    COMBINED_ROW,
    COMMON_ROW,
    JSON_ROW,
    LINE_FUNCTIONS,
    SAFE,
    AccessRecord,
    clf_line,
    clf_time,
    combined_line,
    common_line,
    json_bytes,
    json_line,
    json_text,
    utc_second,
)

__all__ = [
    "ACCESS_LOG_FORMATS",
    "AccessLog",
    "AccessLogFormat",
    "AccessRecord",
    "clf_time",
    "combined_line",
    "common_line",
    "json_line",
]

logger = logging.getLogger("zerohttp")

AccessLogFormat = Literal["off", "common", "combined", "json"]
ACCESS_LOG_FORMATS: tuple[AccessLogFormat, ...] = ("off", "common", "combined", "json")
FLUSH_SECONDS = 1.0
BATCH = 128  # responses whose Common/Combined lines are formatted together
MAX_BUFFERED_BYTES = 16 << 20  # beyond this (a writer stuck for long), lines are dropped


class AccessLog:
    """Lines for one file (or stdout), buffered in memory and flushed from the event loop.

    ``respond`` is the one call per response, with ``ResponseLog.response``'s signature
    (with nothing else reporting, the drivers call it directly: ``ResponseLog.report``):
    it keeps the response's fields; every BATCH responses (and before every write) their
    lines go into one ``bytearray``, the client's address encoded once per client and the
    timestamp once a second.
    """

    def __init__(self, form: AccessLogFormat, path: str = "") -> None:
        self.line = LINE_FUNCTIONS[form]
        self.respond = self._json if form == "json" else self._clf
        self.combined = form == "combined"
        self.needs_duration = form == "json"
        self.path = path or "<stdout>"
        self._target = path
        self._fd = -1
        self._buffer = bytearray()
        self._pending: list[tuple[str, RequestHead | None, int, int, float]] = []
        self._pending_json: list[tuple[str, RequestHead | None, int, int, float, float, str]] = []
        self._remote = ""  # the last client seen, and its text in the line
        self._remote_text: bytes = b""
        self._remote_json = b'""'
        self._next_second = 0.0  # when the timestamp's text is due again
        self._stamp = b""
        self._flushing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failing = False

    def open(self) -> None:
        """Raises OSError (the CLI turns it into one line) if the file cannot be opened."""
        if self._target:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(self._target, flags, 0o644)
        else:
            self._fd = os.dup(1)

    def _clf(
        self,
        remote: str,
        request: RequestHead | None,
        status: int,
        body_path: str,
        size: int,
        started: float,
    ) -> None:
        """One response for a Common or Combined line (``ResponseLog.response``'s fields;
        the body path and the duration are not in these forms): kept as it is and
        formatted with the next BATCH in one go (``_format``)."""
        pending = self._pending
        pending.append((remote, request, status, size, time.time()))
        if len(pending) >= BATCH:
            self._format()

    def _format(self) -> None:
        """The pending responses' lines, into the buffer, by one ``%`` over a format
        repeated once per line: a tight loop that only gathers fields costs a fraction of
        formatting each line between two responses (benchmarks/RESULTS.md, "Issue 21").
        A line that needs escaping or has no request goes through ``clf_line`` alone."""
        if self._pending_json:
            self._format_json()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        buffer = self._buffer
        if len(buffer) >= MAX_BUFFERED_BYTES:  # the writer is stuck: drop the batch
            return
        combined = self.combined
        form = COMBINED_ROW if combined else COMMON_ROW
        fields: list[bytes | int] = []
        rows = 0
        for remote, request, status, size, when in pending:
            if when >= self._next_second:
                self._stamp = clf_time(when)
                self._next_second = int(when) + 1.0
            if remote is not self._remote:
                self._remote = remote
                self._remote_text = remote.encode("ascii", "replace")
            referer = agent = b"-"
            plain = request is not None and not request.target.translate(None, SAFE)
            if plain and combined:
                for name, value in request.headers:  # type: ignore[union-attr]
                    if name == b"referer":
                        referer = value
                        plain = plain and bool(value) and not value.translate(None, SAFE)
                    elif name == b"user-agent":
                        agent = value
                        plain = plain and bool(value) and not value.translate(None, SAFE)
            if not plain or request is None:  # rare: one line on its own, in order
                if rows:
                    buffer += form * rows % tuple(fields)
                    fields.clear()
                    rows = 0
                buffer += self._line_alone(request, status, size, combined)
                continue
            fields += (self._remote_text, self._stamp, request.method, request.target,
                       request.http_version, status, b"%d" % size if size else b"-")  # fmt: skip
            if combined:
                fields += (referer, agent)
            rows += 1
        if rows:
            buffer += form * rows % tuple(fields)

    def _line_alone(
        self, request: RequestHead | None, status: int, size: int, combined: bool
    ) -> bytes:
        method, target, protocol, referer, agent = request_fields(request)
        line = clf_line(
            self._remote_text, self._stamp, method, target, protocol, status, size, referer,
            agent, combined,
        )  # fmt: skip
        return line + b"\n"

    def _json(
        self,
        remote: str,
        request: RequestHead | None,
        status: int,
        body_path: str,
        size: int,
        started: float,
    ) -> None:
        """One response for a JSON line, kept for the next batch (``_format_json``);
        ``started`` is the perf_counter() of its head."""
        now = time.perf_counter()
        pending = self._pending_json
        pending.append((remote, request, status, size, time.time(), now - started, body_path))
        if len(pending) >= BATCH:
            self._format_json()

    def _format_json(self) -> None:
        """The pending JSON lines, as ``_format`` does the others: fields gathered, one
        ``%`` for all lines whose strings need no escaping, ``json_text`` for the rest."""
        pending, self._pending_json = self._pending_json, []
        buffer = self._buffer
        if len(buffer) >= MAX_BUFFERED_BYTES:
            return
        fields: list[bytes | int] = []
        rows = 0
        for remote, request, status, size, when, duration, body_path in pending:
            if remote is not self._remote:
                self._remote = remote
                self._remote_json = json_bytes(remote.encode("latin-1", "replace"))
            referer = agent = b"null"
            path = BODY_PATHS.get(body_path, b"")
            plain = bool(path) and request is not None
            if plain:
                plain = not request.target.translate(None, SAFE)  # type: ignore[union-attr]
                for name, value in request.headers:  # type: ignore[union-attr]
                    if name == b"referer":
                        referer = b'"%s"' % value if value else b"null"
                        plain = plain and not value.translate(None, SAFE)
                    elif name == b"user-agent":
                        agent = b'"%s"' % value if value else b"null"
                        plain = plain and not value.translate(None, SAFE)
            if not plain:  # rare: one line on its own, in order
                if rows:
                    buffer += JSON_ROW * rows % tuple(fields)
                    fields.clear()
                    rows = 0
                buffer += self._json_alone(request, status, size, when, duration, body_path)
                continue
            micros = int(duration * 1e6 + 0.5)
            fields += (
                self._remote_json, utc_second(when), int((when - int(when)) * 1000),
                request.method, request.target, request.http_version, status, size,  # type: ignore[union-attr]
                micros // 1000, micros % 1000, referer, agent, path,
            )  # fmt: skip
            rows += 1
        if rows:
            buffer += JSON_ROW * rows % tuple(fields)

    def _json_alone(
        self,
        request: RequestHead | None,
        status: int,
        size: int,
        when: float,
        duration: float,
        body_path: str,
    ) -> bytes:
        method, target, protocol, referer, agent = request_fields(request)
        line = json_text(
            self._remote_json, when, method, target, protocol, status, size, duration,
            referer, agent, body_path,
        )  # fmt: skip
        return line + b"\n"

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(FLUSH_SECONDS, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._format()
        if self._buffer and (self._flushing is None or self._flushing.done()):
            self._flushing = loop.create_task(self.flush())
        self._timer = loop.call_later(FLUSH_SECONDS, self._tick, loop)

    async def flush(self) -> None:
        """Write what is buffered, in a thread: a slow disk or a full pipe never stalls us."""
        self._format()
        if not self._buffer or self._fd < 0:
            return
        data, self._buffer = self._buffer, bytearray()
        try:
            await asyncio.get_running_loop().run_in_executor(None, _write_all, self._fd, data)
        except OSError as exc:
            if not self._failing:
                logger.error(
                    "access log: cannot write to %s (%s); lines are dropped", self.path, exc
                )
            self._failing = True
        else:
            if self._failing:
                logger.error("access log: writing to %s works again", self.path)
            self._failing = False

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._flushing is not None:
            await asyncio.wait([self._flushing])
        await self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def request_fields(
    request: RequestHead | None,
) -> tuple[bytes, bytes, bytes, bytes | None, bytes | None]:
    """What a line says of its request: method, target, protocol, Referer and User-Agent
    (empty for a head refused before it parsed)."""
    if request is None:
        return b"", b"", b"", None, None
    referer = agent = None
    for name, value in request.headers:
        if name == b"referer":
            referer = value
        elif name == b"user-agent":
            agent = value
    return request.method, request.target, request.http_version, referer, agent
