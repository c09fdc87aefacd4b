"""Range requests (RFC 9110 §14): range-spec parsing, 200/206/416, If-Range, multipart."""

from __future__ import annotations

import email
import email.message
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.message.dates import http_date
from zerohttp.message.response import RequestHead
from zerohttp.static.conditional import Validators
from zerohttp.static.files import FileInfo
from zerohttp.static.ranges import (
    FULL,
    MAX_DIGITS,
    MAX_RANGES,
    PART_OVERHEAD,
    UNSATISFIABLE,
    ByteRange,
    RangeDecision,
    Spec,
    coalesce,
    evaluate_range,
    if_range_allows,
    multipart_segments,
    new_boundary,
    parse_range_specs,
)
from zerohttp.static.representation import Representation, plan_response

SIZE = 10_000
ETAG = b'"5f-1a"'
LM = 784111777
DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"
VALIDATORS = Validators(ETAG, LM)
HUGE_20 = b"99999999999999999999"  # 20 digits: larger than any file


def partial(*ranges: tuple[int, int]) -> RangeDecision:
    return RangeDecision(206, tuple(ByteRange(s, e) for s, e in ranges))


# --- ByteRange -----------------------------------------------------------------------------------


def test_byte_range_length_and_content_range() -> None:
    assert ByteRange(0, 0).length == 1
    assert ByteRange(5, 9).length == 5
    assert ByteRange(0, 499).content_range(SIZE) == "bytes 0-499/10000"
    assert ByteRange(9999, 9999).content_range(SIZE) == "bytes 9999-9999/10000"


# --- parse_range_specs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"bytes=0-499", [(0, 499)]),
        (b"bytes=500-", [(500, None)]),
        (b"bytes=-500", [(None, 500)]),
        (b"bytes=-0", [(None, 0)]),
        (b"bytes=0-0,-1,5-", [(0, 0), (None, 1), (5, None)]),
        (b"BYTES=1-2", [(1, 2)]),
        (b"Bytes=1-2", [(1, 2)]),
        (b"bytes=7-7", [(7, 7)]),
        (b"bytes=007-010", [(7, 10)]),
        (b"bytes=1-2, 3-4", [(1, 2), (3, 4)]),
        (b"bytes=1-2 ,\t3-4", [(1, 2), (3, 4)]),
        (b"bytes=,1-2,,", [(1, 2)]),
        (b"bytes=0-" + HUGE_20, [(0, int(HUGE_20))]),
        (b"bytes=-" + HUGE_20, [(None, int(HUGE_20))]),
    ],
)
def test_parse_range_specs(value: bytes, expected: list[Spec]) -> None:
    assert parse_range_specs(value) == expected


INVALID = [
    b"bytes=5-1",
    b"bytes=abc",
    b"bytes=",
    b"bytes=,",
    b"items=0-1",
    b"bytes=--1",
    b"bytes=1-2-3",
    b"bytes=-",
    b"bytes=1",
    b"bytes=+1-2",
    b"bytes=1-+2",
    b"bytes=0x1-2",
    b"bytes=0-1,abc",
    b"bytes=0-1,5-1",
    b"bytes=-1-",
    b"bytes 0-1",
    b"bytes:0-1",
    b"bytes",
    b"0-1",
    b"",
    b"bytes=\xd9\xa1-2",  # a non-ASCII digit
]


@pytest.mark.parametrize("value", INVALID)
def test_parse_range_specs_invalid(value: bytes) -> None:
    assert parse_range_specs(value) is None


# --- evaluate_range -----------------------------------------------------------------------------

RANGE_CASES: list[tuple[str, bytes | None, int, RangeDecision]] = [
    ("absent", None, SIZE, FULL),
    # single ranges
    ("first-500", b"bytes=0-499", SIZE, partial((0, 499))),
    ("second-500", b"bytes=500-999", SIZE, partial((500, 999))),
    ("first-byte", b"bytes=0-0", SIZE, partial((0, 0))),
    ("last-byte", b"bytes=9999-9999", SIZE, partial((9999, 9999))),
    ("unit-upper", b"BYTES=0-0", SIZE, partial((0, 0))),
    ("unit-mixed", b"ByTeS=0-0", SIZE, partial((0, 0))),
    ("open", b"bytes=9500-", SIZE, partial((9500, 9999))),
    ("open-from-0", b"bytes=0-", SIZE, partial((0, 9999))),
    ("open-last-byte", b"bytes=9999-", SIZE, partial((9999, 9999))),
    ("suffix", b"bytes=-500", SIZE, partial((9500, 9999))),
    ("suffix-1", b"bytes=-1", SIZE, partial((9999, 9999))),
    ("suffix-exact", b"bytes=-10000", SIZE, partial((0, 9999))),
    ("suffix-longer", b"bytes=-20000", SIZE, partial((0, 9999))),
    ("suffix-huge", b"bytes=-" + HUGE_20, SIZE, partial((0, 9999))),
    ("end-clamped", b"bytes=0-20000", SIZE, partial((0, 9999))),
    ("end-clamped-exact", b"bytes=5-10000", SIZE, partial((5, 9999))),
    ("end-huge", b"bytes=0-" + HUGE_20, SIZE, partial((0, 9999))),
    ("spaces", b"bytes= 0-1 ", SIZE, partial((0, 1))),
    ("empty-elements", b"bytes=,0-1,,", SIZE, partial((0, 1))),
    ("size-1-open", b"bytes=0-", 1, partial((0, 0))),
    ("size-1-suffix", b"bytes=-5", 1, partial((0, 0))),
    # unsatisfiable
    ("suffix-0", b"bytes=-0", SIZE, UNSATISFIABLE),
    ("start-at-size", b"bytes=10000-", SIZE, UNSATISFIABLE),
    ("start-at-size-closed", b"bytes=10000-10005", SIZE, UNSATISFIABLE),
    ("start-beyond", b"bytes=20000-30000", SIZE, UNSATISFIABLE),
    ("start-huge", b"bytes=" + HUGE_20 + b"-", SIZE, UNSATISFIABLE),
    ("all-unsatisfiable", b"bytes=-0,10000-,12000-13000", SIZE, UNSATISFIABLE),
    ("size-1-start-1", b"bytes=1-", 1, UNSATISFIABLE),
    # unsatisfiable specs are dropped when another is satisfiable
    ("one-satisfiable-a", b"bytes=-0,0-0", SIZE, partial((0, 0))),
    ("one-satisfiable-b", b"bytes=10000-,0-1", SIZE, partial((0, 1))),
    ("one-satisfiable-c", b"bytes=20000-,-5,-0", SIZE, partial((9995, 9999))),
    # empty file: always whole
    ("empty-file-first", b"bytes=0-0", 0, FULL),
    ("empty-file-open", b"bytes=0-", 0, FULL),
    ("empty-file-suffix", b"bytes=-1", 0, FULL),
    ("empty-file-suffix-0", b"bytes=-0", 0, FULL),
    ("empty-file-beyond", b"bytes=5-9", 0, FULL),
    ("empty-file-invalid", b"bytes=abc", 0, FULL),
    # several ranges: sorted, coalesced
    ("two-far", b"bytes=0-9,5000-5009", SIZE, partial((0, 9), (5000, 5009))),
    ("two-far-unsorted", b"bytes=5000-5009,0-9", SIZE, partial((0, 9), (5000, 5009))),
    (
        "three-unsorted",
        b"bytes=-10,5000-5009,0-9",
        SIZE,
        partial((0, 9), (5000, 5009), (9990, 9999)),
    ),
    ("overlapping", b"bytes=0-99,50-149", SIZE, partial((0, 149))),
    ("overlapping-unsorted", b"bytes=50-149,0-99", SIZE, partial((0, 149))),
    ("contained", b"bytes=0-999,10-20", SIZE, partial((0, 999))),
    ("duplicate", b"bytes=10-20,10-20", SIZE, partial((10, 20))),
    ("adjacent", b"bytes=0-9,10-19", SIZE, partial((0, 19))),
    ("gap-of-overhead-merges", b"bytes=0-0,101-101", SIZE, partial((0, 101))),
    ("gap-above-overhead-splits", b"bytes=0-0,102-102", SIZE, partial((0, 0), (102, 102))),
    ("suffix-and-open-overlap", b"bytes=-100,9950-", SIZE, partial((9900, 9999))),
    ("chain-merges", b"bytes=0-9,50-59,100-109,5000-5009", SIZE, partial((0, 109), (5000, 5009))),
    (
        "unsatisfiable-dropped-before-merge",
        b"bytes=0-9,20000-,5000-5009",
        SIZE,
        partial((0, 9), (5000, 5009)),
    ),
    # multipart would cost more than the file (estimate: lengths + PART_OVERHEAD per part)
    ("cost-equal-size-is-206", b"bytes=0-9,200-209", 220, partial((0, 9), (200, 209))),
    ("cost-above-size-is-200", b"bytes=0-9,200-209", 219, FULL),
    ("cost-small-file", b"bytes=0-9,200-209", 210, FULL),
    # after coalescing one range is left: a single 206 even for a small file
    ("merged-to-one-small-file", b"bytes=0-1,3-4", 5, partial((0, 4))),
    ("merged-to-one-overlap", b"bytes=0-3,2-", 5, partial((0, 4))),
    # syntactically invalid: ignored
    *[(f"invalid-{v!r}", v, SIZE, FULL) for v in INVALID],
]


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in RANGE_CASES],
)
def test_evaluate_range(value: bytes | None, size: int, expected: RangeDecision) -> None:
    assert evaluate_range(value, size) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # last-pos < first-pos: invalid, the header must be ignored (RFC 9110 §14.1.1)
        (b"bytes=200000000000000000000-100000000000000000000", FULL),
        (b"bytes=10000000000000000000-9999999999999999999", FULL),
        # last-pos > first-pos: valid, but it starts beyond the end
        (b"bytes=9999999999999999999-99999999999999999999", UNSATISFIABLE),
    ],
)
def test_evaluate_range_huge_numbers_keep_their_order(
    value: bytes, expected: RangeDecision
) -> None:
    assert evaluate_range(value, SIZE) == expected


def test_max_ranges() -> None:
    size = 1000 * (MAX_RANGES + 2)
    specs = [f"{1000 * i}-{1000 * i}" for i in range(MAX_RANGES + 1)]
    at_limit = evaluate_range(("bytes=" + ",".join(specs[:MAX_RANGES])).encode(), size)
    assert at_limit == partial(*[(1000 * i, 1000 * i) for i in range(MAX_RANGES)])
    assert evaluate_range(("bytes=" + ",".join(specs)).encode(), size) == FULL


def test_max_ranges_counts_unsatisfiable_specs_too() -> None:
    value = b"bytes=0-0," + b",".join([b"-0"] * MAX_RANGES)
    assert evaluate_range(value, SIZE) == FULL


def test_many_overlapping_specs_are_one_range() -> None:
    value = ("bytes=" + ",".join(f"{i}-{i + 10}" for i in range(MAX_RANGES))).encode()
    assert evaluate_range(value, SIZE) == partial((0, MAX_RANGES - 1 + 10))


# --- coalesce -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ranges", "gap", "expected"),
    [
        ([], PART_OVERHEAD, []),
        ([(5, 9)], PART_OVERHEAD, [(5, 9)]),
        ([(0, 9), (10, 19)], 0, [(0, 19)]),  # adjacent always merges
        ([(0, 9), (11, 19)], 0, [(0, 9), (11, 19)]),
        ([(0, 9), (11, 19)], 1, [(0, 19)]),
        ([(20, 29), (0, 9)], 0, [(0, 9), (20, 29)]),
        ([(0, 100), (10, 20)], 0, [(0, 100)]),
        ([(0, 0), (101, 101)], PART_OVERHEAD, [(0, 101)]),
        ([(0, 0), (102, 102)], PART_OVERHEAD, [(0, 0), (102, 102)]),
        ([(250, 260), (0, 5), (150, 160), (3, 4)], PART_OVERHEAD, [(0, 5), (150, 260)]),
    ],
)
def test_coalesce(ranges: list[tuple[int, int]], gap: int, expected: list[tuple[int, int]]) -> None:
    merged = coalesce([ByteRange(s, e) for s, e in ranges], gap)
    assert merged == [ByteRange(s, e) for s, e in expected]


# --- If-Range -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "validators", "expected"),
    [
        (ETAG, VALIDATORS, True),
        (b" " + ETAG + b" ", VALIDATORS, True),
        (b"W/" + ETAG, VALIDATORS, False),  # weak: never
        (b'"other"', VALIDATORS, False),
        (b'"5F-1A"', VALIDATORS, False),
        (ETAG + b', "other"', VALIDATORS, False),  # a list is not an entity-tag
        (ETAG, Validators(None, LM), False),
        (DATE, VALIDATORS, True),
        (b"Sunday, 06-Nov-94 08:49:37 GMT", VALIDATORS, True),
        (b"Sun Nov  6 08:49:37 1994", VALIDATORS, True),
        (http_date(LM - 1).encode(), VALIDATORS, False),
        (http_date(LM + 1).encode(), VALIDATORS, False),  # only an exact date
        (DATE, Validators(ETAG, None), False),
        (b"garbage", VALIDATORS, False),
        (b"", VALIDATORS, False),
        (b"*", VALIDATORS, False),
    ],
)
def test_if_range_allows(value: bytes, validators: Validators, expected: bool) -> None:
    assert if_range_allows(value, validators) is expected


MTIME_NS = 1_700_000_000_123_456_789
REP = Representation(FileInfo(SIZE, MTIME_NS, 1, 1), "application/octet-stream")
REP_ETAG = f'"{MTIME_NS:x}-{SIZE:x}"'.encode()
REP_DATE = http_date(MTIME_NS // 10**9).encode()


def request(method: bytes = b"GET", **headers: bytes) -> RequestHead:
    fields = tuple((name.replace("_", "-").encode(), value) for name, value in headers.items())
    return RequestHead(method, b"/file.bin", b"1.1", fields)


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        (None, 206),
        (REP_ETAG, 206),
        (REP_DATE, 206),
        (b"W/" + REP_ETAG, 200),
        (b'"something-else"', 200),
        (http_date(MTIME_NS // 10**9 - 1).encode(), 200),
        (http_date(MTIME_NS // 10**9 + 1).encode(), 200),
        (b"garbage", 200),
        (b"", 200),
    ],
)
def test_if_range_gates_the_range(if_range: bytes | None, status: int) -> None:
    headers = {"range": b"bytes=0-99"}
    if if_range is not None:
        headers["if_range"] = if_range
    plan = plan_response(request(**headers), REP)
    assert plan.status == status
    fields = dict(plan.fields)
    if status == 206:
        assert fields["Content-Range"] == "bytes 0-99/10000"
        assert fields["Content-Length"] == "100"
        assert plan.segments == (ByteRange(0, 99),)
    else:
        assert "Content-Range" not in fields
        assert fields["Content-Length"] == str(SIZE)
        assert plan.segments == (ByteRange(0, SIZE - 1),)


def test_if_range_failing_also_skips_416() -> None:
    plan = plan_response(request(range=b"bytes=20000-", if_range=b'"old"'), REP)
    assert plan.status == 200


def test_if_range_without_range_is_ignored() -> None:
    plan = plan_response(request(if_range=b'"old"'), REP)
    assert plan.status == 200
    assert plan.segments == (ByteRange(0, SIZE - 1),)


def _mask_boundary(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(n, re.sub(r"boundary=\w+", "boundary=B", v)) for n, v in fields]


@pytest.mark.parametrize(
    "value", [b"bytes=0-99", b"bytes=-1", b"bytes=20000-", b"bytes=0-9,5000-5009", b"bytes=9-1"]
)
def test_head_with_range_is_like_get(value: bytes) -> None:
    get = plan_response(request(b"GET", range=value), REP)
    head = plan_response(request(b"HEAD", range=value), REP)
    assert head.status == get.status
    assert _mask_boundary(head.fields) == _mask_boundary(get.fields)
    assert len(head.segments) == len(get.segments)


# --- multipart/byteranges -------------------------------------------------------------------------

BUFFER = bytes(range(256)) * 40  # 10240 bytes, every byte value, CR and LF included


def render(segments: list[bytes | ByteRange], buffer: bytes) -> bytes:
    return b"".join(s if isinstance(s, bytes) else buffer[s.start : s.end + 1] for s in segments)


def parse_multipart(body: bytes, boundary: str) -> email.message.Message:
    head = f"Content-Type: multipart/byteranges; boundary={boundary}\r\n\r\n".encode()
    return email.message_from_bytes(head + body)


def test_multipart_segments_exact_bytes() -> None:
    ranges = [ByteRange(0, 9), ByteRange(5000, 5009)]
    segments, length = multipart_segments(ranges, SIZE, "text/plain", "B0UND")
    assert segments == [
        b"--B0UND\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-9/10000\r\n\r\n",
        ByteRange(0, 9),
        b"\r\n--B0UND\r\nContent-Type: text/plain\r\nContent-Range: bytes 5000-5009/10000\r\n\r\n",
        ByteRange(5000, 5009),
        b"\r\n--B0UND--\r\n",
    ]
    assert length == sum(len(s) if isinstance(s, bytes) else s.length for s in segments)
    assert length == 69 + 10 + 77 + 10 + 13


@pytest.mark.parametrize(
    "ranges",
    [
        [(0, 9), (5000, 5009)],
        [(0, 0), (9999, 9999)],
        [(10, 19), (200, 299), (4000, 8191), (10000, 10239)],
        [(13, 13), (100, 10239)],
    ],
)
def test_multipart_parses_with_email(ranges: list[tuple[int, int]]) -> None:
    size = len(BUFFER)
    byte_ranges = [ByteRange(s, e) for s, e in ranges]
    boundary = new_boundary()
    content_type = "application/octet-stream"
    segments, length = multipart_segments(byte_ranges, size, content_type, boundary)
    body = render(segments, BUFFER)
    assert len(body) == length
    assert body.count(f"--{boundary}".encode()) == len(byte_ranges) + 1
    message = parse_multipart(body, boundary)
    assert message.is_multipart()
    assert not message.defects
    parts = message.get_payload()
    assert isinstance(parts, list)
    assert len(parts) == len(byte_ranges)
    for part, byte_range in zip(parts, byte_ranges, strict=True):
        assert part["Content-Type"] == content_type
        assert part["Content-Range"] == f"bytes {byte_range.start}-{byte_range.end}/{size}"
        assert part.get_payload(decode=True) == BUFFER[byte_range.start : byte_range.end + 1]
    assert body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert body.startswith(f"--{boundary}\r\n".encode())


def test_multipart_lines_end_in_crlf() -> None:
    segments, _ = multipart_segments([ByteRange(0, 1), ByteRange(500, 501)], 1000, "x/y", "b")
    for literal in segments:
        if isinstance(literal, bytes):
            assert literal.count(b"\n") == literal.count(b"\r\n")
            assert literal.endswith(b"\r\n")


def test_new_boundary_is_a_fresh_token() -> None:
    first, second = new_boundary(), new_boundary()
    assert first != second
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_multipart_from_plan_response_parses() -> None:
    rep = Representation(FileInfo(len(BUFFER), MTIME_NS, 1, 1), "text/plain; charset=utf-8")
    plan = plan_response(request(range=b"bytes=-10,0-9,5000-5009"), rep)
    assert plan.status == 206
    fields = dict(plan.fields)
    match = re.fullmatch(r"multipart/byteranges; boundary=(\w+)", fields["Content-Type"])
    assert match is not None
    body = render(list(plan.segments), BUFFER)
    assert fields["Content-Length"] == str(len(body))
    parts = parse_multipart(body, match.group(1)).get_payload()
    assert isinstance(parts, list)
    expected = [(0, 9), (5000, 5009), (len(BUFFER) - 10, len(BUFFER) - 1)]
    assert [p["Content-Range"] for p in parts] == [
        f"bytes {s}-{e}/{len(BUFFER)}" for s, e in expected
    ]
    assert [p.get_payload(decode=True) for p in parts] == [BUFFER[s : e + 1] for s, e in expected]
    assert all(p["Content-Type"] == "text/plain; charset=utf-8" for p in parts)


# --- properties ---------------------------------------------------------------------------------

NUMBER = st.integers(min_value=0, max_value=2**41).map(lambda n: str(n).encode()) | st.just(HUGE_20)
SPEC = st.one_of(
    st.tuples(NUMBER, NUMBER).map(lambda t: t[0] + b"-" + t[1]),
    NUMBER.map(lambda n: n + b"-"),
    NUMBER.map(lambda n: b"-" + n),
    st.sampled_from([b"", b"-", b"--1", b" 1 - 2 ", b"a", b"1-2-3"]),
)
RANGE_HEADER = st.one_of(
    st.binary(max_size=60),
    st.lists(SPEC, max_size=MAX_RANGES + 3).map(lambda specs: b"bytes=" + b",".join(specs)),
    st.lists(SPEC, min_size=1, max_size=4).map(lambda specs: b"BYTES = " + b", ".join(specs)),
)
SIZES = st.integers(min_value=0, max_value=2**40) | st.integers(min_value=0, max_value=300)


@given(RANGE_HEADER, SIZES)
def test_property_evaluate_range(value: bytes, size: int) -> None:
    decision = evaluate_range(value, size)
    assert isinstance(decision, RangeDecision)
    assert decision.status in (200, 206, 416)
    if decision.status != 206:
        assert decision.ranges == ()
        return
    assert size > 0
    assert decision.ranges
    previous_end = -1
    for byte_range in decision.ranges:
        assert 0 <= byte_range.start <= byte_range.end < size
        assert byte_range.start > previous_end  # sorted, non-overlapping
        previous_end = byte_range.end
    assert sum(r.length for r in decision.ranges) <= size


@given(RANGE_HEADER)
def test_property_parse_range_specs(value: bytes) -> None:
    specs = parse_range_specs(value)
    if specs is None:
        return
    assert specs
    for first, last in specs:
        assert first is not None or last is not None
        if first is not None and last is not None:
            assert first <= last


@given(
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=1, max_value=2**40),
)
def test_property_single_range_model(first: int, last: int, size: int) -> None:
    first, last = min(first, last), max(first, last)
    decision = evaluate_range(f"bytes={first}-{last}".encode(), size)
    if first >= size:
        assert decision == UNSATISFIABLE
    else:
        assert decision == partial((first, min(last, size - 1)))


@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=1, max_value=2**40))
def test_property_suffix_model(suffix: int, size: int) -> None:
    decision = evaluate_range(f"bytes=-{suffix}".encode(), size)
    if suffix == 0:
        assert decision == UNSATISFIABLE
    else:
        assert decision == partial((max(0, size - suffix), size - 1))


@given(st.binary(max_size=60))
def test_property_if_range_allows_never_raises(value: bytes) -> None:
    assert isinstance(if_range_allows(value, VALIDATORS), bool)
    assert isinstance(if_range_allows(value, Validators(None, None)), bool)
    assert if_range_allows(value, Validators(None, None)) is False


@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 300)), min_size=1, max_size=8))
def test_property_multipart_round_trip(raw: list[tuple[int, int]]) -> None:
    buffer = BUFFER[:2400]
    ranges = coalesce(ByteRange(s, min(s + n, len(buffer) - 1)) for s, n in raw)
    boundary = new_boundary()
    segments, length = multipart_segments(ranges, len(buffer), "a/b", boundary)
    body = render(segments, buffer)
    assert len(body) == length
    parts = parse_multipart(body, boundary).get_payload()
    assert isinstance(parts, list)
    assert [p.get_payload(decode=True) for p in parts] == [
        buffer[r.start : r.end + 1] for r in ranges
    ]


def test_absurdly_long_positions_are_ignored_not_converted() -> None:
    long_number = b"1" * (MAX_DIGITS + 1)
    assert parse_range_specs(b"bytes=" + long_number + b"-") is None
    assert evaluate_range(b"bytes=0-" + long_number, 100) == FULL
    # leading zeros do not count towards the limit
    assert parse_range_specs(b"bytes=" + b"0" * (MAX_DIGITS + 5) + b"7-9") == [(7, 9)]
