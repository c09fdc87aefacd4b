"""Content-coding negotiation for precompressed siblings (RFC 9110 §12.5.3), over plain data."""

from __future__ import annotations

import re
from collections.abc import Sequence

# File-name suffix of the precompressed sibling for each coding zerohttp knows.
SIBLING_SUFFIXES = {"br": ".br", "zstd": ".zst", "gzip": ".gz"}
DEFAULT_PREFERENCE = ("br", "zstd", "gzip")

_ELEMENT = re.compile(
    r"[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*(?:;[ \t]*[qQ][ \t]*=[ \t]*([0-9.]{1,5}))?[ \t]*"
)


def _qvalue(text: str | None) -> float | None:
    if text is None:
        return 1.0
    try:
        q = float(text)
    except ValueError:
        return None
    return q if 0.0 <= q <= 1.0 else None


def parse_accept_encoding(value: bytes) -> dict[str, float]:
    """``{coding: q}`` (lower-case); malformed elements are skipped, the first mention wins."""
    accepted: dict[str, float] = {}
    for element in value.decode("latin-1").split(","):
        match = _ELEMENT.fullmatch(element)
        if match is None:
            continue
        q = _qvalue(match.group(2))
        if q is not None:
            accepted.setdefault(match.group(1).lower(), q)
    return accepted


def choose_encoding(accepted: dict[str, float], available: Sequence[str]) -> str | None:
    """The coding to send among ``available`` (in server preference order), or None.

    Highest q wins, ties go to the server's order; ``*`` stands for codings not named;
    q=0 forbids. Identity wins only when the client explicitly rates it higher.
    """
    best: str | None = None
    best_q = 0.0
    for coding in available:
        q = accepted.get(coding, accepted.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    if best is not None and accepted.get("identity", 0.0) > best_q:
        return None
    return best
