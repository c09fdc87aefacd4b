"""zerohttp's own error family: every failure a client can cause maps to one HTTP status."""

from __future__ import annotations

import errno


class HTTPError(Exception):
    """A request that must be answered with ``status`` and then, usually, a closed connection."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason or str(status))
        self.status = status
        self.reason = reason


class ConfigError(Exception):
    """A setting that cannot work; the CLI prints it as one line and exits non-zero."""


def flag_name(field_name: str) -> str:
    """The command-line flag of a settings field, as a ConfigError names it: ``--cache-control``."""
    return "--" + field_name.replace("_", "-")


def bind_failure(exc: OSError) -> str:
    """Why bind(2) failed, in words for a ConfigError (asyncio's own message repeats the
    address and the errno: ``[Errno 98] error while attempting to bind on address ...``)."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return exc.strerror or str(exc)
