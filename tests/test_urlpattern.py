"""URL patterns and templates (``static/urlpattern.py``): Cloudflare Pages' splat and
placeholders, an absolute pattern's host, and templates filled with percent-encoded captures."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.static.urlpattern import compile_pattern, compile_template


@pytest.mark.parametrize(
    ("pattern", "path", "captures"),
    [
        ("/secure/page", "/secure/page", {}),
        ("/secure/page", "/secure/page/", None),  # exact: the trailing slash counts
        ("/static/*", "/static/a/b.css", {"splat": "a/b.css"}),
        ("/static/*", "/static/", {"splat": ""}),
        ("/static/*", "/static", None),
        ("/*", "/", {"splat": ""}),
        ("/*.jpg", "/a/b.jpg", {"splat": "a/b"}),
        ("/*.jpg", "/a/b.png", None),
        ("/movies/:title", "/movies/Up", {"title": "Up"}),
        ("/movies/:title", "/movies/Up/more", None),  # a placeholder stops at /
        ("/movies/:title", "/movies/", None),  # and matches at least one character
        (
            "/blog/:year/:slug/*",
            "/blog/2024/hi/x/y",
            {"year": "2024", "slug": "hi", "splat": "x/y"},
        ),
        ("/a:1", "/a:1", {}),  # ":" before a digit is a literal
        ("/caf%C3%A9", "/café", {}),  # a pattern's escapes are decoded like the path
        ("/a.b", "/aXb", None),  # literal characters are not regex syntax
    ],
)
def test_match(pattern: str, path: str, captures: dict[str, str] | None) -> None:
    assert compile_pattern(pattern).match(path) == captures


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("static/*", "starts with /"),
        ("/a/*/b/*", "only one *"),
        ("/:x/:x", "placeholder :x once"),
        ("/:splat", ":splat names what * matches"),
        ("https://example.com/*", "expected a path"),  # only _headers allows a host
    ],
)
def test_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        compile_pattern(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("http://example.com/*", "begins with https://"),
        ("https://example.com:8443/*", "a port cannot be matched"),
        ("https://*.example.com/", "* can only be used in the path"),
        ("https:///a", "names a host"),
    ],
)
def test_refused_absolute(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        compile_pattern(text, absolute=True)


def test_absolute_pattern_matches_the_host_any_scheme_or_port() -> None:
    pattern = compile_pattern("https://:project.pages.dev/*", absolute=True)
    assert pattern.match("/home", "myproject.pages.dev") == {
        "project": "myproject",
        "splat": "home",
    }
    assert pattern.match("/home", "a.b.pages.dev") is None  # a host placeholder stops at "."
    assert pattern.match("/home", "custom.domain") is None
    assert pattern.match("/home", None) is None
    assert compile_pattern("https://Example.com", absolute=True).match("/", "example.com") == {}


def test_prefix_is_the_literal_start() -> None:
    assert compile_pattern("/blog/:slug/*").prefix == "/blog/"
    assert compile_pattern("/exact").prefix == "/exact"
    assert not compile_pattern("/exact").dynamic and compile_pattern("/a/*").dynamic


def test_template_fills_encoded_captures_and_keeps_other_words() -> None:
    template = compile_template("/media/:title?x=:other#:title", frozenset({"title"}))
    assert (
        template.fill({"title": "Star Wars\r\n/é"})
        == "/media/Star%20Wars%0D%0A/%C3%A9?x=:other#Star%20Wars%0D%0A/%C3%A9"
    )
    assert (
        compile_template("default-src https:", frozenset({"splat"})).literal == "default-src https:"
    )
    assert compile_template("/:splat", None).fill({}) == "/"


PATH_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")


@given(st.text(alphabet=st.sampled_from("/ab:*xyz_.%9"), max_size=30))
def test_compile_raises_only_value_error(text: str) -> None:
    try:
        pattern = compile_pattern(text, absolute=True)
    except ValueError:
        return
    assert pattern.text == text


@given(
    st.lists(st.text(alphabet="abc.-~ é", min_size=1, max_size=6), min_size=1, max_size=4),
    st.text(alphabet="abc/é ", max_size=12),
)
def test_a_literal_matches_itself_and_a_splat_captures_the_rest(
    segments: list[str], rest: str
) -> None:
    literal = "/" + "/".join(segments)
    assert compile_pattern(literal).match(literal) == {}
    assert compile_pattern(literal + "/*").match(f"{literal}/{rest}") == {"splat": rest}


@given(st.text(PATH_CHARS, max_size=20))
def test_filled_template_is_printable_ascii(value: str) -> None:
    filled = compile_template("/x/:name/y", frozenset({"name"})).fill({"name": value})
    assert re.fullmatch(r"[\x21-\x7e]*", filled)
