"""Accept-Encoding parsing and the choice among precompressed siblings (RFC 9110 §12.5.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.static.negotiation import (
    DEFAULT_PREFERENCE,
    SIBLING_SUFFIXES,
    choose_encoding,
    parse_accept_encoding,
)


def test_known_codings() -> None:
    assert DEFAULT_PREFERENCE == ("br", "zstd", "gzip")
    assert SIBLING_SUFFIXES == {"br": ".br", "zstd": ".zst", "gzip": ".gz"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"", {}),
        (b"gzip", {"gzip": 1.0}),
        (b"gzip, br", {"gzip": 1.0, "br": 1.0}),
        (b"gzip, deflate, br, zstd", {"gzip": 1.0, "deflate": 1.0, "br": 1.0, "zstd": 1.0}),
        (b"gzip;q=0.5, br;q=1.0", {"gzip": 0.5, "br": 1.0}),
        (b"gzip;q=0.5,br;q=0.25", {"gzip": 0.5, "br": 0.25}),
        (b"br;q=0.001", {"br": 0.001}),
        (b"br;q=1.000", {"br": 1.0}),
        (b"br;q=1", {"br": 1.0}),
        (b"br;q=0", {"br": 0.0}),
        (b"br;q=0.000", {"br": 0.0}),
        (b"gzip ;q=0.5 , br ; q=0.7", {"gzip": 0.5, "br": 0.7}),
        (b"\tgzip\t", {"gzip": 1.0}),
        (b"*", {"*": 1.0}),
        (b"*;q=0", {"*": 0.0}),
        (b"identity;q=0, *;q=0.1", {"identity": 0.0, "*": 0.1}),
        # case-insensitive tokens and q
        (b"GZIP", {"gzip": 1.0}),
        (b"Br;Q=0.5", {"br": 0.5}),
        (b"ZSTD;q=0.3", {"zstd": 0.3}),
        # first mention wins
        (b"gzip;q=0.2, gzip;q=0.9", {"gzip": 0.2}),
        (b"GZIP;q=0.2, gzip", {"gzip": 0.2}),
        (b"br, br;q=0", {"br": 1.0}),
        # malformed elements are skipped, the rest kept
        (b"gzip;q=2, br", {"br": 1.0}),
        (b"gzip;q=1.5, br", {"br": 1.0}),
        (b"gzip;q=-1, br", {"br": 1.0}),
        (b"gzip;q=abc, br", {"br": 1.0}),
        (b"gzip;q=, br", {"br": 1.0}),
        (b"gzip;q=., br", {"br": 1.0}),
        (b"gzip;q=0.5.1, br", {"br": 1.0}),
        (b"gzip;q=0.123456, br", {"br": 1.0}),
        (b"gzip;level=9, br", {"br": 1.0}),
        (b"gzip;, br", {"br": 1.0}),
        (b"g zip, br", {"br": 1.0}),
        (b"gzip/1, br", {"br": 1.0}),
        (b'"gzip", br', {"br": 1.0}),
        (b"gzip;q=2, gzip;q=0.4", {"gzip": 0.4}),  # a skipped mention is not the first
        (b"\xe9, br", {"br": 1.0}),
        (b",,gzip,,", {"gzip": 1.0}),
        (b" , ", {}),
    ],
)
def test_parse_accept_encoding(value: bytes, expected: dict[str, float]) -> None:
    assert parse_accept_encoding(value) == expected


ALL = DEFAULT_PREFERENCE


@pytest.mark.parametrize(
    ("accepted", "available", "expected"),
    [
        ({}, ALL, None),
        ({"gzip": 1.0}, ALL, "gzip"),
        ({"br": 1.0}, ALL, "br"),
        ({"zstd": 1.0}, ALL, "zstd"),
        ({"deflate": 1.0}, ALL, None),
        ({"gzip": 1.0, "br": 1.0}, ALL, "br"),  # tie: server order
        ({"gzip": 1.0, "zstd": 1.0}, ALL, "zstd"),
        ({"gzip": 1.0, "br": 1.0}, ("gzip", "br"), "gzip"),
        ({"gzip": 1.0, "br": 0.5}, ALL, "gzip"),  # highest q beats server order
        ({"gzip": 0.3, "zstd": 0.4, "br": 0.2}, ALL, "zstd"),
        ({"br": 0.0}, ALL, None),
        ({"br": 0.0, "gzip": 0.1}, ALL, "gzip"),
        ({"br": 1.0}, ("gzip",), None),
        ({"br": 1.0}, (), None),
        # "*" stands for codings not named
        ({"*": 1.0}, ALL, "br"),
        ({"*": 1.0}, ("gzip",), "gzip"),
        ({"*": 1.0, "br": 0.0}, ALL, "zstd"),
        ({"*": 1.0, "br": 0.0, "zstd": 0.0}, ALL, "gzip"),
        ({"*": 0.0}, ALL, None),
        ({"*": 0.0, "gzip": 0.5}, ALL, "gzip"),
        ({"*": 0.5, "gzip": 0.8}, ALL, "gzip"),
        ({"*": 0.9, "gzip": 0.8}, ALL, "br"),
        ({"*": 0.9, "br": 0.1}, ALL, "zstd"),
        # identity only wins when explicitly rated higher than the best coding
        ({"gzip": 0.5, "identity": 1.0}, ALL, None),
        ({"gzip": 0.5, "identity": 0.5}, ALL, "gzip"),
        ({"gzip": 0.5, "identity": 0.4}, ALL, "gzip"),
        ({"gzip": 1.0, "identity": 0.0}, ALL, "gzip"),
        ({"identity": 1.0}, ALL, None),
        ({"*": 0.5, "identity": 1.0}, ALL, None),
        ({"*": 0.5, "identity": 0.5}, ALL, "br"),
        ({"*": 1.0, "identity": 0.5}, ALL, "br"),
    ],
)
def test_choose_encoding(
    accepted: dict[str, float], available: tuple[str, ...], expected: str | None
) -> None:
    assert choose_encoding(accepted, available) == expected


@pytest.mark.parametrize(
    ("header", "available", "expected"),
    [
        (b"gzip, deflate, br, zstd", ALL, "br"),  # Chrome
        (b"gzip, deflate, br", ("zstd", "gzip"), "gzip"),
        (b"gzip, deflate", ALL, "gzip"),
        (b"deflate", ALL, None),
        (b"identity", ALL, None),
        (b"", ALL, None),
        (b"*", ALL, "br"),
        (b"br;q=0, *", ALL, "zstd"),
        (b"BR;Q=0, GZIP", ALL, "gzip"),
        (b"gzip;q=1.0, identity; q=0.5, *;q=0", ALL, "gzip"),
        (b"gzip;q=0.1, identity;q=0.9", ALL, None),
        (b"br;q=0.8, gzip;q=0.9, zstd;q=0.7", ALL, "gzip"),
        (b"br;q=2, gzip;q=0.1", ALL, "gzip"),  # the malformed br is skipped
        (b"zstd, gzip", ("br", "gzip"), "gzip"),
    ],
)
def test_negotiate_from_header(
    header: bytes, available: tuple[str, ...], expected: str | None
) -> None:
    assert choose_encoding(parse_accept_encoding(header), available) == expected


# --- properties --------------------------------------------------------------------------------

TOKEN = st.sampled_from(["gzip", "GZip", "br", "zstd", "*", "identity", "deflate", "x"])
QVALUE = st.sampled_from(["", ";q=0", ";q=1", ";q=0.5", ";Q=0.25", ";q=1.1", ";q=x", " ; q=0.9"])
HEADER = st.binary(max_size=80) | st.lists(st.tuples(TOKEN, QVALUE).map("".join), max_size=6).map(
    lambda items: ", ".join(items).encode()
)
AVAILABLE = st.permutations(list(DEFAULT_PREFERENCE)).flatmap(
    lambda order: st.integers(0, len(order)).map(lambda n: tuple(order[:n]))
)


@given(HEADER)
def test_property_parse_accept_encoding(value: bytes) -> None:
    accepted = parse_accept_encoding(value)
    assert isinstance(accepted, dict)
    for coding, q in accepted.items():
        assert isinstance(coding, str) and coding
        assert coding == coding.lower()
        assert isinstance(q, float)
        assert 0.0 <= q <= 1.0


@given(HEADER, AVAILABLE)
def test_property_choose_encoding(value: bytes, available: tuple[str, ...]) -> None:
    accepted = parse_accept_encoding(value)
    chosen = choose_encoding(accepted, available)
    if chosen is None:
        return
    assert chosen in available

    def q(coding: str) -> float:
        return accepted.get(coding, accepted.get("*", 0.0))

    assert q(chosen) > 0
    assert all(q(other) <= q(chosen) for other in available)
    earlier = available[: available.index(chosen)]
    assert all(q(other) < q(chosen) for other in earlier)  # ties go to the server order
    assert accepted.get("identity", 0.0) <= q(chosen)


@given(
    st.dictionaries(
        st.sampled_from(["br", "zstd", "gzip", "*", "identity", "x"]), st.floats(0.0, 1.0)
    ),
    AVAILABLE,
)
def test_property_choose_encoding_on_any_ratings(
    accepted: dict[str, float], available: tuple[str, ...]
) -> None:
    chosen = choose_encoding(accepted, available)
    assert chosen is None or chosen in available
    if chosen is not None:
        assert accepted.get(chosen, accepted.get("*", 0.0)) > 0
