"""HTTP dates (RFC 9110 §5.6.7), formatted by ``email.utils`` and cached per second."""

from __future__ import annotations

import time
from email.utils import formatdate


def http_date(timestamp: float) -> str:
    """IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``; fractions are truncated."""
    return formatdate(int(timestamp), usegmt=True)


class DateHeader:
    """The ``Date`` header line, re-rendered at most once a second (its precision)."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"Date: " + http_date(now).encode("ascii") + b"\r\n"
        return self._line
