"""http_date formatting and the once-a-second Date header cache."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import zerohttp.message.dates
from zerohttp.message.dates import DateHeader, http_date


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784111777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (784111777.5, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951782400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_000_000_000, "Sun, 09 Sep 2001 01:46:40 GMT"),
        (2**31 - 1, "Tue, 19 Jan 2038 03:14:07 GMT"),
        (2**31, "Tue, 19 Jan 2038 03:14:08 GMT"),
        (4102444799, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ],
)
def test_http_date_known_values(timestamp: float, expected: str) -> None:
    assert http_date(timestamp) == expected


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (0.9999997, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784111777.9999997, "Sun, 06 Nov 1994 08:49:37 GMT"),
    ],
)
def test_http_date_truncates_fraction(timestamp: float, expected: str) -> None:
    assert http_date(timestamp) == expected


def test_date_header_cached_within_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [784111777.0]
    monkeypatch.setattr(zerohttp.message.dates.time, "time", lambda: now[0])
    header = DateHeader()

    first = header.line()
    assert first == b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"

    now[0] = 784111777.999
    assert header.line() is first  # the cached bytes, not re-rendered

    now[0] = 784111778.0
    second = header.line()
    assert second == b"Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n"
    assert header.line() is second

    now[0] = 784111777.5  # clock stepped back: re-rendered for the new second
    assert header.line() == first


def test_date_header_not_shared_between_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(zerohttp.message.dates.time, "time", lambda: now[0])
    a = DateHeader()
    assert a.line() == b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    now[0] = 86400.0
    assert DateHeader().line() == b"Date: Fri, 02 Jan 1970 00:00:00 GMT\r\n"
    assert a.line() == b"Date: Fri, 02 Jan 1970 00:00:00 GMT\r\n"


def test_date_header_uses_real_clock() -> None:
    line = DateHeader().line()
    assert line.startswith(b"Date: ")
    assert line.endswith(b" GMT\r\n")
    parsedate_to_datetime(line[6:-2].decode("ascii"))


@given(st.integers(min_value=0, max_value=2**33 - 1))
def test_property_round_trip_integer(t: int) -> None:
    parsed = parsedate_to_datetime(http_date(t))
    assert parsed.utcoffset() == timedelta(0)
    assert int(parsed.timestamp()) == t


@given(
    st.integers(min_value=0, max_value=2**33 - 1),
    st.floats(min_value=0.0, max_value=0.999, allow_nan=False),
)
def test_property_round_trip_fraction(whole: int, fraction: float) -> None:
    t = whole + fraction
    parsed = parsedate_to_datetime(http_date(t))
    assert int(parsed.timestamp()) == int(t)
    # IMF-fixdate is fixed-width
    assert len(http_date(t)) == 29
