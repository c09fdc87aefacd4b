"""zerohttp's own error family: every failure a client can cause maps to one HTTP status."""

from __future__ import annotations


class HTTPError(Exception):
    """A request that must be answered with ``status`` and then, usually, a closed connection."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason or str(status))
        self.status = status
        self.reason = reason


class ConfigError(Exception):
    """A setting that cannot work; the CLI prints it as one line and exits non-zero."""
