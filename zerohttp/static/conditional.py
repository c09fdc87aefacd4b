"""Conditional requests (RFC 9110 §13), decided over plain data.

``evaluate`` follows the precedence of §13.2.2 exactly (the order Go's ``checkPreconditions``
uses): If-Match, else If-Unmodified-Since; then If-None-Match, else If-Modified-Since.
If-Range, the fifth step, gates Range and lives in ``ranges.py``. Dates are compared in
whole seconds, since that is all an HTTP date can say; an unparseable date is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime

_ETAG = re.compile(rb'[\s,]*(W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|\Z)')
_LIST_END = re.compile(rb"[\s,]*\Z")


@dataclass(frozen=True, slots=True)
class Validators:
    """What a representation can be compared by; either may be absent."""

    etag: bytes | None  # the full quoted strong tag, e.g. b'"5f-1a"'
    last_modified: int | None  # whole seconds since the epoch


def parse_http_date(value: bytes) -> int | None:
    """Seconds since the epoch for an HTTP date (any of RFC 9110's three forms), else None."""
    try:
        parsed = parsedate_to_datetime(value.decode("latin-1"))
        if parsed.tzinfo is None:  # asctime and "-0000" carry no zone: HTTP dates are GMT
            parsed = parsed.replace(tzinfo=timezone.utc)
        return int(parsed.timestamp())
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


def parse_etags(value: bytes) -> list[tuple[bool, bytes]] | None:
    """``[(weak, b'"tag"'), ...]`` for an entity-tag list, or None when malformed.

    ``*`` is handled by the callers, since it means "any current representation".
    """
    tags: list[tuple[bool, bytes]] = []
    position = 0
    value = value.strip()
    while not _LIST_END.match(value, position):
        match = _ETAG.match(value, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags


def _list_matches(value: bytes, etag: bytes | None, *, strong: bool) -> bool:
    """``*`` matches any existing representation; otherwise compare each listed tag, a weak
    one never matching under strong comparison (§8.8.3.2)."""
    if value.strip() == b"*":
        return True
    tags = parse_etags(value)
    if etag is None or not tags:
        return False
    return any(tag == etag and not (strong and weak) for weak, tag in tags)


def if_match_passes(value: bytes, etag: bytes | None) -> bool:
    """§13.1.1: strong comparison."""
    return _list_matches(value, etag, strong=True)


def if_none_match_matches(value: bytes, etag: bytes | None) -> bool:
    """§13.1.2: weak comparison."""
    return _list_matches(value, etag, strong=False)


def evaluate(
    method: bytes,
    if_match: bytes | None,
    if_unmodified_since: bytes | None,
    if_none_match: bytes | None,
    if_modified_since: bytes | None,
    validators: Validators,
) -> int | None:
    """412, 304, or None when the request should proceed (§13.2.2 steps 1-4)."""
    last_modified = validators.last_modified
    # Step 1 / 2
    if if_match is not None:
        if not if_match_passes(if_match, validators.etag):
            return 412
    elif if_unmodified_since is not None and last_modified is not None:
        date = parse_http_date(if_unmodified_since)
        if date is not None and last_modified > date:
            return 412
    # Step 3 / 4
    safe = method in (b"GET", b"HEAD")
    if if_none_match is not None:
        if if_none_match_matches(if_none_match, validators.etag):
            return 304 if safe else 412
    elif if_modified_since is not None and safe and last_modified is not None:
        date = parse_http_date(if_modified_since)
        if date is not None and last_modified <= date:
            return 304
    return None
