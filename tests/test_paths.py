"""parse_target: request-target decoding and normalisation, by table and by property."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohttp.errors import HTTPError
from zerohttp.static.paths import RequestPath, parse_target

# (target, segments, trailing_slash, query)
ACCEPTED: list[tuple[bytes, tuple[str, ...], bool, bytes]] = [
    # plain origin-form
    (b"/", (), True, b""),
    (b"/index.html", ("index.html",), False, b""),
    (b"/a/b/c.txt", ("a", "b", "c.txt"), False, b""),
    (b"/a/b/", ("a", "b"), True, b""),
    (b"/a//b", ("a", "b"), False, b""),
    (b"//a///b//", ("a", "b"), True, b""),
    (b"/a/./b", ("a", "b"), False, b""),
    (b"/a+b", ("a+b",), False, b""),
    (b"/a:b@c!$&'()*,;=~-_", ("a:b@c!$&'()*,;=~-_",), False, b""),
    # query is kept raw and never decoded or validated
    (b"/a?x=1&y=2", ("a",), False, b"x=1&y=2"),
    (b"/a?y=%zz%00%2e%2e/../..", ("a",), False, b"y=%zz%00%2e%2e/../.."),
    (b"/a?", ("a",), False, b""),
    (b"/a?b?c", ("a",), False, b"b?c"),
    (b"/?q", (), True, b"q"),
    (b"/dir/?q=1", ("dir",), True, b"q=1"),
    # absolute-form
    (b"http://host/a?b", ("a",), False, b"b"),
    (b"http://host/a/b/", ("a", "b"), True, b""),
    (b"HTTP://HOST", (), True, b""),
    (b"https://h", (), True, b""),
    (b"https://h?x=1", (), True, b"x=1"),
    (b"HtTpS://Host:8080/a/b/", ("a", "b"), True, b""),
    (b"http://user@host:80/x", ("x",), False, b""),
    # dot segments are resolved
    (b"/a/b/..", ("a",), True, b""),
    (b"/a/b/.", ("a", "b"), True, b""),
    (b"/a/../b", ("b",), False, b""),
    (b"/a/b/../../c", ("c",), False, b""),
    (b"/a/..", (), True, b""),
    (b"/a/%2e%2e", (), True, b""),
    (b"/a/%2E%2e/b", ("b",), False, b""),
    (b"/a/.%2e/b", ("b",), False, b""),
    (b"/a/%2e/b", ("a", "b"), False, b""),
    (b"/...", ("...",), False, b""),
    (b"/..a/a..", ("..a", "a.."), False, b""),
    # %2f is decoded, then normalised like any other slash
    (b"/a%2fb", ("a", "b"), False, b""),
    (b"/a%2Fb%2F", ("a", "b"), True, b""),
    (b"/a%2f..%2fb", ("b",), False, b""),
    (b"/a/b%2f%2e%2e", ("a",), True, b""),
    # exactly one round of decoding
    (b"/%252e", ("%2e",), False, b""),
    (b"/%252e%252e", ("%2e%2e",), False, b""),
    (b"/%252e%252e/x", ("%2e%2e", "x"), False, b""),
    (b"/%252f", ("%2f",), False, b""),
    (b"/100%25", ("100%",), False, b""),
    # percent-encoded and raw UTF-8
    (b"/a%20b", ("a b",), False, b""),
    (b"/%C3%A9t%C3%A9", ("\u00e9t\u00e9",), False, b""),
    (b"/caf\xc3\xa9", ("caf\u00e9",), False, b""),
    (b"/%F0%9F%98%80", ("\U0001f600",), False, b""),
    (b"/%E2%82%AC.txt", ("\u20ac.txt",), False, b""),
    # a leading // is just an empty segment, not an authority
    (b"//evil.example/", ("evil.example",), True, b""),
    (b"//evil.example", ("evil.example",), False, b""),
]


@pytest.mark.parametrize(("target", "segments", "trailing_slash", "query"), ACCEPTED)
def test_accepted_targets(
    target: bytes, segments: tuple[str, ...], trailing_slash: bool, query: bytes
) -> None:
    path = parse_target(target)
    assert path == RequestPath(segments, trailing_slash, query)
    assert path.relative == "/".join(segments)


REJECTED: list[bytes] = [
    # .. above the root
    b"/..",
    b"/../",
    b"/../etc/passwd",
    b"/a/../..",
    b"/a/../../b",
    b"/%2e%2e",
    b"/%2E%2E/etc/passwd",
    b"/.%2e",
    b"/%2e.",
    b"/a/..%2f..",
    b"/..%2f",
    b"/%2f..",
    b"http://h/../x",
    # malformed percent-escapes
    b"/%zz",
    b"/%4",
    b"/%",
    b"/a%",
    b"/a/%",
    b"/%4g",
    b"/%g4",
    b"/%%41",
    b"/%-1",
    b"/%zz?ok=1",
    # NUL
    b"/a\x00b",
    b"/a%00b",
    b"/%00",
    b"/x.txt%00.html",
    # control characters
    b"/a%01",
    b"/a\x01",
    b"/a\x1f",
    b"/a%1F",
    b"/a%7f",
    b"/a\x7f",
    b"/a\tb",
    b"/a%09b",
    b"/a%0d%0aSet-Cookie:x",
    b"/a\r\n",
    # backslash, raw and encoded
    b"/a\\b",
    b"/\\",
    b"/a%5cb",
    b"/a%5Cb",
    b"/..%5c..%5cwindows%5cwin.ini",
    b"/%5c%5cevil.example",
    # invalid UTF-8
    b"/%ff",
    b"/\xff",
    b"/%80",
    b"/%c3",
    b"/%c3/x",
    b"/%fe%ff",
    # overlong UTF-8
    b"/%c0%ae",
    b"/%c0%ae%c0%ae/x",
    b"/%c0%af",
    b"/%c1%9c",
    b"/%e0%80%ae",
    b"/%f0%80%80%ae",
    # UTF-8-encoded surrogates
    b"/%ed%a0%80",
    b"/%ed%bf%bf",
    b"/%ed%a0%bd%ed%b8%80",
    # fragments
    b"/a#b",
    b"/#",
    b"/a?b#c",
    b"http://h/a#x",
    # not an absolute path
    b"",
    b"*",
    b"foo",
    b"foo/bar",
    b"?x",
    b"#x",
    b"a/../b",
    b"http:/x",
    b"ftp://h/a",
    b"example.com:443",
]


@pytest.mark.parametrize("target", REJECTED)
def test_rejected_targets(target: bytes) -> None:
    with pytest.raises(HTTPError) as info:
        parse_target(target)
    assert info.value.status == 400


def test_absolute_form_query_without_path_keeps_query() -> None:
    assert parse_target(b"http://h?a/b") == RequestPath((), True, b"a/b")


@pytest.mark.parametrize("target", [b"http://h#x", b"http://h#x/y"])
def test_absolute_form_fragment_without_path_is_rejected(target: bytes) -> None:
    with pytest.raises(HTTPError) as info:
        parse_target(target)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("target", "hidden"),
    [
        (b"/", False),
        (b"/a/b.c", False),
        (b"/index.html", False),
        (b"/.env", True),
        (b"/.git/config", True),
        (b"/a/.git/config", True),
        (b"/a/b/.htaccess", True),
        (b"/...", True),
        (b"/%2egit/HEAD", True),
        (b"/a/.", False),
        (b"/.a/../b", False),
        (b"/a./b", False),
    ],
)
def test_hidden(target: bytes, hidden: bool) -> None:
    assert parse_target(target).hidden is hidden


@pytest.mark.parametrize(
    ("target", "url"),
    [
        (b"/", "/"),
        (b"/a/b/", "/a/b/"),
        (b"/a//b/./c", "/a/b/c"),
        (b"/a/b/..", "/a/"),
        (b"/a%20b", "/a%20b"),
        (b"/a b", "/a%20b"),
        (b"/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9"),
        (b"/caf\xc3\xa9/", "/caf%C3%A9/"),
        (b"/%F0%9F%98%80", "/%F0%9F%98%80"),
        (b"/%252e", "/%252e"),
        (b"/100%25", "/100%25"),
        (b"/a%3Fb", "/a%3Fb"),
        (b"/a%23b", "/a%23b"),
        (b"/a%22b%3Cc%3E", "/a%22b%3Cc%3E"),
        (b"/a:b@c!$&'()*+,;=~-_.", "/a:b@c!$&'()*+,;=~-_."),
        (b"/a?x=1&y=%20", "/a?x=1&y=%20"),
        (b"/?q", "/?q"),
        (b"http://host/a?b", "/a?b"),
        # open-redirect guard: never a protocol-relative URL
        (b"//evil.example/", "/evil.example/"),
        (b"//evil.example", "/evil.example"),
        (b"///evil.example//", "/evil.example/"),
        (b"/./evil.example", "/evil.example"),
        (b"/.//evil.example", "/evil.example"),
        (b"/a/..//evil.example/", "/evil.example/"),
        (b"/%2f%2fevil.example", "/evil.example"),
        (b"/%2F/evil.example/x", "/evil.example/x"),
    ],
)
def test_url_canonical_form(target: bytes, url: str) -> None:
    assert parse_target(target).url() == url


@pytest.mark.parametrize(
    ("target", "trailing_slash", "url"),
    [
        (b"/docs?x=1", True, "/docs/?x=1"),
        (b"/docs/", False, "/docs"),
        (b"/a%20b", True, "/a%20b/"),
        (b"//evil.example", True, "/evil.example/"),
        (b"/", True, "/"),
        (b"/", False, "/"),
    ],
)
def test_url_trailing_slash_override(target: bytes, trailing_slash: bool, url: str) -> None:
    assert parse_target(target).url(trailing_slash=trailing_slash) == url


# --- properties ------------------------------------------------------------------------------

_TOKENS = [
    b"/",
    b"//",
    b".",
    b"..",
    b"a",
    b"b.txt",
    b"%",
    b"%2e",
    b"%2E",
    b"%2f",
    b"%5c",
    b"%00",
    b"%25",
    b"%c0%ae",
    b"%e0%80%ae",
    b"%ed%a0%80",
    b"%c3%a9",
    b"%ff",
    b"%z",
    b"\xff",
    b"\xc3\xa9",
    b"\x00",
    b"\\",
    b"\x7f",
    b"\t",
    b"?",
    b"#",
    b"http://",
    b"HTTPS://h",
]

targets = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda b: b"/" + b, st.binary(max_size=64)),
    st.lists(st.sampled_from(_TOKENS), max_size=16).map(b"".join),
    st.lists(st.sampled_from(_TOKENS), max_size=16).map(lambda t: b"/" + b"".join(t)),
)


def _parse_or_none(target: bytes) -> RequestPath | None:
    try:
        return parse_target(target)
    except HTTPError as exc:
        assert exc.status == 400
        return None


@settings(max_examples=1000)
@given(targets)
def test_property_result_or_400(target: bytes) -> None:
    path = _parse_or_none(target)
    if path is None:
        return
    assert isinstance(path, RequestPath)
    for segment in path.segments:
        assert segment
        assert segment not in (".", "..")
        assert "/" not in segment
        assert "\\" not in segment
        assert "\x00" not in segment


@settings(max_examples=500)
@given(targets)
def test_property_stays_within_root(target: bytes) -> None:
    path = _parse_or_none(target)
    if path is None:
        return
    root = "/srv/www/root"
    joined = os.path.normpath(os.path.join(root, path.relative))
    assert joined == root or joined.startswith(root + "/")
    assert os.path.isabs(joined)


@settings(max_examples=500)
@given(targets)
def test_property_url_is_canonical(target: bytes) -> None:
    path = _parse_or_none(target)
    if path is None:
        return
    url = path.url()
    assert url.startswith("/")
    assert not url.startswith("//")
    assert "\\" not in url
    # without the query, the canonical URL is ASCII and parses back to the same path
    bare = RequestPath(path.segments, path.trailing_slash).url()
    assert bare.isascii()
    again = parse_target(bare.encode("ascii"))
    assert (again.segments, again.trailing_slash) == (path.segments, path.trailing_slash)


_FORBIDDEN = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) + "/\\"
safe_segments = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=_FORBIDDEN),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))


@settings(max_examples=500)
@given(st.lists(safe_segments, max_size=6), st.booleans())
def test_property_encoded_segments_round_trip(segments: list[str], slash: bool) -> None:
    target = "/" + "/".join(quote(s, safe="") for s in segments)
    if slash and segments:
        target += "/"
    path = parse_target(target.encode("ascii"))
    assert path.segments == tuple(segments)
    assert path.trailing_slash == (slash or not segments)
    # and the canonical URL built from those segments is read back the same way
    assert parse_target(path.url().encode("ascii")).segments == tuple(segments)


@pytest.mark.parametrize("target", [b"/a%c2%85b", b"/%c2%9f", b"/x%c2%80"])
def test_unicode_c1_controls_rejected(target: bytes) -> None:
    with pytest.raises(HTTPError) as info:
        parse_target(target)
    assert info.value.status == 400
