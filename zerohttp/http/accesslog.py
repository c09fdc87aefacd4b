"""The access log: one line per response, in Common, Combined or JSON form.

Formatting is plain functions over an ``AccessRecord``. Writing never blocks the loop:
lines collect in memory and a flush, at least once a second and at shutdown, hands them
to a thread in one ``os.write`` per batch. A full disk or a closed pipe is logged once,
and the server keeps serving (lines are dropped until writing works again).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from typing import Literal, NamedTuple

logger = logging.getLogger("zerohttp")

AccessLogFormat = Literal["off", "common", "combined", "json"]
ACCESS_LOG_FORMATS: tuple[AccessLogFormat, ...] = ("off", "common", "combined", "json")
FLUSH_SECONDS = 1.0
MAX_BUFFERED_LINES = 100_000  # beyond this (a writer stuck for long), lines are dropped


class AccessRecord(NamedTuple):
    remote_addr: str
    time: float  # epoch seconds at the end of the response
    method: bytes
    target: bytes
    protocol: bytes  # "1.1"
    status: int
    bytes_sent: int  # body bytes actually sent
    duration: float  # seconds
    referer: bytes | None
    user_agent: bytes | None
    body_path: str  # sendfile, fallback, memory


_UNSAFE = re.compile(rb'[^\x20-\x7e]|["\\]')
_SAFE = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')


def _escape(value: bytes) -> bytes:
    """As nginx does: '"', '\\' and bytes outside printable ASCII become \\xHH."""
    if value.translate(None, _SAFE):  # something is left once the safe bytes are gone
        return _UNSAFE.sub(lambda m: b"\\x%02X" % m.group()[0], value)
    return value


class _ClfTime:
    """``[10/Oct/2000:13:55:36 +0000]``, local time, rendered once a second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = b""

    def __call__(self, when: float) -> bytes:
        second = int(when)
        if second != self._second:
            self._second = second
            text = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second))
            self._text = text.encode("ascii")
        return self._text


clf_time = _ClfTime()


def format_common(record: AccessRecord) -> bytes:
    """Common Log Format, as bytes (it is all ASCII, and the file wants bytes)."""
    remote, when, method, target, protocol, status, size, _, _, _, _ = record
    request = b"%s %s HTTP/%s" % (_escape(method), _escape(target), protocol) if method else b"-"
    return b'%s - - %s "%s" %d %s' % (
        remote.encode("ascii", "replace"),
        clf_time(when),
        request,
        status,
        b"%d" % size if size else b"-",
    )


def format_combined(record: AccessRecord) -> bytes:
    referer, agent = record.referer, record.user_agent
    return b'%s "%s" "%s"' % (
        format_common(record),
        _escape(referer) if referer else b"-",
        _escape(agent) if agent else b"-",
    )


def format_json(record: AccessRecord) -> bytes:
    text = datetime.fromtimestamp(record.time, timezone.utc).isoformat(timespec="milliseconds")
    return json.dumps(
        {
            "remote_addr": record.remote_addr,
            "time": text.replace("+00:00", "Z"),
            "method": record.method.decode("latin-1"),
            "path": record.target.decode("latin-1"),
            "protocol": f"HTTP/{record.protocol.decode('latin-1')}" if record.method else "",
            "status": record.status,
            "bytes_sent": record.bytes_sent,
            "duration_ms": round(record.duration * 1000, 3),
            "referer": record.referer.decode("latin-1") if record.referer else None,
            "user_agent": record.user_agent.decode("latin-1") if record.user_agent else None,
            "body_path": record.body_path,
        },
        ensure_ascii=True,
    ).encode("ascii")


FORMATTERS = {"common": format_common, "combined": format_combined, "json": format_json}


class AccessLog:
    """Buffered lines for one file (or stdout), flushed from the event loop."""

    def __init__(self, form: AccessLogFormat, path: str = "") -> None:
        self.format = FORMATTERS[form]
        self.path = path or "<stdout>"
        self._target = path
        self._fd = -1
        self._lines: list[bytes] = []
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

    def add(self, record: AccessRecord) -> None:
        if len(self._lines) < MAX_BUFFERED_LINES:
            self._lines.append(self.format(record))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(FLUSH_SECONDS, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._lines and (self._flushing is None or self._flushing.done()):
            self._flushing = loop.create_task(self.flush())
        self._timer = loop.call_later(FLUSH_SECONDS, self._tick, loop)

    async def flush(self) -> None:
        """Write what is buffered, in a thread: a slow disk or a full pipe never stalls us."""
        if not self._lines or self._fd < 0:
            return
        data = b"\n".join(self._lines) + b"\n"
        self._lines.clear()
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
