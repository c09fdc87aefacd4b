"""URL path patterns as Cloudflare Pages' ``_headers`` and ``_redirects`` write them.

``/blog/:slug/*`` : a literal path where ``:name`` stands for one path segment and ``*``
(the splat) for any run of characters, slashes included. The first ``*`` is captured as
``splat``; each ``:name`` under its name. A pattern is compiled once into a regular
expression and matched whole against a decoded request path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PIECE = re.compile(r"(\*)|:([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class UrlPattern:
    text: str
    regex: re.Pattern[str]

    def match(self, path: str) -> dict[str, str] | None:
        """The captured ``splat`` and placeholders when ``path`` matches, else None."""
        found = self.regex.fullmatch(path)
        return None if found is None else found.groupdict()


def compile_pattern(text: str) -> UrlPattern:
    """``text`` compiled; ValueError says why it is not a pattern."""
    if not text.startswith("/"):
        raise ValueError(f"{text!r}: a URL pattern starts with /")
    parts: list[str] = []
    names: set[str] = set()
    position = 0
    for piece in _PIECE.finditer(text):
        parts.append(re.escape(text[position : piece.start()]))
        position = piece.end()
        if piece.group(1):
            parts.append("(?P<splat>.*)" if "splat" not in names else ".*")
            names.add("splat")
            continue
        name = piece.group(2)
        if name in names:
            raise ValueError(f"{text!r}: placeholder :{name} is used twice")
        names.add(name)
        parts.append(f"(?P<{name}>[^/]+)")
    parts.append(re.escape(text[position:]))
    return UrlPattern(text, re.compile("".join(parts), re.DOTALL))
