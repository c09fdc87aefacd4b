"""URL patterns and templates as Cloudflare Pages' ``_headers`` and ``_redirects`` write them.

``/blog/:slug/*`` : a literal path where ``:name`` (a letter, then letters, digits or
``_``) stands for one path segment and ``*`` (the splat, at most one) for any run of
characters, slashes included. The splat is captured as ``splat``, each ``:name`` under its
name. ``https://:project.pages.dev/*`` (``_headers`` only) also matches the request's host,
where a placeholder stops at a dot; the scheme and any port of the request are ignored.

A pattern is compiled once into a regular expression, matched whole against the decoded,
normalised request path. A template (a redirect's ``TO``, a header value) names captures
the same way and is filled with them percent-encoded, so what a request puts in a path
never reaches a head as anything but printable ASCII.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

_PIECE = re.compile(r"(\*)|:([A-Za-z]\w*)", re.ASCII)
_PORT = re.compile(r":[0-9]")
ABSOLUTE = "https://"
# what a capture keeps unescaped when filled into a template: RFC 3986 pchar and "/"
_CAPTURE_SAFE = "!$&'()*+,;=:@-._~/"


@dataclass(frozen=True, slots=True)
class UrlPattern:
    text: str
    regex: re.Pattern[str]
    names: frozenset[str]  # the captures: placeholder names, and "splat"
    prefix: str  # the literal start of the path: a cheap test before the regex
    host: re.Pattern[str] | None = None  # an absolute pattern's host

    @property
    def dynamic(self) -> bool:
        return bool(self.names)

    def match(self, path: str, host: str | None = None) -> dict[str, str] | None:
        """The captured ``splat`` and placeholders when ``path`` (and ``host``, for an
        absolute pattern) match, else None."""
        if not path.startswith(self.prefix):
            return None
        captures: dict[str, str] = {}
        if self.host is not None:
            if host is None:
                return None
            found_host = self.host.fullmatch(host)
            if found_host is None:
                return None
            captures = found_host.groupdict()
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        captures.update(found.groupdict())
        return captures


def compile_pattern(text: str, *, absolute: bool = False) -> UrlPattern:
    """``text`` compiled; ValueError says why it is not a pattern. ``absolute`` allows
    ``https://HOST/PATH`` (``_headers``)."""
    host_regex = None
    names: set[str] = set()
    path = text
    if absolute and text.startswith(ABSOLUTE):
        host, slash, rest = text[len(ABSOLUTE) :].partition("/")
        if not host:
            raise ValueError(f"{text!r}: an absolute URL pattern names a host")
        if _PORT.search(host):
            raise ValueError(f"{text!r}: a port cannot be matched (any port matches)")
        host_regex = re.compile(_regex(host.lower(), "[^./]+", names, text), re.DOTALL)
        path = slash + rest if slash else "/"
    elif "://" in text:
        allowed = "an absolute URL pattern begins with https://" if absolute else "a path"
        raise ValueError(f"{text!r}: expected {allowed}")
    if not path.startswith("/"):
        raise ValueError(f"{text!r}: a URL pattern starts with /")
    regex = re.compile(_regex(path, "[^/]+", names, text), re.DOTALL)
    first = _PIECE.search(path)
    prefix = unquote(path[: first.start()] if first else path)
    return UrlPattern(text, regex, frozenset(names), prefix, host_regex)


def _regex(text: str, placeholder: str, names: set[str], whole: str) -> str:
    """The regular expression for ``text``, whose captures are added to ``names``."""
    parts: list[str] = []
    position = 0
    for piece in _PIECE.finditer(text):
        parts.append(re.escape(unquote(text[position : piece.start()])))
        position = piece.end()
        name = "splat" if piece.group(1) else piece.group(2)
        if name in names:
            what = "only one * (splat)" if name == "splat" else f"placeholder :{name} once"
            raise ValueError(f"{whole!r}: a pattern can use {what}")
        if name == "splat" and piece.group(2):
            raise ValueError(f"{whole!r}: :splat names what * matches; use *")
        if name == "splat" and placeholder != "[^/]+":
            raise ValueError(f"{whole!r}: * can only be used in the path")
        names.add(name)
        parts.append("(?P<splat>.*)" if name == "splat" else f"(?P<{name}>{placeholder})")
    parts.append(re.escape(unquote(text[position:])))
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Template:
    """A ``TO`` or a header value: literal pieces with the names of captures between them
    (``pieces[1::2]`` are names)."""

    pieces: tuple[str, ...]

    @property
    def literal(self) -> str | None:
        """The text when it uses no capture."""
        return self.pieces[0] if len(self.pieces) == 1 else None

    def fill(self, captures: Mapping[str, str]) -> str:
        """The text with each capture percent-encoded in its place."""
        pieces = self.pieces
        if len(pieces) == 1:
            return pieces[0]
        out = [pieces[0]]
        for index in range(1, len(pieces), 2):
            out.append(quote(captures.get(pieces[index], ""), safe=_CAPTURE_SAFE))
            out.append(pieces[index + 1])
        return "".join(out)


def compile_template(text: str, names: frozenset[str] | None) -> Template:
    """``text`` with each ``:name`` of ``names`` (a pattern's captures; None: every one) to
    be filled in; any other ``:word`` stays as written (``https:``, ``'self'``)."""
    pieces: list[str] = []
    position = 0
    for piece in _PIECE.finditer(text):
        name = piece.group(2)
        if name is None or (names is not None and name not in names):
            continue
        pieces.append(text[position : piece.start()])
        pieces.append(name)
        position = piece.end()
    pieces.append(text[position:])
    return Template(tuple(pieces))
