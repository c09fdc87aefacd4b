"""plan_response: status, header fields and body plan for one representation and request."""

from __future__ import annotations

import email
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.message.dates import http_date
from zerohttp.message.response import ByteRange, RequestHead, error_response
from zerohttp.static.conditional import Validators
from zerohttp.static.files import FileInfo
from zerohttp.static.representation import (
    IMMUTABLE,
    Plan,
    Representation,
    plan_response,
    validator_fields,
    whole_file,
)

SIZE = 1000
MTIME_NS = 1_700_000_000_123_456_789
SECONDS = MTIME_NS // 10**9
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
TEXT = "text/plain; charset=utf-8"
ETAG = f'"{MTIME_NS:x}-{SIZE:x}"'


def rep(
    size: int = SIZE,
    encoding: str | None = None,
    cache_control: str | None = None,
    vary: bool = False,
    mtime_ns: int = MTIME_NS,
) -> Representation:
    return Representation(FileInfo(size, mtime_ns, 42, 7), TEXT, encoding, cache_control, vary)


def request(method: bytes = b"GET", **headers: bytes) -> RequestHead:
    fields = tuple((name.replace("_", "-").encode(), value) for name, value in headers.items())
    return RequestHead(method, b"/file.txt", b"1.1", fields)


def fields_of(plan: Plan) -> dict[str, str]:
    names = [name for name, _ in plan.fields]
    assert len(names) == len(set(names)), f"duplicate fields: {names}"
    return dict(plan.fields)


def etag_for(size: int = SIZE, encoding: str | None = None) -> str:
    suffix = f"-{encoding}" if encoding else ""
    return f'"{MTIME_NS:x}-{size:x}{suffix}"'


# --- validators ----------------------------------------------------------------------------------


def test_validators() -> None:
    assert http_date(SECONDS) == LAST_MODIFIED
    assert rep().validators == Validators(ETAG.encode(), SECONDS)
    assert ETAG == '"17979cfe3d85cd15-3e8"'


@pytest.mark.parametrize(
    ("encoding", "etag"),
    [
        (None, '"17979cfe3d85cd15-3e8"'),
        ("br", '"17979cfe3d85cd15-3e8-br"'),
        ("gzip", '"17979cfe3d85cd15-3e8-gzip"'),
        ("zstd", '"17979cfe3d85cd15-3e8-zstd"'),
    ],
)
def test_etag_per_encoding(encoding: str | None, etag: str) -> None:
    assert rep(encoding=encoding).validators.etag == etag.encode()


def test_etags_differ_per_encoding_even_at_equal_size() -> None:
    tags = {rep(encoding=e).validators.etag for e in (None, "br", "gzip", "zstd")}
    assert len(tags) == 4


@pytest.mark.parametrize("mtime_ns", [0, 1, 999_999_999, 1_000_000_000])
def test_no_validators_for_a_zeroed_mtime(mtime_ns: int) -> None:
    r = rep(mtime_ns=mtime_ns)
    assert r.validators == Validators(None, None)
    assert validator_fields(r, r.validators) == []
    fields = fields_of(plan_response(request(), r))
    assert "ETag" not in fields and "Last-Modified" not in fields


def test_whole_file() -> None:
    assert whole_file(0) == ()
    assert whole_file(1) == (ByteRange(0, 0),)
    assert whole_file(SIZE) == (ByteRange(0, SIZE - 1),)


# --- 200 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "br", "gzip"])
@pytest.mark.parametrize("cache_control", [None, "no-cache", IMMUTABLE])
@pytest.mark.parametrize("vary", [False, True])
@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_200_fields(
    encoding: str | None, cache_control: str | None, vary: bool, method: bytes
) -> None:
    plan = plan_response(
        request(method), rep(encoding=encoding, cache_control=cache_control, vary=vary)
    )
    expected = {
        "Content-Type": TEXT,
        "Content-Length": str(SIZE),
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Last-Modified": LAST_MODIFIED,
        "ETag": etag_for(encoding=encoding),
    }
    if cache_control:
        expected["Cache-Control"] = cache_control
    if vary:
        expected["Vary"] = "Accept-Encoding"
    if encoding:
        expected["Content-Encoding"] = encoding
    assert plan.status == 200
    assert fields_of(plan) == expected
    assert plan.segments == (ByteRange(0, SIZE - 1),)


def test_200_empty_file() -> None:
    plan = plan_response(request(range=b"bytes=0-0"), rep(size=0))
    assert plan.status == 200
    assert fields_of(plan)["Content-Length"] == "0"
    assert plan.segments == ()


def test_immutable_value() -> None:
    assert IMMUTABLE == "public, max-age=31536000, immutable"


# --- 304 / 412 ----------------------------------------------------------------------------------

NOT_MODIFIED = [
    {"if_none_match": ETAG.encode()},
    {"if_none_match": b"W/" + ETAG.encode()},
    {"if_none_match": b'"x", ' + ETAG.encode()},
    {"if_none_match": b"*"},
    {"if_modified_since": LAST_MODIFIED.encode()},
    {"if_modified_since": http_date(SECONDS + 3600).encode()},
    {"if_none_match": ETAG.encode(), "range": b"bytes=0-9"},  # conditionals come first
    {"if_none_match": ETAG.encode(), "range": b"bytes=5000-"},
    {"if_match": ETAG.encode(), "if_none_match": ETAG.encode()},
]


@pytest.mark.parametrize("headers", NOT_MODIFIED)
@pytest.mark.parametrize("encoding", [None, "gzip"])
@pytest.mark.parametrize("cache_control", [None, IMMUTABLE])
@pytest.mark.parametrize("vary", [False, True])
@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_304_fields(
    headers: dict[str, bytes],
    encoding: str | None,
    cache_control: str | None,
    vary: bool,
    method: bytes,
) -> None:
    if encoding and "if_none_match" in headers and headers["if_none_match"] != b"*":
        tag = etag_for(encoding=encoding).encode()
        headers = {**headers, "if_none_match": headers["if_none_match"].replace(ETAG.encode(), tag)}
        if "if_match" in headers:
            headers["if_match"] = tag
    r = rep(encoding=encoding, cache_control=cache_control, vary=vary)
    plan = plan_response(request(method, **headers), r)
    expected = {"ETag": etag_for(encoding=encoding), "Last-Modified": LAST_MODIFIED}
    if cache_control:
        expected["Cache-Control"] = cache_control
    if vary:
        expected["Vary"] = "Accept-Encoding"
    assert plan.status == 304
    assert fields_of(plan) == expected
    assert plan.segments == ()


def test_304_without_validators_has_no_fields() -> None:
    plan = plan_response(request(if_none_match=b"*"), rep(mtime_ns=0))
    assert plan == Plan(304, [])


def test_304_in_whole_seconds() -> None:
    r = rep(mtime_ns=SECONDS * 10**9 + 999_999_999)
    assert plan_response(request(if_modified_since=LAST_MODIFIED.encode()), r).status == 304
    earlier = http_date(SECONDS - 1).encode()
    assert plan_response(request(if_modified_since=earlier), r).status == 200


def test_old_etag_is_not_304() -> None:
    plan = plan_response(request(if_none_match=etag_for(encoding="br").encode()), rep())
    assert plan.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"if_match": b'"other"'},
        {"if_match": b"W/" + ETAG.encode()},
        {"if_match": etag_for(encoding="br").encode()},  # the identity tag of another coding
        {"if_unmodified_since": http_date(SECONDS - 1).encode()},
        {"if_match": b'"other"', "range": b"bytes=0-9"},
        {"if_match": b'"other"', "if_none_match": ETAG.encode()},
    ],
)
def test_412(headers: dict[str, bytes]) -> None:
    assert plan_response(request(**headers), rep(vary=True)) == Plan(412, [])


def test_if_match_passes_then_200() -> None:
    plan = plan_response(request(if_match=ETAG.encode()), rep())
    assert plan.status == 200


# --- 206 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        (b"bytes=0-99", 0, 99),
        (b"bytes=900-", 900, 999),
        (b"bytes=-1", 999, 999),
        (b"bytes=10-5000", 10, 999),
        (b"bytes=0-9,5-20", 0, 20),
    ],
)
@pytest.mark.parametrize("encoding", [None, "br"])
def test_206_single(value: bytes, start: int, end: int, encoding: str | None) -> None:
    plan = plan_response(
        request(range=value), rep(encoding=encoding, cache_control="no-cache", vary=True)
    )
    expected = {
        "Content-Type": TEXT,
        "Content-Length": str(end - start + 1),
        "Content-Range": f"bytes {start}-{end}/{SIZE}",
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Last-Modified": LAST_MODIFIED,
        "ETag": etag_for(encoding=encoding),
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
    }
    if encoding:
        expected["Content-Encoding"] = encoding
    assert plan.status == 206
    assert fields_of(plan) == expected
    assert plan.segments == (ByteRange(start, end),)


def test_206_multipart() -> None:
    size = 4096
    buffer = bytes(range(256)) * 16
    plan = plan_response(request(range=b"bytes=3000-3099,0-9"), rep(size=size, vary=True))
    assert plan.status == 206
    fields = fields_of(plan)
    match = re.fullmatch(r"multipart/byteranges; boundary=([0-9a-f]{32})", fields["Content-Type"])
    assert match is not None
    assert "Content-Range" not in fields
    assert "Content-Encoding" not in fields
    assert fields["ETag"] == etag_for(size=size)
    assert fields["Vary"] == "Accept-Encoding"
    assert fields["Accept-Ranges"] == "bytes"
    ranges = [s for s in plan.segments if isinstance(s, ByteRange)]
    assert ranges == [ByteRange(0, 9), ByteRange(3000, 3099)]
    body = b"".join(
        s if isinstance(s, bytes) else buffer[s.start : s.end + 1] for s in plan.segments
    )
    assert fields["Content-Length"] == str(len(body))
    head = f"Content-Type: {fields['Content-Type']}\r\n\r\n".encode()
    parts = email.message_from_bytes(head + body).get_payload()
    assert isinstance(parts, list)
    assert [(p["Content-Type"], p["Content-Range"], p.get_payload(decode=True)) for p in parts] == [
        (TEXT, f"bytes 0-9/{size}", buffer[0:10]),
        (TEXT, f"bytes 3000-3099/{size}", buffer[3000:3100]),
    ]


def test_multipart_boundaries_differ_between_responses() -> None:
    value = b"bytes=0-0,500-500"
    first = fields_of(plan_response(request(range=value), rep()))["Content-Type"]
    second = fields_of(plan_response(request(range=value), rep()))["Content-Type"]
    assert first != second


def test_multipart_costing_more_than_the_file_is_200() -> None:
    plan = plan_response(request(range=b"bytes=0-0,500-500,999-999"), rep())
    assert plan.status == 206  # 3 bytes + 300 of overhead < 1000
    small = plan_response(request(range=b"bytes=0-0,150-150,299-299"), rep(size=300))
    assert small.status == 200
    assert small.segments == (ByteRange(0, 299),)  # 3 + 300 > 300


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS"])
def test_range_only_for_get_and_head(method: bytes) -> None:
    plan = plan_response(request(method, range=b"bytes=0-9"), rep())
    assert plan.status == 200
    assert "Content-Range" not in fields_of(plan)


@pytest.mark.parametrize("value", [b"bytes=0-99", b"bytes=-5", b"bytes=2000-", b"bytes=x"])
def test_head_range_like_get(value: bytes) -> None:
    get = plan_response(request(b"GET", range=value), rep(vary=True))
    head = plan_response(request(b"HEAD", range=value), rep(vary=True))
    assert head == get


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        (ETAG.encode(), 206),
        (LAST_MODIFIED.encode(), 206),
        (b"W/" + ETAG.encode(), 200),
        (b'"stale"', 200),
        (etag_for(encoding="gzip").encode(), 200),
        (http_date(SECONDS - 1).encode(), 200),
        (b"yesterday", 200),
    ],
)
def test_if_range(if_range: bytes, status: int) -> None:
    plan = plan_response(request(range=b"bytes=0-9", if_range=if_range), rep())
    assert plan.status == status
    assert fields_of(plan)["Content-Length"] == ("10" if status == 206 else str(SIZE))


def test_if_range_for_encoded_representation_uses_its_own_tag() -> None:
    r = rep(encoding="gzip")
    tag = etag_for(encoding="gzip").encode()
    assert plan_response(request(range=b"bytes=0-9", if_range=tag), r).status == 206
    assert plan_response(request(range=b"bytes=0-9", if_range=ETAG.encode()), r).status == 200


# --- 416 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"bytes=1000-", b"bytes=-0", b"bytes=5000-6000,-0"])
@pytest.mark.parametrize("encoding", [None, "br"])
@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_416(value: bytes, encoding: str | None, method: bytes) -> None:
    r = rep(encoding=encoding, cache_control="no-cache", vary=True)
    plan = plan_response(request(method, range=value), r)
    assert plan.status == 416
    # the error brings its own plain body: no Content-Type/Length/Encoding of the file
    assert fields_of(plan) == {
        "Content-Range": f"bytes */{SIZE}",
        "Accept-Ranges": "bytes",
        "Last-Modified": LAST_MODIFIED,
        "ETag": etag_for(encoding=encoding),
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
    }
    assert plan.segments == ()


def test_416_response_has_no_duplicate_fields() -> None:
    """Regression: the plan's fields once repeated error_response's X-Content-Type-Options."""
    plan = plan_response(request(range=b"bytes=1000-"), rep(encoding="br", vary=True))
    response = error_response(plan.status, plan.fields)
    names = [line.split(b":")[0] for line in response.field_lines().split(b"\r\n") if line]
    assert len(names) == len(set(names)), names
    assert b"Content-Encoding" not in names
    assert b"Content-Range: bytes */1000\r\n" in response.field_lines()


# --- Last-Modified never in the future -----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [(None, SECONDS), (SECONDS + 1, SECONDS), (SECONDS, SECONDS), (SECONDS - 60, SECONDS - 60)],
)
def test_last_modified_clamped_to_now(now: int | None, expected: int) -> None:
    r = Representation(FileInfo(SIZE, MTIME_NS, 42, 7), TEXT, now=now)
    assert r.validators == Validators(ETAG.encode(), expected)
    plan = plan_response(request(), r)
    assert fields_of(plan)["Last-Modified"] == http_date(expected)
    assert fields_of(plan)["ETag"] == ETAG  # the tag still names the real version
    same = request(if_modified_since=http_date(expected).encode())
    assert plan_response(same, r).status == 304


# --- properties ---------------------------------------------------------------------------------

HEADER_VALUES = st.sampled_from(
    [ETAG.encode(), b"*", b"W/" + ETAG.encode(), b'"x"', LAST_MODIFIED.encode(), b"garbage"]
) | st.binary(max_size=30)
RANGE_VALUES = st.sampled_from(
    [b"bytes=0-9", b"bytes=-5", b"bytes=2000-", b"bytes=0-0,500-500", b"bytes=5-1"]
) | st.binary(max_size=30)


@given(
    st.sampled_from([b"GET", b"HEAD", b"POST"]),
    st.dictionaries(
        st.sampled_from(
            ["if_match", "if_none_match", "if_modified_since", "if_unmodified_since", "if_range"]
        ),
        HEADER_VALUES,
    ),
    st.none() | RANGE_VALUES,
    st.integers(0, 5000),
    st.sampled_from([None, "br"]),
)
def test_property_plan_response(
    method: bytes,
    headers: dict[str, bytes],
    range_value: bytes | None,
    size: int,
    encoding: str | None,
) -> None:
    if range_value is not None:
        headers = {**headers, "range": range_value}
    plan = plan_response(request(method, **headers), rep(size=size, encoding=encoding))
    assert plan.status in (200, 206, 304, 412, 416)
    fields = fields_of(plan)
    body_length = sum(s.length if isinstance(s, ByteRange) else len(s) for s in plan.segments)
    if plan.status in (200, 206):
        assert fields["Content-Length"] == str(body_length)
        for segment in plan.segments:
            if isinstance(segment, ByteRange):
                assert 0 <= segment.start <= segment.end < size
    else:
        assert plan.segments == ()
    if plan.status == 200:
        assert body_length == size
