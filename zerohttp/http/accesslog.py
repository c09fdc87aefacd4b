"""The access log: one line per response, in Common, Combined or JSON form.

Formatting is plain functions over one ``AccessRecord`` (``responselog.py`` builds it).
Writing never blocks the loop: lines collect in memory and a flush, at least once a
second and at shutdown, hands them to a thread in one ``os.write`` per batch. A full
disk or a closed pipe is logged once, and the server keeps serving (lines are dropped
until writing works again).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Literal, NamedTuple

logger = logging.getLogger("zerohttp")

AccessLogFormat = Literal["off", "common", "combined", "json"]
ACCESS_LOG_FORMATS: tuple[AccessLogFormat, ...] = ("off", "common", "combined", "json")
FLUSH_SECONDS = 1.0
MAX_BUFFERED_LINES = 100_000  # beyond this (a writer stuck for long), lines are dropped


class AccessRecord(NamedTuple):
    """The fields of one line: built once per logged response (~0.25 µs)."""

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


LineFunction = Callable[[AccessRecord], bytes]

_UNSAFE = re.compile(rb'[^\x20-\x7e]|["\\]')
_SAFE = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')


def _escape(value: bytes) -> bytes:
    """As nginx does: '"', '\\' and bytes outside printable ASCII become \\xHH."""
    if value.translate(None, _SAFE):  # something is left once the safe bytes are gone
        return _UNSAFE.sub(lambda m: b"\\x%02X" % m.group()[0], value)
    return value


class _SecondCache:
    """A timestamp's text, rendered once a second (a log line needs only its second)."""

    __slots__ = ("_render", "_second", "_text")

    def __init__(self, render: Callable[[int], bytes]) -> None:
        self._render = render
        self._second = -1
        self._text = b""

    def __call__(self, when: float) -> bytes:
        second = int(when)
        if second != self._second:
            self._second = second
            self._text = self._render(second)
        return self._text


# ``[10/Oct/2000:13:55:36 +0000]``, local time, as Apache and nginx write it.
clf_time = _SecondCache(
    lambda second: time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)).encode()
)
# ``2000-10-10T13:55:36``, UTC, to which JSON lines add milliseconds and ``Z``.
_utc_second = _SecondCache(
    lambda second: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
)


def common_line(record: AccessRecord) -> bytes:
    """Common Log Format, as bytes (it is all ASCII, and the file wants bytes)."""
    # the method is a token (both head readers refuse anything else); none: refused unparsed
    method = record.method
    request = (
        b"%s %s HTTP/%s" % (method, _escape(record.target), record.protocol) if method else b"-"
    )
    size = record.bytes_sent
    return b'%s - - %s "%s" %d %s' % (
        record.remote_addr.encode("ascii", "replace"),
        clf_time(record.time),
        request,
        record.status,
        b"%d" % size if size else b"-",
    )


def combined_line(record: AccessRecord) -> bytes:
    """Combined Log Format: Common plus the quoted Referer and User-Agent."""
    referer, agent = record.referer, record.user_agent
    return b'%s "%s" "%s"' % (
        common_line(record),
        _escape(referer) if referer else b"-",
        _escape(agent) if agent else b"-",
    )


_json_string = json.encoder.encode_basestring_ascii


def _json_bytes(value: bytes | None) -> str:
    return _json_string(value.decode("latin-1")) if value is not None else "null"


def json_line(record: AccessRecord) -> bytes:
    """One JSON object; strings escaped by the json module's own C encoder, the object
    assembled here (``json.dumps`` of a dict cost four times as much)."""
    (remote, when, method, target, protocol, status, size, duration, referer, agent, body_path) = (
        record
    )
    millis = int((when - int(when)) * 1000)
    return (
        f'{{"remote_addr":{_json_string(remote)},'
        f'"time":"{_utc_second(when).decode()}.{millis:03d}Z",'
        f'"method":{_json_bytes(method)},"path":{_json_bytes(target)},'
        f'"protocol":"{"HTTP/" + protocol.decode("latin-1") if method else ""}",'
        f'"status":{status},"bytes_sent":{size},"duration_ms":{round(duration * 1000, 3)!r},'
        f'"referer":{_json_bytes(referer or None)},"user_agent":{_json_bytes(agent or None)},'
        f'"body_path":{_json_string(body_path)}}}'
    ).encode("ascii")


LINE_FUNCTIONS: dict[str, LineFunction] = {
    "common": common_line,
    "combined": combined_line,
    "json": json_line,
}


class AccessLog:
    """Buffered lines for one file (or stdout), flushed from the event loop."""

    def __init__(self, form: AccessLogFormat, path: str = "") -> None:
        self.line = LINE_FUNCTIONS[form]
        self.needs_duration = form == "json"
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

    def add(self, line: bytes) -> None:
        """Buffer one response's line (made by ``self.line`` from ``AccessRecord``'s fields)."""
        if len(self._lines) < MAX_BUFFERED_LINES:
            self._lines.append(line)

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
