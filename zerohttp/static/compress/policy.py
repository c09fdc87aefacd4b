"""Which files are worth compressing, as plain functions over a media type and sizes.

Text-like types shrink several times over; images, audio, video, archives and woff/woff2
are already compressed, and compressing them again costs CPU for nothing (or grows them).
"""

from __future__ import annotations

# The codings zerohttp compresses into, in its default preference order.
CODINGS = ("zstd", "br", "gzip")
# Media types (without parameters) that compress well, beyond every ``text/*``.
COMPRESSIBLE_TYPES = frozenset(
    {
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/json",
        "application/ld+json",
        "application/manifest+json",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/wasm",
        "application/x-sh",
        "application/x-tex",
        "application/postscript",
        "application/rtf",
        "application/vnd.ms-fontobject",
        "image/svg+xml",
        "image/vnd.microsoft.icon",
        "image/x-icon",
        "image/bmp",
        "font/ttf",
        "font/otf",
        "font/sfnt",
        "font/collection",
    }
)
# Structured-syntax suffixes (RFC 6839) of text formats: ``application/foo+json``.
COMPRESSIBLE_SUFFIXES = ("+json", "+xml")
# The share a compressed copy must save to be kept: under 5 % is not worth a second file.
MAX_RATIO = 0.95


def media_type_of(content_type: str) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return content_type.partition(";")[0].strip().lower()


def compressible_type(content_type: str) -> bool:
    """Whether a file of this Content-Type is text-like (see COMPRESSIBLE_TYPES)."""
    media_type = media_type_of(content_type)
    if media_type.startswith("text/") or media_type in COMPRESSIBLE_TYPES:
        return True
    return media_type.startswith("application/") and media_type.endswith(COMPRESSIBLE_SUFFIXES)


def qualifies(content_type: str, size: int, min_size: int, max_size: int) -> bool:
    """Whether a file is compressed at all: a compressible type within the size bounds."""
    return min_size <= size <= max_size and compressible_type(content_type)


def worth_keeping(original_size: int, compressed_size: int) -> bool:
    """A copy is kept only when it saves at least 5 % (whitenoise's rule too)."""
    return compressed_size <= original_size * MAX_RATIO
