"""Range requests (RFC 9110 §14), decided over plain data.

``evaluate_range`` turns a Range header and a representation size into one of three
answers: serve it whole (200: no Range, one we must ignore, an empty file, or a range set
that would cost more than the file), serve parts (206), or refuse (416). Syntax errors are
ignored rather than refused, as RFC 9110 §14.2 allows and browsers expect. Overlapping or
nearby ranges are merged so a response is never much larger than the file.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from ..message.response import ByteRange
from .conditional import Validators, parse_http_date

MAX_RANGES = 64  # more range-specs than this: the request is served whole
PART_OVERHEAD = 100  # rough bytes of boundary and part headers per multipart part
MAX_DIGITS = 1000  # a longer position is refused as malformed rather than converted

_SPEC = re.compile(rb"[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*")
_UNIT = re.compile(rb"[ \t]*bytes[ \t]*=", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RangeDecision:
    status: int  # 200, 206 or 416
    ranges: tuple[ByteRange, ...] = ()


FULL = RangeDecision(200)
UNSATISFIABLE = RangeDecision(416)

Spec = tuple[int | None, int | None]  # (first, last) or (None, suffix length)


class _Malformed(Exception):
    pass


def _number(digits: bytes) -> int:
    """Exact value (positions are compared, so no capping); absurd lengths are malformed."""
    digits = digits.lstrip(b"0") or b"0"
    if len(digits) > MAX_DIGITS:
        raise _Malformed
    return int(digits)


def parse_range_specs(value: bytes) -> list[Spec] | None:
    """The range-specs of a ``bytes=`` Range value, or None when it must be ignored."""
    unit = _UNIT.match(value)
    if unit is None:
        return None
    try:
        return _specs(value[unit.end() :])
    except _Malformed:
        return None


def _specs(value: bytes) -> list[Spec] | None:
    specs: list[Spec] = []
    for element in value.split(b","):
        if not element.strip(b" \t"):
            continue  # empty list elements are allowed (RFC 9110 §5.6.1)
        match = _SPEC.fullmatch(element)
        if match is None:
            return None
        first, last = match.groups()
        if not first and not last:
            return None
        if not first:
            specs.append((None, _number(last)))
            continue
        start = _number(first)
        end = _number(last) if last else None
        if end is not None and end < start:
            return None
        specs.append((start, end))
    return specs or None


def _satisfiable(spec: Spec, size: int) -> ByteRange | None:
    first, last = spec
    if first is None:
        suffix = last or 0
        return ByteRange(max(0, size - suffix), size - 1) if suffix else None
    if first >= size:
        return None
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def coalesce(ranges: Sequence[ByteRange], gap: int = PART_OVERHEAD) -> list[ByteRange]:
    """Sort and merge ranges that overlap or lie closer than a part's overhead."""
    merged: list[ByteRange] = []
    for current in sorted(ranges, key=lambda r: r.start):
        if merged and current.start <= merged[-1].end + 1 + gap:
            last = merged[-1]
            merged[-1] = ByteRange(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return merged


def evaluate_range(value: bytes | None, size: int) -> RangeDecision:
    """200 (whole), 206 (these ranges) or 416 for a Range header against ``size`` bytes."""
    if value is None or size == 0:
        return FULL
    specs = parse_range_specs(value)
    if specs is None or len(specs) > MAX_RANGES:
        return FULL
    ranges = [r for r in (_satisfiable(spec, size) for spec in specs) if r is not None]
    if not ranges:
        return UNSATISFIABLE
    if len(ranges) > 1:
        ranges = coalesce(ranges)
        cost = sum(r.length for r in ranges) + PART_OVERHEAD * len(ranges)
        if len(ranges) > 1 and cost > size:
            return FULL
    return RangeDecision(206, tuple(ranges))


def if_range_allows(value: bytes, validators: Validators) -> bool:
    """§13.1.5: a strong ETag match or an exact Last-Modified date; anything else: send all."""
    value = value.strip()
    if value.startswith(b"W/"):
        return False
    if value.startswith(b'"'):
        return validators.etag is not None and value == validators.etag
    date = parse_http_date(value)
    return date is not None and date == validators.last_modified


def new_boundary() -> str:
    return secrets.token_hex(16)


def multipart_segments(
    ranges: Sequence[ByteRange], size: int, content_type: str, boundary: str
) -> tuple[list[bytes | ByteRange], int]:
    """The multipart/byteranges body as literal bytes and file ranges, and its length.

    Every part body stays a file range, so it can go out through sendfile.
    """
    segments: list[bytes | ByteRange] = []
    length = 0
    for index, byte_range in enumerate(ranges):
        part_head = (
            ("\r\n" if index else "")
            + f"--{boundary}\r\nContent-Type: {content_type}\r\n"
            + f"Content-Range: {byte_range.content_range(size)}\r\n\r\n"
        ).encode("latin-1")
        segments += [part_head, byte_range]
        length += len(part_head) + byte_range.length
    closing = f"\r\n--{boundary}--\r\n".encode("ascii")
    segments.append(closing)
    return segments, length + len(closing)
