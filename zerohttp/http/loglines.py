"""The access log's line forms: Common, Combined and JSON, as plain functions over a
line's fields (``clf_line``, ``json_text``; the ``*_line`` functions take them as one
``AccessRecord``), and the row formats ``AccessLog`` fills for many lines at once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import NamedTuple

# one line of each form, for a line whose fields need no escaping (``AccessLog._format``)
COMMON_ROW = b'%s - - %s "%s %s HTTP/%s" %d %s\n'
COMBINED_ROW = b'%s - - %s "%s %s HTTP/%s" %d %s "%s" "%s"\n'
JSON_ROW = (
    b'{"remote_addr":%s,"time":"%s.%03dZ","method":"%s","path":"%s","protocol":"HTTP/%s",'
    b'"status":%d,"bytes_sent":%d,"duration_ms":%d.%03d,"referer":%s,"user_agent":%s,'
    b'"body_path":%s}\n'
)


class AccessRecord(NamedTuple):
    """The fields of one line, as the line functions take them (a response's line is
    formatted from them directly, without this object: ``AccessLog.respond``)."""

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
SAFE = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')


def escape(value: bytes) -> bytes:
    """As nginx does: '"', '\\' and bytes outside printable ASCII become \\xHH."""
    if value.translate(None, SAFE):  # something is left once the safe bytes are gone
        return _UNSAFE.sub(lambda m: b"\\x%02X" % m.group()[0], value)
    return value


class _SecondCache:
    """A timestamp's text, rendered once a second (a log line needs only its second)."""

    __slots__ = ("_render", "_second", "_text")

    def __init__(self, render: Callable[[int], bytes]) -> None:
        self._render = render
        self._second = -1
        self._text = render(0)

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
utc_second = _SecondCache(
    lambda second: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
)


def clf_line(
    remote: bytes,
    stamp: bytes,
    method: bytes,
    target: bytes,
    protocol: bytes,
    status: int,
    size: int,
    referer: bytes | None,
    agent: bytes | None,
    combined: bool,
) -> bytes:
    """One Common (or, ``combined``, Combined) line: the one place its form is written.
    ``stamp`` is ``clf_time``'s text; the method is a token (both head readers refuse
    anything else), empty for a head refused unparsed."""
    if target.translate(None, SAFE):  # something unsafe is left: escape (rare)
        target = escape(target)
    request = b"%s %s HTTP/%s" % (method, target, protocol) if method else b"-"
    if not combined:
        return b'%s - - %s "%s" %d %s' % (
            remote,
            stamp,
            request,
            status,
            b"%d" % size if size else b"-",
        )
    return b'%s - - %s "%s" %d %s "%s" "%s"' % (
        remote,
        stamp,
        request,
        status,
        b"%d" % size if size else b"-",
        escape(referer) if referer else b"-",
        escape(agent) if agent else b"-",
    )


def common_line(record: AccessRecord) -> bytes:
    """Common Log Format, as bytes (it is all ASCII, and the file wants bytes)."""
    return clf_line(
        record.remote_addr.encode("ascii", "replace"), clf_time(record.time), record.method,
        record.target, record.protocol, record.status, record.bytes_sent, None, None, False,
    )  # fmt: skip


def combined_line(record: AccessRecord) -> bytes:
    """Combined Log Format: Common plus the quoted Referer and User-Agent."""
    return clf_line(
        record.remote_addr.encode("ascii", "replace"), clf_time(record.time), record.method,
        record.target, record.protocol, record.status, record.bytes_sent, record.referer,
        record.user_agent, True,
    )  # fmt: skip


_json_string = json.encoder.encode_basestring_ascii


def json_bytes(value: bytes | None) -> bytes:
    """A JSON string (or ``null``) of bytes read as latin-1, exactly as the json module's
    ASCII encoder writes it; printable ASCII without quote or backslash is written as it is
    (the common case, without a call into the encoder)."""
    if value is None:
        return b"null"
    if value.translate(None, SAFE):
        return _json_string(value.decode("latin-1")).encode("ascii")
    return b'"%s"' % value


def json_line(record: AccessRecord) -> bytes:
    """One JSON object for ``record`` (the path a response takes is ``AccessLog.respond``)."""
    return json_text(
        json_bytes(record.remote_addr.encode("latin-1", "replace")), record.time,
        record.method, record.target, record.protocol, record.status, record.bytes_sent,
        record.duration, record.referer, record.user_agent, record.body_path,
    )  # fmt: skip


BODY_PATHS = {path: b'"%s"' % path.encode() for path in ("sendfile", "fallback", "memory")}


def json_text(
    remote: bytes,
    when: float,
    method: bytes,
    target: bytes,
    protocol: bytes,
    status: int,
    size: int,
    duration: float,
    referer: bytes | None,
    agent: bytes | None,
    body_path: str,
) -> bytes:
    """One JSON object, ``remote`` already a JSON string; strings escaped as the json
    module's C encoder escapes them (``json.dumps`` of a dict cost four times as much)."""
    path = BODY_PATHS.get(body_path) or _json_string(body_path).encode("ascii")
    micros = int(duration * 1e6 + 0.5)  # written as milliseconds with three decimals
    return (
        b'{"remote_addr":%s,"time":"%s.%03dZ","method":"%s","path":%s,"protocol":"%s",'
        b'"status":%d,"bytes_sent":%d,"duration_ms":%d.%03d,"referer":%s,"user_agent":%s,'
        b'"body_path":%s}'
    ) % (
        remote, utc_second(when), int((when - int(when)) * 1000), method, json_bytes(target),
        b"HTTP/" + protocol if method else b"", status, size, micros // 1000, micros % 1000,
        json_bytes(referer) if referer else b"null", json_bytes(agent) if agent else b"null",
        path,
    )  # fmt: skip


LINE_FUNCTIONS: dict[str, LineFunction] = {
    "common": common_line,
    "combined": combined_line,
    "json": json_line,
}
