"""``_headers``: blocks of a URL pattern line and the indented fields for its responses.

    # a comment
    /secure/*
      X-Frame-Options: DENY
      ! Content-Security-Policy

A line that starts without whitespace is a pattern (``urlpattern``); the indented lines
below it are ``Name: value`` (the value may use the pattern's ``:name`` and ``:splat``) or
``! Name``, which removes what an earlier block (or the server) set. Names are tokens and
values pass the same check as every header setting (``head_values``). The fields that
frame the message are zerohttp's own and no rule sets or removes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..head_values import FIELD_NAME, FIELD_VALUE, head_value_problem
from ..urlpattern import Template, UrlPattern, compile_pattern, compile_template
from .errors import RuleSyntaxError

#: written by zerohttp for every response (framing, validators, the connection's own lines)
RESERVED_FIELDS = frozenset(
    {
        "content-length",
        "content-range",
        "transfer-encoding",
        "connection",
        "date",
        "etag",
        "last-modified",
        "server",
    }
)


@dataclass(frozen=True, slots=True)
class HeaderLine:
    name: str
    value: Template | None  # None: ``! Name``, remove it
    line: int


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    pattern: UrlPattern
    fields: tuple[HeaderLine, ...]
    line: int


def reserved_problem(name: str) -> str | None:
    """Why a rule cannot touch field ``name``, or None."""
    if name.lower() in RESERVED_FIELDS:
        return "zerohttp sets this field itself: no rule can set or remove it"
    return None


def parse_headers(text: str, source: str) -> tuple[HeaderBlock, ...]:
    """The blocks of ``text`` in order; RuleSyntaxError names ``source`` and the line."""
    blocks: list[HeaderBlock] = []
    pattern: UrlPattern | None = None
    fields: list[HeaderLine] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            if pattern is not None:
                blocks.append(HeaderBlock(pattern, tuple(fields), start))
            try:
                pattern = compile_pattern(stripped, absolute=True)
            except ValueError as exc:
                raise RuleSyntaxError(source, number, str(exc)) from None
            fields, start = [], number
            continue
        if pattern is None:
            raise RuleSyntaxError(source, number, "an indented field line before any URL pattern")
        fields.append(_field(stripped, pattern, source, number))
    if pattern is not None:
        blocks.append(HeaderBlock(pattern, tuple(fields), start))
    return tuple(blocks)


def _field(stripped: str, pattern: UrlPattern, source: str, number: int) -> HeaderLine:
    if stripped.startswith("!"):
        name, value = stripped[1:].strip(), None
    else:
        name, colon, written = stripped.partition(":")
        if not colon:
            raise RuleSyntaxError(source, number, "expected Name: value or ! Name")
        name, value = name.rstrip(), written.strip()
    problem = head_value_problem(FIELD_NAME, name) or reserved_problem(name)
    if problem is None and value is not None:
        problem = head_value_problem(FIELD_VALUE, value)
    if problem is not None:
        raise RuleSyntaxError(source, number, f"{name!r}: {problem}")
    template = None if value is None else compile_template(value, pattern.names)
    return HeaderLine(name, template, number)
