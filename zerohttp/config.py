"""One settings object shared by the CLI, the Python API and the connection layer.

Each field carries its CLI help in its metadata so the command line is built from this
class (see ``cli.py``) and the option list exists exactly once.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError
from .negotiation import DEFAULT_PREFERENCE, SIBLING_SUFFIXES

LoopName = Literal["auto", "uvloop", "asyncio"]
LOOP_NAMES: tuple[LoopName, ...] = ("auto", "uvloop", "asyncio")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _opt(default: Any, help: str, **cli: Any) -> Any:
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a running server needs to know; immutable once the server starts."""

    root: str = _opt(".", "directory to serve (default: the current directory)", positional=True)
    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8000, "TCP port to listen on (0 picks a free one)")
    loop: LoopName = _opt(
        "auto", "event loop: uvloop when installed, else asyncio", choices=LOOP_NAMES
    )
    sendfile: bool = _opt(
        True, "send file bodies with sendfile(2); --no-sendfile reads them instead"
    )
    log_level: str = _opt("info", "logging level", choices=LOG_LEVELS)
    max_header_bytes: int = _opt(
        16384, "largest accepted request line plus header fields, in bytes (else 431)"
    )
    keepalive_timeout: float = _opt(75.0, "seconds an idle keep-alive connection is kept open")
    header_timeout: float = _opt(30.0, "seconds a client has to send a complete request head")
    send_timeout: float = _opt(60.0, "seconds a response may make no progress before it is aborted")
    max_discard_bytes: int = _opt(
        65536,
        "largest request body (sent with a GET or HEAD) read and dropped on a kept connection",
    )
    backlog: int = _opt(1024, "listen(2) backlog")
    index: tuple[str, ...] = _opt(
        ("index.html",), "index file names for a directory, tried in order", list="comma"
    )
    autoindex: bool = _opt(False, "list the contents of directories that have no index file")
    spa: bool = _opt(
        False, "single-page app: serve /index.html for unknown paths with no file extension"
    )
    precompressed: tuple[str, ...] = _opt(
        DEFAULT_PREFERENCE,
        "precompressed siblings (NAME.br, .zst, .gz) to serve, in preference order; 'none' off",
        list="comma",
    )
    cache_control: str = _opt("", "Cache-Control value sent with every file")
    immutable_pattern: str = _opt(
        "", "regex on the URL path: matches get Cache-Control: public, max-age=31536000, immutable"
    )
    mime: tuple[str, ...] = _opt((), "media type override EXT=TYPE (repeatable)", list="repeat")
    workers: int = _opt(
        1, "worker processes, each with its own loop, sharing the port through SO_REUSEPORT"
    )
    open_file_cache: int = _opt(
        256, "files kept open with pre-rendered headers, revalidated by stat on every hit; 0 off"
    )

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, with the CLI flag's name in the message."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port}: must be between 0 and 65535")
        if self.loop not in LOOP_NAMES:
            raise ConfigError(f"--loop {self.loop}: must be one of {', '.join(LOOP_NAMES)}")
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(
                f"--log-level {self.log_level}: must be one of {', '.join(LOG_LEVELS)}"
            )
        if self.max_header_bytes < 1024:
            raise ConfigError(f"--max-header-bytes {self.max_header_bytes}: must be at least 1024")
        for name in ("keepalive_timeout", "header_timeout", "send_timeout"):
            if not getattr(self, name) > 0:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{flag} {getattr(self, name)}: must be a positive number of seconds"
                )
        if self.max_discard_bytes < 0 or self.backlog < 1 or self.open_file_cache < 0:
            raise ConfigError(
                "--max-discard-bytes and --open-file-cache must be >= 0, --backlog >= 1"
            )
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: must be at least 1")
        if self.workers > 1 and (not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork")):
            raise ConfigError("--workers needs SO_REUSEPORT and fork() (Linux, BSD, macOS)")
        self._validate_static()

    def _validate_static(self) -> None:
        for name in self.index:
            if not name or "/" in name or name.startswith("."):
                raise ConfigError(f"--index {name!r}: must be a plain, visible file name")
        for coding in self.precompressed:
            if coding not in SIBLING_SUFFIXES:
                known = ", ".join(SIBLING_SUFFIXES)
                raise ConfigError(f"--precompressed {coding!r}: must be one of {known}")
        try:
            re.compile(self.immutable_pattern)
        except re.error as exc:
            raise ConfigError(f"--immutable-pattern {self.immutable_pattern!r}: {exc}") from None
        self.mime_overrides  # noqa: B018 - raises ConfigError for a malformed entry

    @property
    def mime_overrides(self) -> dict[str, str]:
        overrides: dict[str, str] = {}
        for entry in self.mime:
            ext, sep, media_type = entry.partition("=")
            if not sep or not ext.strip(". ") or "/" not in media_type:
                raise ConfigError(f"--mime {entry!r}: expected EXT=TYPE, e.g. md=text/markdown")
            overrides[ext.strip(". ").lower()] = media_type.strip()
        return overrides

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)
