"""From a chosen file representation and a request to status, header fields and body plan.

Pure: ``plan_response`` reads request headers and the representation's facts and decides
304/412 (``conditional.py``), 206/416 (``ranges.py``) or 200, and the header fields.
The body is a list of literal bytes and file ranges; the caller binds it to the open file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..message.dates import http_date
from ..message.response import ByteRange, RequestHead
from .conditional import Validators, evaluate
from .files import FileInfo
from .ranges import (
    evaluate_range,
    if_range_allows,
    multipart_segments,
    new_boundary,
)

IMMUTABLE = "public, max-age=31536000, immutable"

Segment = bytes | ByteRange


@dataclass(frozen=True, slots=True)
class Representation:
    """One servable version of a resource: a file, its precompressed sibling, or a copy
    zerohttp compressed (``info`` is then the copy's size with the source's mtime)."""

    info: FileInfo
    content_type: str
    encoding: str | None = None  # Content-Encoding of a precompressed sibling or copy
    cache_control: str | None = None
    vary: bool = False  # the choice depended on Accept-Encoding
    now: int | None = None  # seconds; Last-Modified is never later than this (§8.8.2.1)
    level: int | None = None  # a copy zerohttp compressed at this level, not a file on disk
    # derived once (a cached representation answers many conditional requests)
    validators: Validators = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "validators", self._validators())

    def _validators(self) -> Validators:
        info = self.info
        if info.mtime_ns <= 1_000_000_000:  # zeroed by reproducible builds: meaningless
            return Validators(None, None)
        suffix = f"-{self.encoding}" if self.encoding else ""
        if self.level is not None:  # never the ETag of a sibling of the same coding and size
            suffix += f"-z{self.level}"
        etag = f'"{info.mtime_ns:x}-{info.size:x}{suffix}"'.encode("ascii")
        last_modified = info.mtime_ns // 1_000_000_000
        if self.now is not None:
            last_modified = min(last_modified, self.now)
        return Validators(etag, last_modified)


Fields = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Plan:
    status: int
    fields: Fields
    segments: tuple[Segment, ...] = ()  # no file body: 304, or an error that brings its own


def whole_file(size: int) -> tuple[Segment, ...]:
    return (ByteRange(0, size - 1),) if size else ()


def validator_fields(rep: Representation, validators: Validators) -> Fields:
    """The fields a 304 must repeat (RFC 9110 §15.4.5), shared with 200 and 206."""
    fields: Fields = []
    if validators.last_modified is not None:
        fields.append(("Last-Modified", http_date(validators.last_modified)))
    if validators.etag is not None:
        fields.append(("ETag", validators.etag.decode("ascii")))
    if rep.cache_control:
        fields.append(("Cache-Control", rep.cache_control))
    if rep.vary:
        fields.append(("Vary", "Accept-Encoding"))
    return fields


def _entity_fields(rep: Representation) -> Fields:
    fields = [("Accept-Ranges", "bytes"), ("X-Content-Type-Options", "nosniff")]
    if rep.encoding:
        fields.append(("Content-Encoding", rep.encoding))
    return fields


def precondition(request: RequestHead, rep: Representation) -> int | None:
    """304 or 412 when ``request``'s conditions decide the answer, else None (RFC 9110
    §13.2.2 steps 1-4). ``plan_response``'s first step, on its own for a cache that keeps
    the 304's fields rendered."""
    return evaluate(
        request.method,
        request.header(b"if-match"),
        request.header(b"if-unmodified-since"),
        request.header(b"if-none-match"),
        request.header(b"if-modified-since"),
        rep.validators,
    )


def plan_response(request: RequestHead, rep: Representation) -> Plan:
    """304, 412, 416, 206 or 200 for ``request`` against ``rep``."""
    return plan_after(request, rep, precondition(request, rep))


def plan_after(request: RequestHead, rep: Representation, status: int | None) -> Plan:
    """``plan_response`` once ``precondition`` has given ``status``."""
    validators = rep.validators
    if status == 304:
        return Plan(304, validator_fields(rep, validators))
    if status == 412:
        return Plan(412, [])
    size = rep.info.size
    # GET is the only method with range semantics (RFC 9110 §14.2); HEAD mirrors GET.
    range_value = request.header(b"range") if request.method in (b"GET", b"HEAD") else None
    if range_value is not None:
        if_range = request.header(b"if-range")
        if if_range is not None and not if_range_allows(if_range, validators):
            range_value = None
    decision = evaluate_range(range_value, size)
    if decision.status == 416:  # the body is our error text: no Content-Encoding
        unsatisfied = [("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")]
        return Plan(416, unsatisfied + validator_fields(rep, validators))
    common = validator_fields(rep, validators) + _entity_fields(rep)
    if decision.status == 206 and len(decision.ranges) == 1:
        (part,) = decision.ranges
        fields = [
            ("Content-Type", rep.content_type),
            ("Content-Length", str(part.length)),
            ("Content-Range", part.content_range(size)),
        ]
        return Plan(206, fields + common, (part,))
    if decision.status == 206:
        boundary = new_boundary()
        segments, length = multipart_segments(decision.ranges, size, rep.content_type, boundary)
        fields = [
            ("Content-Type", f"multipart/byteranges; boundary={boundary}"),
            ("Content-Length", str(length)),
        ]
        return Plan(206, fields + common, tuple(segments))
    fields = [("Content-Type", rep.content_type), ("Content-Length", str(size))]
    return Plan(200, fields + common, whole_file(size))
