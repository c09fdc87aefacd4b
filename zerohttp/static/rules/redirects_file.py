"""``_redirects``: one ``FROM TO [STATUS]`` rule a line, the first match winning.

``FROM`` is a path pattern (``urlpattern``). ``TO`` is a path or an absolute URL, and may
use ``:splat`` and FROM's placeholders. STATUS is 301 (the default, as Netlify's), 302,
303, 307 or 308, or 200: an internal rewrite that serves TO's file under FROM's URL, which
must stay a visible path of this site. ``#`` starts a comment, on its own line or after
the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ...errors import HTTPError
from ..paths import RULES_FILES, parse_target
from ..urlpattern import Template, UrlPattern, compile_pattern, compile_template
from .errors import RuleSyntaxError

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
REWRITE = 200
DEFAULT_STATUS = 301
# what a TO keeps as written: RFC 3986's reserved and unreserved characters, existing
# escapes, and ":" for the placeholders; anything else (non-ASCII, a control) is encoded
_TO_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


@dataclass(frozen=True, slots=True)
class RedirectRule:
    source: UrlPattern
    to: Template
    status: int
    line: int

    @property
    def rewrite(self) -> bool:
        return self.status == REWRITE


def parse_redirects(text: str, source: str) -> tuple[RedirectRule, ...]:
    """The rules of ``text`` in order; RuleSyntaxError names ``source`` and the line."""
    rules: list[RedirectRule] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        comment = next((i for i, word in enumerate(words) if word.startswith("#")), len(words))
        words = words[:comment]
        if not words:
            continue
        try:
            rules.append(_rule(words, number))
        except ValueError as exc:
            raise RuleSyntaxError(source, number, str(exc)) from None
    return tuple(rules)


def _rule(words: list[str], number: int) -> RedirectRule:
    if len(words) not in (2, 3):
        raise ValueError("expected FROM TO [STATUS] (conditions are not supported)")
    written_from, written_to = words[0], words[1]
    status = _status(words[2]) if len(words) == 3 else DEFAULT_STATUS
    if "?" in written_from:
        raise ValueError(f"{written_from!r}: FROM matches the path; a query is not matched")
    pattern = compile_pattern(written_from)
    to = quote(written_to, safe=_TO_SAFE)
    if status == REWRITE:
        _check_rewrite(to)
    elif not to.startswith(("/", "http://", "https://")):
        raise ValueError(f"{written_to!r}: TO is a path (/...) or an absolute http(s) URL")
    return RedirectRule(pattern, compile_template(to, pattern.names), status, number)


def _status(word: str) -> int:
    if not word.isdigit() or int(word) not in (*REDIRECT_STATUSES, REWRITE):
        raise ValueError(f"status {word!r}: expected 301, 302, 303, 307, 308 or 200 (rewrite)")
    return int(word)


def _check_rewrite(to: str) -> None:
    """A rewrite serves a file below ROOT that could be requested: never above it, never a
    dotfile or a rules file. (The static handler checks the filled-in target again.)"""
    if not to.startswith("/"):
        raise ValueError(f"{to!r}: a rewrite (200) serves a path of this site, not a URL")
    sample = compile_template(to, None).fill({})
    try:
        path = parse_target(sample.partition("#")[0].encode("ascii"))
    except HTTPError as exc:
        raise ValueError(f"{to!r}: a rewrite cannot serve it ({exc.reason})") from None
    if ".." in to.split("?")[0].split("/") or path.hidden or path.relative in RULES_FILES:
        raise ValueError(f"{to!r}: a rewrite cannot leave ROOT or serve a hidden or rules file")
