"""Request-target decoding and normalisation, without touching the file system.

The result is a list of clean path segments that can only name something *below* the
root: every ``..`` is resolved here (and one that would climb above the root is an
error), every percent-escape is decoded exactly once, and bytes that have no business in
a file name (NUL, control characters, backslashes, invalid or overlong UTF-8) reject the
request with 400 before any system call is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from ..errors import HTTPError

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")  # C0, DEL, C1, backslash
_AUTHORITY_END = re.compile(rb"[/?#]")
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_QUERY_SAFE = _SEGMENT_SAFE + "/?%"  # existing escapes stay; CR, LF, spaces, non-ASCII do not
#: the site's rules (``static/rules``), read by zerohttp from the root and never served
RULES_FILES = frozenset({"_headers", "_redirects"})


@dataclass(frozen=True, slots=True)
class RequestPath:
    """A decoded, normalised request path plus the untouched query string."""

    segments: tuple[str, ...]
    trailing_slash: bool
    query: bytes = b""

    @property
    def relative(self) -> str:
        """The path below the root, ``/``-separated, '' for the root itself."""
        return "/".join(self.segments)

    @property
    def hidden(self) -> bool:
        """Dotfiles, anything inside a dot-directory, and the root's rules files are never
        served (the rules files not even with ``--no-site-rules``: they are configuration)."""
        segments = self.segments
        if len(segments) == 1 and segments[0] in RULES_FILES:
            return True
        return any(segment.startswith(".") for segment in segments)

    @property
    def matched(self) -> str:
        """The path that site rules match: ``/`` and the segments, with the trailing slash."""
        path = "/" + "/".join(self.segments)
        return path + "/" if self.trailing_slash and self.segments else path

    def url(self, *, trailing_slash: bool | None = None) -> str:
        """The canonical, percent-encoded URL path (and query) for a Location header.

        Built from the normalised segments, never from the raw target, so a request for
        ``//evil.example`` cannot turn into a protocol-relative redirect.
        """
        slash = self.trailing_slash if trailing_slash is None else trailing_slash
        path = "/" + "/".join(quote(s, safe=_SEGMENT_SAFE) for s in self.segments)
        if slash and self.segments:
            path += "/"
        if self.query:
            path += "?" + encode_query(self.query)
        return path


def encode_query(query: bytes) -> str:
    """A request's query as it can be copied into a Location: existing escapes kept,
    anything that is not URL-safe ASCII (CR, LF, space, non-ASCII) percent-encoded."""
    return quote_from_bytes(query, safe=_QUERY_SAFE)


def _strip_absolute_form(target: bytes) -> bytes:
    """RFC 9112 §3.2.2: a server must accept ``http://host/path``; keep only the path."""
    if not target[:8].lower().startswith((b"http://", b"https://")):
        return target
    authority_start = target.index(b"//") + 2
    authority_end = _AUTHORITY_END.search(target, authority_start)
    if authority_end is None:
        return b"/"
    rest = target[authority_end.start() :]
    return rest if rest.startswith(b"/") else b"/" + rest


def parse_target(target: bytes) -> RequestPath:
    """Decode an origin-form or absolute-form request target, or raise HTTPError(400)."""
    target = _strip_absolute_form(target)
    if not target.startswith(b"/"):
        raise HTTPError(400, "request target must be an absolute path")
    if b"#" in target:
        raise HTTPError(400, "fragment in request target")
    raw_path, _, query = target.partition(b"?")
    if _BAD_ESCAPE.search(raw_path):
        raise HTTPError(400, "malformed percent-escape")
    try:
        decoded = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "path is not valid UTF-8") from None
    if _FORBIDDEN_CHARS.search(decoded):
        raise HTTPError(400, "control character or backslash in path")
    return RequestPath(_normalise(decoded), _names_directory(decoded), query)


def _names_directory(decoded: str) -> bool:
    last = decoded.rsplit("/", 1)[-1]
    return last in ("", ".", "..")


def _normalise(decoded: str) -> tuple[str, ...]:
    segments: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                raise HTTPError(400, "path climbs above the root")
            segments.pop()
            continue
        segments.append(segment)
    return tuple(segments)
