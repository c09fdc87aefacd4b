"""Content-Type for a file name: the standard library's table, made deterministic and modern.

A fresh ``mimetypes.MimeTypes()`` starts from CPython's built-in table only, so the answer
does not depend on which ``/etc/mime.types`` the machine happens to have.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Mapping

DEFAULT_TYPE = "application/octet-stream"

# Types CPython's table lacks or has out of date in some supported version.
_MODERN_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".gz": "application/gzip",
    ".br": "application/x-brotli",
    ".zst": "application/zstd",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
}

_UTF8_APPLICATION_TYPES = frozenset(
    {"application/json", "application/manifest+json", "application/xml", "image/svg+xml"}
)


def _needs_charset(media_type: str) -> bool:
    if "charset=" in media_type.lower():
        return False
    return media_type.startswith("text/") or media_type in _UTF8_APPLICATION_TYPES


class MediaTypes:
    """Maps a file name to a full Content-Type value, with per-site overrides."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        table = dict(mimetypes.MimeTypes().types_map[True])
        table.update(_MODERN_TYPES)
        for ext, media_type in (overrides or {}).items():
            table["." + ext.lower().lstrip(".")] = media_type
        self._table = {
            ext: f"{t}; charset=utf-8" if _needs_charset(t) else t for ext, t in table.items()
        }

    def content_type(self, name: str) -> str:
        ext = posixpath.splitext(name)[1].lower()
        return self._table.get(ext, DEFAULT_TYPE)
