"""The site's rules compiled for matching, and what they decide for one request path.

``RuleSet.decide`` is pure over the rules and a request path: the redirect or rewrite that
wins (the first matching line), and the header fields for the response (every matching
block, in order). A path's decision is kept (a bounded memo keyed by the raw path), so a
request for a path seen before costs one dictionary lookup; the redirect lines are indexed
by their literal path, with only the dynamic ones scanned, each behind a prefix test.

The fields a decision sets replace the response's own fields of the same name (so a rule's
Cache-Control replaces ``--cache-control``'s); its ``! Name`` removes one. A response from
the open-file cache carries its pre-rendered head; the merged head is rendered once per
source head and kept, so a cached file with rules stays a cached write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ...errors import HTTPError
from ...message.response import Fields, FieldsChange, Response, error_response
from ..paths import encode_query, parse_target
from .headers_file import HeaderBlock
from .redirects_file import REWRITE, RedirectRule

MEMO_PATHS = 4096  # paths whose decision is kept; the memo starts again when full
MEMO_HEADS = 8  # merged renderings kept per decision (a file's 200 and 304 heads, ...)


@dataclass(slots=True, eq=False)
class FieldRules:
    """Fields to set (``added``) and names to remove first (``names``, lower-case)."""

    names: frozenset[str]
    added: Fields
    _change: FieldsChange = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._change = FieldsChange(self.merge, MEMO_HEADS)

    def merge(self, fields: Fields) -> Fields:
        names = self.names
        return tuple(f for f in fields if f[0].lower() not in names) + self.added

    def apply(self, response: Response) -> None:
        """``response`` with the fields; its pre-rendered head becomes the merged one's."""
        self._change.apply(response)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules say for one path: a redirect (``status`` 3xx, ``target`` its
    Location), a rewrite (200, ``target`` the path served), or neither (0); and the fields."""

    fields: FieldRules | None
    status: int = 0
    target: str = ""

    def redirect(self, query: bytes) -> Response:
        response = error_response(self.status, [("Location", with_query(self.target, query))])
        if self.fields is not None:
            self.fields.apply(response)
        return response

    def rewritten(self, query: bytes) -> bytes:
        """The request target served for a rewrite (TO's query, then the request's)."""
        return with_query(self.target.partition("#")[0], query).encode("ascii")


def with_query(target: str, query: bytes) -> str:
    """``target`` (a path or URL, perhaps with its own query and fragment) with the
    request's query added to its own, before any fragment."""
    if not query:
        return target
    base, mark, fragment = target.partition("#")
    joiner = "&" if "?" in base else "?"
    return base + joiner + encode_query(query) + mark + fragment


def request_host(value: bytes | None) -> str | None:
    """The Host header's name, lower-case, without a port."""
    if not value:
        return None
    host = value.decode("latin-1").lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


class RuleSet:
    """Header blocks and redirect lines, in the order they apply, plus the fields every
    response gets (``--header``); compiled for ``decide``."""

    def __init__(
        self,
        blocks: Sequence[HeaderBlock],
        redirects: Sequence[RedirectRule],
        always: Fields = (),
    ) -> None:
        self.blocks = tuple(blocks)
        self.redirects = tuple(redirects)
        self.empty = not (self.blocks or self.redirects or always)
        self.uses_host = any(block.pattern.host is not None for block in self.blocks)
        self._fields: dict[tuple[frozenset[str], Fields], FieldRules] = {}
        self.always = self._interned(_ops(always)) if always else None
        self.literal: dict[str, int] = {}  # a static FROM -> its first line's index
        self.dynamic: list[tuple[int, RedirectRule]] = []
        for index, rule in enumerate(self.redirects):
            if rule.source.dynamic:
                self.dynamic.append((index, rule))
            else:
                self.literal.setdefault(rule.source.prefix, index)
        self.memo: dict[object, Decision] = {}

    def decision(self, raw_path: bytes, host: bytes | None) -> Decision:
        """``decide``, kept per path (and host, when a pattern names one)."""
        key: object = (raw_path, host) if self.uses_host else raw_path
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= MEMO_PATHS:
                self.memo.clear()
            found = self.memo[key] = self.decide(raw_path, request_host(host))
        return found

    def decide(self, raw_path: bytes, host: str | None = None) -> Decision:
        try:
            path = parse_target(raw_path).matched
        except HTTPError:  # the static handler answers 400
            return Decision(self.always)
        rule, captures = self._redirect(path)
        if rule is not None and not rule.rewrite:
            return Decision(self.always, rule.status, rule.to.fill(captures))
        fields = self._header_fields(path, host)
        if rule is not None:
            return Decision(fields, REWRITE, rule.to.fill(captures))
        return Decision(fields)

    def _redirect(self, path: str) -> tuple[RedirectRule | None, dict[str, str]]:
        """The first redirect line whose FROM matches, and its captures."""
        first = self.literal.get(path, len(self.redirects))
        for index, rule in self.dynamic:
            if index > first:
                break
            captures = rule.source.match(path)
            if captures is not None:
                return rule, captures
        if first < len(self.redirects):
            return self.redirects[first], {}
        return None, {}

    def _header_fields(self, path: str, host: str | None) -> FieldRules | None:
        ops = dict(self.always_ops)
        for block in self.blocks:
            captures = block.pattern.match(path, host)
            if captures is None:
                continue
            for line in block.fields:
                key = line.name.lower()
                if line.value is None:
                    ops[key] = (line.name, None)
                    continue
                value = line.value.fill(captures)
                earlier = ops.get(key)
                if earlier is not None and earlier[1] is not None:
                    ops[key] = (earlier[0], f"{earlier[1]}, {value}")
                else:
                    ops[key] = (line.name, value)
        return self._interned(ops) if ops else None

    @property
    def always_ops(self) -> dict[str, tuple[str, str | None]]:
        if self.always is None:
            return {}
        return {name.lower(): (name, value) for name, value in self.always.added}

    def _interned(self, ops: dict[str, tuple[str, str | None]]) -> FieldRules:
        """One ``FieldRules`` per distinct set of fields, so paths under one block share
        the merged heads."""
        names = frozenset(ops)
        added = tuple((name, value) for name, value in ops.values() if value is not None)
        found = self._fields.get((names, added))
        if found is None:
            found = self._fields[(names, added)] = FieldRules(names, added)
        return found


def _ops(fields: Fields) -> dict[str, tuple[str, str | None]]:
    """``--header`` fields as operations: the same name twice is joined, as in a block."""
    ops: dict[str, tuple[str, str | None]] = {}
    for name, value in fields:
        earlier = ops.get(name.lower())
        if earlier is not None and earlier[1] is not None:
            value = f"{earlier[1]}, {value}"
            name = earlier[0]
        ops[name.lower()] = (name, value)
    return ops
