"""Conditional requests (RFC 9110 §13): entity-tag lists, HTTP dates and §13.2.2 precedence."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.message.dates import http_date
from zerohttp.static.conditional import (
    Validators,
    evaluate,
    if_match_passes,
    if_none_match_matches,
    parse_etags,
    parse_http_date,
)

ETAG = b'"5f-1a"'
OTHER = b'"other"'
LM = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT
DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"
EARLIER = b"Sun, 06 Nov 1994 08:49:36 GMT"  # one second before Last-Modified
LATER = b"Sun, 06 Nov 1994 08:49:38 GMT"  # one second after Last-Modified
RFC850 = b"Sunday, 06-Nov-94 08:49:37 GMT"
ASCTIME = b"Sun Nov  6 08:49:37 1994"
RFC850_EARLIER = b"Sunday, 06-Nov-94 08:49:36 GMT"
ASCTIME_EARLIER = b"Sun Nov  6 08:49:36 1994"
BAD_DATE = b"not a date"

BOTH = Validators(ETAG, LM)
NO_ETAG = Validators(None, LM)
NO_DATE = Validators(ETAG, None)
NOTHING = Validators(None, None)

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS_LONG = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


# --- HTTP dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (DATE, LM),  # IMF-fixdate
        (RFC850, LM),  # obsolete RFC 850 form
        (ASCTIME, LM),  # obsolete asctime form
        (b"Thu, 01 Jan 1970 00:00:00 GMT", 0),
        (b"Tue, 29 Feb 2000 00:00:00 GMT", 951782400),
        (b"Tue, 19 Jan 2038 03:14:08 GMT", 2**31),
        (b"Thu Jan  1 00:00:00 1970", 0),
        (b"Thursday, 01-Jan-70 00:00:00 GMT", 0),
        (b"  " + DATE + b"  ", LM),
        (b"", None),
        (b" ", None),
        (BAD_DATE, None),
        (b"0", None),
        (b"Sun, 06 Nov 1994", None),
        (b"Sun, 32 Nov 1994 08:49:37 GMT", None),
        (b"Sun, 06 Foo 1994 08:49:37 GMT", None),
        (b"Sun, 06 Nov 1994 25:49:37 GMT", None),
        (b"\xff\xfe", None),
    ],
)
def test_parse_http_date(value: bytes, expected: int | None) -> None:
    assert parse_http_date(value) == expected


def _imf(moment: datetime) -> bytes:
    weekday, month = WEEKDAYS[moment.weekday()], MONTHS[moment.month - 1]
    return f"{weekday}, {moment:%d} {month} {moment:%Y %H:%M:%S} GMT".encode()


def _rfc850(moment: datetime) -> bytes:
    weekday, month = WEEKDAYS_LONG[moment.weekday()], MONTHS[moment.month - 1]
    return f"{weekday}, {moment:%d}-{month}-{moment:%y %H:%M:%S} GMT".encode()


def _asctime(moment: datetime) -> bytes:
    weekday, month = WEEKDAYS[moment.weekday()], MONTHS[moment.month - 1]
    return f"{weekday} {month} {moment.day:2d} {moment:%H:%M:%S %Y}".encode()


@contextlib.contextmanager
def local_time_zone(name: str) -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Pin the local zone so every test means the same on any host (see the New York tests)."""
    with local_time_zone("UTC"):
        yield


@pytest.fixture
def new_york() -> Iterator[None]:
    """A local time zone west of UTC; HTTP dates must not depend on it."""
    with local_time_zone("America/New_York"):
        yield


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize("value", [DATE, RFC850])
def test_parse_http_date_gmt_forms_ignore_local_time_zone(value: bytes) -> None:
    assert parse_http_date(value) == LM


@pytest.mark.usefixtures("new_york")
def test_parse_http_date_asctime_is_gmt_whatever_the_local_time_zone() -> None:
    assert parse_http_date(ASCTIME) == LM


@pytest.mark.usefixtures("new_york")
def test_asctime_if_modified_since_does_not_hide_a_newer_file() -> None:
    newer = Validators(ETAG, LM + 3600)
    assert evaluate(b"GET", None, None, None, ASCTIME, newer) is None


DATES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2037, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0, tzinfo=timezone.utc))


@given(DATES)
def test_property_all_three_date_forms_agree(moment: datetime) -> None:
    expected = int(moment.timestamp())
    assert parse_http_date(_imf(moment)) == expected
    assert parse_http_date(http_date(expected).encode()) == expected
    assert parse_http_date(_rfc850(moment)) == expected
    assert parse_http_date(_asctime(moment)) == expected


@given(st.binary(max_size=64))
def test_property_parse_http_date_never_raises(value: bytes) -> None:
    result = parse_http_date(value)
    assert result is None or isinstance(result, int)


# --- entity tags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'"a"', [(False, b'"a"')]),
        (b'W/"a"', [(True, b'"a"')]),
        (b'""', [(False, b'""')]),
        (b'"5f-1a"', [(False, b'"5f-1a"')]),
        (b'"a", W/"b" ,"c"', [(False, b'"a"'), (True, b'"b"'), (False, b'"c"')]),
        (b'"a","b"', [(False, b'"a"'), (False, b'"b"')]),
        (b' "a" , ', [(False, b'"a"')]),
        (b', ,"a",,', [(False, b'"a"')]),
        (b'"\x80\xff!#~"', [(False, b'"\x80\xff!#~"')]),
        (b"", []),
        (b" , ", []),
    ],
)
def test_parse_etags(value: bytes, expected: list[tuple[bool, bytes]]) -> None:
    assert parse_etags(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        b"a",
        b'"a',
        b'a"',
        b'"a" "b"',
        b'"a b"',
        b'"a"b',
        b'w/"a"',
        b'W/ "a"',
        b"W/a",
        b"*",
        b'"a", *',
        b'"a\x7fb"',
        b'"a\x00"',
        b'"a"; "b"',
    ],
)
def test_parse_etags_malformed(value: bytes) -> None:
    assert parse_etags(value) is None


@pytest.mark.parametrize(
    ("value", "etag", "expected"),
    [
        (ETAG, ETAG, True),
        (b" " + ETAG + b" ", ETAG, True),
        (OTHER, ETAG, False),
        (b"W/" + ETAG, ETAG, False),  # strong comparison: a weak tag never matches
        (b'"x", ' + ETAG, ETAG, True),
        (b'"x", W/' + ETAG, ETAG, False),
        (b'"x", "y"', ETAG, False),
        (b"*", ETAG, True),
        (b" * ", ETAG, True),
        (b"*", None, True),  # the representation exists, even without a tag
        (ETAG, None, False),
        (b"", ETAG, False),
        (b"garbage", ETAG, False),
        (b'"5F-1A"', ETAG, False),  # opaque tags are case-sensitive
        (b'"5f-1a', ETAG, False),
    ],
)
def test_if_match_passes(value: bytes, etag: bytes | None, expected: bool) -> None:
    assert if_match_passes(value, etag) is expected


@pytest.mark.parametrize(
    ("value", "etag", "expected"),
    [
        (ETAG, ETAG, True),
        (b"W/" + ETAG, ETAG, True),  # weak comparison
        (OTHER, ETAG, False),
        (b"W/" + OTHER, ETAG, False),
        (b'"x", W/' + ETAG, ETAG, True),
        (b'"x", "y"', ETAG, False),
        (b"*", ETAG, True),
        (b"*", None, True),
        (ETAG, None, False),
        (b"", ETAG, False),
        (b"garbage", ETAG, False),
        (b'"5F-1A"', ETAG, False),
    ],
)
def test_if_none_match_matches(value: bytes, etag: bytes | None, expected: bool) -> None:
    assert if_none_match_matches(value, etag) is expected


# --- §13.2.2 precedence ------------------------------------------------------------------------

H = bytes | None
CASES: list[tuple[str, bytes, H, H, H, H, Validators, int | None]] = [
    # id, method, If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, validators,
    # expected result
    ("no-conditions", b"GET", None, None, None, None, BOTH, None),
    ("no-conditions-no-validators", b"GET", None, None, None, None, NOTHING, None),
    # step 1: If-Match
    ("im-match", b"GET", ETAG, None, None, None, BOTH, None),
    ("im-mismatch", b"GET", OTHER, None, None, None, BOTH, 412),
    ("im-mismatch-head", b"HEAD", OTHER, None, None, None, BOTH, 412),
    ("im-mismatch-put", b"PUT", OTHER, None, None, None, BOTH, 412),
    ("im-star", b"GET", b"*", None, None, None, BOTH, None),
    ("im-star-no-etag", b"GET", b"*", None, None, None, NO_ETAG, None),
    ("im-list-has-it", b"GET", b'"a", ' + ETAG, None, None, None, BOTH, None),
    ("im-list-lacks-it", b"GET", b'"a", "b"', None, None, None, BOTH, 412),
    ("im-weak-never-matches", b"GET", b"W/" + ETAG, None, None, None, BOTH, 412),
    ("im-no-etag-fails", b"GET", ETAG, None, None, None, NO_ETAG, 412),
    ("im-malformed-fails", b"GET", b"garbage", None, None, None, BOTH, 412),
    ("im-empty-fails", b"GET", b"", None, None, None, BOTH, 412),
    # step 2: If-Unmodified-Since, only without If-Match
    ("ius-same-second", b"GET", None, DATE, None, None, BOTH, None),
    ("ius-later", b"GET", None, LATER, None, None, BOTH, None),
    ("ius-earlier", b"GET", None, EARLIER, None, None, BOTH, 412),
    ("ius-earlier-put", b"PUT", None, EARLIER, None, None, BOTH, 412),
    ("ius-earlier-rfc850", b"GET", None, RFC850_EARLIER, None, None, BOTH, 412),
    ("ius-earlier-asctime", b"GET", None, ASCTIME_EARLIER, None, None, BOTH, 412),
    ("ius-same-rfc850", b"GET", None, RFC850, None, None, BOTH, None),
    ("ius-invalid-ignored", b"GET", None, BAD_DATE, None, None, BOTH, None),
    ("ius-empty-ignored", b"GET", None, b"", None, None, BOTH, None),
    ("ius-no-last-modified", b"GET", None, EARLIER, None, None, NO_DATE, None),
    ("ius-ignored-when-im-passes", b"GET", ETAG, EARLIER, None, None, BOTH, None),
    ("ius-ignored-when-im-star", b"GET", b"*", EARLIER, None, None, BOTH, None),
    ("im-fails-though-ius-passes", b"GET", OTHER, LATER, None, None, BOTH, 412),
    # step 3: If-None-Match
    ("inm-match-get", b"GET", None, None, ETAG, None, BOTH, 304),
    ("inm-match-head", b"HEAD", None, None, ETAG, None, BOTH, 304),
    ("inm-match-post", b"POST", None, None, ETAG, None, BOTH, 412),
    ("inm-match-put", b"PUT", None, None, ETAG, None, BOTH, 412),
    ("inm-match-delete", b"DELETE", None, None, ETAG, None, BOTH, 412),
    ("inm-weak-match", b"GET", None, None, b"W/" + ETAG, None, BOTH, 304),
    ("inm-weak-match-post", b"POST", None, None, b"W/" + ETAG, None, BOTH, 412),
    ("inm-list-has-it", b"GET", None, None, b'"a", W/"b", ' + ETAG, None, BOTH, 304),
    ("inm-list-lacks-it", b"GET", None, None, b'"a", W/"b"', None, BOTH, None),
    ("inm-mismatch", b"GET", None, None, OTHER, None, BOTH, None),
    ("inm-mismatch-post", b"POST", None, None, OTHER, None, BOTH, None),
    ("inm-star", b"GET", None, None, b"*", None, BOTH, 304),
    ("inm-star-no-etag", b"GET", None, None, b"*", None, NOTHING, 304),
    ("inm-star-put", b"PUT", None, None, b"*", None, BOTH, 412),
    ("inm-no-etag", b"GET", None, None, ETAG, None, NO_ETAG, None),
    ("inm-malformed", b"GET", None, None, b"garbage", None, BOTH, None),
    # step 4: If-Modified-Since, only for GET/HEAD and only without If-None-Match
    ("ims-same-second", b"GET", None, None, None, DATE, BOTH, 304),
    ("ims-same-second-head", b"HEAD", None, None, None, DATE, BOTH, 304),
    ("ims-later", b"GET", None, None, None, LATER, BOTH, 304),
    ("ims-earlier", b"GET", None, None, None, EARLIER, BOTH, None),
    ("ims-rfc850", b"GET", None, None, None, RFC850, BOTH, 304),
    ("ims-asctime", b"GET", None, None, None, ASCTIME, BOTH, 304),
    ("ims-rfc850-earlier", b"GET", None, None, None, RFC850_EARLIER, BOTH, None),
    ("ims-asctime-earlier", b"GET", None, None, None, ASCTIME_EARLIER, BOTH, None),
    ("ims-invalid-ignored", b"GET", None, None, None, BAD_DATE, BOTH, None),
    ("ims-no-last-modified", b"GET", None, None, None, LATER, NO_DATE, None),
    ("ims-ignored-for-post", b"POST", None, None, None, LATER, BOTH, None),
    ("ims-ignored-for-put", b"PUT", None, None, None, DATE, BOTH, None),
    ("ims-ignored-when-inm-mismatches", b"GET", None, None, OTHER, LATER, BOTH, None),
    ("ims-ignored-when-inm-malformed", b"GET", None, None, b"garbage", LATER, BOTH, None),
    ("inm-match-beats-old-ims", b"GET", None, None, ETAG, EARLIER, BOTH, 304),
    # steps 1/2 win over steps 3/4
    ("im-fail-beats-inm-match", b"GET", OTHER, None, ETAG, None, BOTH, 412),
    ("im-fail-beats-inm-star", b"GET", OTHER, None, b"*", None, BOTH, 412),
    ("im-fail-beats-ims", b"GET", OTHER, None, None, LATER, BOTH, 412),
    ("ius-fail-beats-inm-match", b"GET", None, EARLIER, ETAG, None, BOTH, 412),
    ("ius-fail-beats-ims", b"GET", None, EARLIER, None, LATER, BOTH, 412),
    ("im-pass-then-inm-match", b"GET", ETAG, None, ETAG, None, BOTH, 304),
    ("im-pass-then-inm-match-post", b"POST", ETAG, None, ETAG, None, BOTH, 412),
    ("im-pass-then-ims", b"HEAD", ETAG, None, None, DATE, BOTH, 304),
    ("im-pass-ius-fail-inm-match", b"GET", ETAG, EARLIER, ETAG, None, BOTH, 304),
    ("ius-pass-then-inm-match", b"GET", None, LATER, ETAG, None, BOTH, 304),
    ("ius-pass-then-ims", b"GET", None, DATE, None, DATE, BOTH, 304),
    ("ius-invalid-then-ims", b"GET", None, BAD_DATE, None, DATE, BOTH, 304),
    ("all-pass", b"GET", ETAG, LATER, OTHER, EARLIER, BOTH, None),
    ("all-four-im-fails", b"GET", OTHER, EARLIER, ETAG, LATER, BOTH, 412),
    ("all-four-im-passes", b"GET", ETAG, EARLIER, ETAG, LATER, BOTH, 304),
]


@pytest.mark.parametrize(
    ("method", "im", "ius", "inm", "ims", "validators", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_evaluate_precedence(
    method: bytes,
    im: bytes | None,
    ius: bytes | None,
    inm: bytes | None,
    ims: bytes | None,
    validators: Validators,
    expected: int | None,
) -> None:
    assert evaluate(method, im, ius, inm, ims, validators) == expected


def test_dates_compared_in_whole_seconds() -> None:
    for offset, expected in [(-2, None), (-1, None), (0, 304), (1, 304), (2, 304)]:
        ims = http_date(LM + offset).encode()
        assert evaluate(b"GET", None, None, None, ims, BOTH) == expected, offset
    for offset, expected in [(-2, 412), (-1, 412), (0, None), (1, None)]:
        ius = http_date(LM + offset).encode()
        assert evaluate(b"GET", None, ius, None, None, BOTH) == expected, offset


# --- properties --------------------------------------------------------------------------------

HEADER = (
    st.none()
    | st.binary(max_size=40)
    | st.sampled_from([ETAG, OTHER, b"*", b"W/" + ETAG, DATE, EARLIER, LATER, RFC850, ASCTIME])
)
METHOD = st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE"]) | st.binary(max_size=8)
VALIDATORS = st.builds(
    Validators,
    st.none() | st.sampled_from([ETAG, OTHER, b'""']),
    st.none() | st.integers(min_value=0, max_value=2**40),
)


@given(st.binary(max_size=80))
def test_property_parse_etags_never_raises(value: bytes) -> None:
    tags = parse_etags(value)
    assert tags is None or isinstance(tags, list)
    for weak, tag in tags or []:
        assert isinstance(weak, bool)
        assert len(tag) >= 2 and tag[:1] == b'"' and tag[-1:] == b'"'


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=8)), max_size=5))
def test_property_parse_etags_round_trip(tags: list[tuple[bool, bytes]]) -> None:
    clean = [
        (weak, b'"' + bytes(c for c in raw if c > 0x20 and c != 0x22 and c != 0x7F) + b'"')
        for weak, raw in tags
    ]
    value = b", ".join((b"W/" if weak else b"") + tag for weak, tag in clean)
    assert parse_etags(value) == clean


@given(st.binary(max_size=60), st.none() | st.binary(max_size=12))
def test_property_etag_predicates_never_raise(value: bytes, etag: bytes | None) -> None:
    assert isinstance(if_match_passes(value, etag), bool)
    assert isinstance(if_none_match_matches(value, etag), bool)


@given(METHOD, HEADER, HEADER, HEADER, HEADER, VALIDATORS)
def test_property_evaluate_never_raises(
    method: bytes,
    im: bytes | None,
    ius: bytes | None,
    inm: bytes | None,
    ims: bytes | None,
    validators: Validators,
) -> None:
    result = evaluate(method, im, ius, inm, ims, validators)
    assert result in (None, 304, 412)
    if result == 304:  # only steps 3/4 give 304, and only to safe methods
        assert method in (b"GET", b"HEAD")
        assert inm is not None or ims is not None
    if result == 412 and method in (b"GET", b"HEAD"):  # 412 for GET comes from steps 1/2
        assert im is not None or ius is not None
    if im is None and ius is None and inm is None and ims is None:
        assert result is None
