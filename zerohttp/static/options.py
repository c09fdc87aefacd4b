"""What decides how files are served, shared by the CLI server and the ASGI ``StaticFiles``.

``Config`` (the whole server's settings) extends this class, so the file-serving options
exist once: the CLI builds its flags from these fields, and ``zerohttp.StaticFiles`` takes
the same names as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .negotiation import DEFAULT_PREFERENCE, SIBLING_SUFFIXES


def option(default: Any, help: str, **cli: Any) -> Any:
    """A dataclass field that carries its CLI help (and list/choice style) as metadata."""
    return dataclasses.field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True, slots=True)
class StaticOptions:
    """The file-serving settings; validated on construction (ConfigError names the flag)."""

    root: str = option(".", "directory to serve (default: the current directory)", positional=True)
    index: tuple[str, ...] = option(
        ("index.html",), "index file names for a directory, tried in order", list="comma"
    )
    autoindex: bool = option(False, "list the contents of directories that have no index file")
    spa: bool = option(
        False, "single-page app: serve /index.html for unknown paths with no file extension"
    )
    precompressed: tuple[str, ...] = option(
        DEFAULT_PREFERENCE,
        "precompressed siblings (NAME.br, .zst, .gz) to serve, in preference order; 'none' off",
        list="comma",
    )
    cache_control: str = option("", "Cache-Control value sent with every file")
    immutable_pattern: str = option(
        "", "regex on the URL path: matches get Cache-Control: public, max-age=31536000, immutable"
    )
    mime: tuple[str, ...] = option((), "media type override EXT=TYPE (repeatable)", list="repeat")
    open_file_cache: int = option(
        256, "files kept open with pre-rendered headers, revalidated by stat on every hit; 0 off"
    )

    def __post_init__(self) -> None:
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
        if self.open_file_cache < 0:
            raise ConfigError(f"--open-file-cache {self.open_file_cache}: must be >= 0")
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
