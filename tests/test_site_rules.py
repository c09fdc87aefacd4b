"""Site rules without sockets: the ``_headers`` and ``_redirects`` parsers (errors name file
and line), what ``RuleSet`` decides for a path, how fields merge into a response, and a
differential table against the examples of Cloudflare Pages' own documentation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.errors import ConfigError
from zerohttp.message.response import Response, rendered
from zerohttp.static.options import StaticOptions
from zerohttp.static.rules.errors import RuleSyntaxError
from zerohttp.static.rules.headers_file import parse_headers
from zerohttp.static.rules.matching import RuleSet, with_query
from zerohttp.static.rules.redirects_file import parse_redirects


def rules(
    headers: str = "", redirects: str = "", always: tuple[tuple[str, str], ...] = ()
) -> RuleSet:
    return RuleSet(
        parse_headers(headers, "_headers"), parse_redirects(redirects, "_redirects"), always
    )


def fields_for(ruleset: RuleSet, path: bytes, host: str | None = None) -> dict[str, str]:
    decision = ruleset.decide(path, host)
    assert decision.fields is not None
    return {name: value for name, value in decision.fields.added}


# --- Cloudflare Pages' documented examples (developers.cloudflare.com/pages/configuration) ---

CF_HEADERS = """\
# This is a comment
/secure/page
  X-Frame-Options: DENY
  X-Content-Type-Options: nosniff
  Referrer-Policy: no-referrer

/static/*
  Access-Control-Allow-Origin: *
  X-Robots-Tag: nosnippet

https://myproject.pages.dev/*
  X-Robots-Tag: noindex
"""

SECURE = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [  # the table under "An incoming request which matches multiple rules' URL patterns"
        ("custom.domain", b"/secure/page", SECURE),
        (
            "custom.domain",
            b"/static/image.jpg",
            {"Access-Control-Allow-Origin": "*", "X-Robots-Tag": "nosnippet"},
        ),
        ("myproject.pages.dev", b"/home", {"X-Robots-Tag": "noindex"}),
        ("myproject.pages.dev", b"/secure/page", {**SECURE, "X-Robots-Tag": "noindex"}),
        (
            "myproject.pages.dev",
            b"/static/styles.css",
            {"Access-Control-Allow-Origin": "*", "X-Robots-Tag": "nosnippet, noindex"},
        ),
    ],
)
def test_cloudflare_headers_table(host: str, path: bytes, expected: dict[str, str]) -> None:
    assert fields_for(rules(CF_HEADERS), path, host) == expected


def test_cloudflare_detach_example() -> None:
    ruleset = rules(
        "/*\n  Content-Security-Policy: default-src 'self';\n\n"
        "/*.jpg\n  ! Content-Security-Policy\n"
    )
    assert fields_for(ruleset, b"/index.html") == {"Content-Security-Policy": "default-src 'self';"}
    jpg = ruleset.decide(b"/a/b.jpg").fields
    assert jpg is not None and jpg.added == () and jpg.names == {"content-security-policy"}


def test_cloudflare_placeholder_examples() -> None:
    ruleset = rules('/movies/:title\n  x-movie-name: You are watching ":title"\n')
    assert fields_for(ruleset, b"/movies/Up") == {"x-movie-name": 'You are watching "Up"'}
    cors = rules(
        "https://:project.pages.dev/*\n  Access-Control-Allow-Origin: https://staging.:project.pages.dev/\n"
    )
    assert fields_for(cors, b"/x", "site.pages.dev") == {
        "Access-Control-Allow-Origin": "https://staging.site.pages.dev/"
    }


CF_REDIRECTS = """\
/home301 / 301
/home302 / 302
/querystrings /?query=string 301
/twitch https://twitch.tv
/trailing /trailing/ 301
/notrailing/ /nottrailing 301
/page/ /page2/#fragment 301
/blog/* https://blog.my.domain/:splat # Blog migration
/products/:code/:name /products?code=:code&name=:name
/movies/:title /media/:title
/a /b 200
/b /c 200
"""


@pytest.mark.parametrize(
    ("target", "status", "location"),
    [  # the complete example, splats, placeholders and proxying of the _redirects page
        (b"/home301", 301, "/"),
        (b"/home302", 302, "/"),
        (b"/querystrings", 301, "/?query=string"),
        (b"/twitch", 301, "https://twitch.tv"),  # zerohttp's default is 301 (Cloudflare's 302)
        (b"/trailing", 301, "/trailing/"),
        (b"/trailing/", 0, ""),
        (b"/notrailing/", 301, "/nottrailing"),
        (b"/page/", 301, "/page2/#fragment"),
        (b"/blog/2024/hello", 301, "https://blog.my.domain/2024/hello"),
        (b"/products/42/mug", 301, "/products?code=42&name=mug"),
        (b"/movies/Up", 301, "/media/Up"),
        (b"/a", 200, "/b"),  # a rewrite serves /b ...
        (b"/b", 200, "/c"),  # ... and is not followed again: /a never becomes /c
        (b"/elsewhere", 0, ""),
    ],
)
def test_cloudflare_redirects_table(target: bytes, status: int, location: str) -> None:
    decision = rules(redirects=CF_REDIRECTS).decide(target)
    assert (decision.status, decision.target) == (status, location)


# --- _headers --------------------------------------------------------------------------


def test_blocks_join_in_file_order_and_detach_removes_what_came_before() -> None:
    ruleset = rules(
        "/*\n  X-A: one\n  X-B: gone\n/docs/*\n  x-a: two\n  ! X-B\n/docs/new\n  X-B: back\n",
        always=(("X-A", "zero"),),
    )
    assert fields_for(ruleset, b"/docs/new") == {"X-A": "zero, one, two", "X-B": "back"}
    assert fields_for(ruleset, b"/other") == {"X-A": "zero, one", "X-B": "gone"}


def test_fields_replace_the_responses_own_and_keep_the_rendered_head_fresh() -> None:
    ruleset = rules("/*\n  Cache-Control: no-store\n  ! X-Content-Type-Options\n  X-New: 1\n")
    head = rendered(
        (
            ("Content-Length", "3"),
            ("Cache-Control", "max-age=60"),
            ("X-Content-Type-Options", "nosniff"),
        )
    )
    decision = ruleset.decide(b"/f")
    assert decision.fields is not None
    for _ in range(2):  # the second merge is the kept one
        response = Response(200, head.fields, b"abc", False, head)
        decision.fields.apply(response)
        assert response.fields == (
            ("Content-Length", "3"),
            ("Cache-Control", "no-store"),
            ("X-New", "1"),
        )
        assert (
            response.field_lines()
            == b"Content-Length: 3\r\nCache-Control: no-store\r\nX-New: 1\r\n"
        )
    changed = Response(200, head.fields, b"abc", False, head)
    changed.set_field("X-Later", "set after rendering")  # the rendering no longer applies
    decision.fields.apply(changed)
    assert changed.field("X-Later") == "set after rendering"
    assert b"X-Later: set after rendering\r\n" in changed.field_lines()
    plain = Response(404, (("Content-Length", "0"),))
    decision.fields.apply(plain)
    assert plain.fields == (("Content-Length", "0"), ("Cache-Control", "no-store"), ("X-New", "1"))


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("  X-A: 1\n", 1, "before any URL pattern"),
        ("/a\n  X-A 1\n", 2, "expected Name: value"),
        ("/a\n\n  Bad Name: 1\n", 3, "must be a token"),
        ("/a\n  X-A: one\r\n  X-B: bell\x07\n", 3, "printable ASCII"),
        ("/a\n  Content-Length: 5\n", 2, "zerohttp sets this field itself"),
        ("/a\n  ! ETag\n", 2, "zerohttp sets this field itself"),
        ("/a\n  Transfer-Encoding: chunked\n", 2, "zerohttp sets this field itself"),
        ("# c\nstatic/*\n  X-A: 1\n", 2, "starts with /"),
        ("/a/*/*\n", 1, "only one *"),
    ],
)
def test_headers_errors_name_file_and_line(text: str, line: int, why: str) -> None:
    with pytest.raises(RuleSyntaxError, match=why) as caught:
        parse_headers(text, "/srv/_headers")
    assert (caught.value.source, caught.value.line) == ("/srv/_headers", line)
    assert str(caught.value).startswith(f"/srv/_headers line {line}: ")


# --- _redirects ------------------------------------------------------------------------


def test_first_match_wins_across_literal_and_dynamic_lines() -> None:
    ruleset = rules(redirects="/x/* /dyn 302\n/x/a /lit\n/y /lit2\n/:any /catch 307\n")
    assert ruleset.decide(b"/x/a").target == "/dyn"  # the earlier dynamic line
    assert ruleset.decide(b"/y").target == "/lit2"  # the earlier literal line
    assert (ruleset.decide(b"/z").status, ruleset.decide(b"/z").target) == (307, "/catch")


def test_a_redirect_gets_only_the_always_fields() -> None:
    ruleset = rules(
        "/*\n  X-Page: 1\n", "/old /new\n", (("Strict-Transport-Security", "max-age=60"),)
    )
    decision = ruleset.decide(b"/old")
    response = decision.redirect(b"a=1")
    assert response.status == 301
    assert response.field("Location") == "/new?a=1"
    assert response.field("Strict-Transport-Security") == "max-age=60"
    assert response.field("X-Page") is None


def test_paths_are_matched_decoded_and_captures_reencoded() -> None:
    ruleset = rules(redirects="/caf%C3%A9/* /b/:splat\n")
    assert ruleset.decide(b"/caf%c3%a9/x%20y/../z").target == "/b/z"
    assert ruleset.decide(b"/caf%C3%A9/a%0Db").status == 0  # a control character: 400, no rule


@pytest.mark.parametrize(
    ("target", "query", "expected"),
    [
        ("/new", b"", "/new"),
        ("/new", b"a=1&b", "/new?a=1&b"),
        ("/new?x=1", b"a=1", "/new?x=1&a=1"),
        ("/new#top", b"a=1", "/new?a=1#top"),
        ("https://e.example/p?x#f", b"a b\r\n", "https://e.example/p?x&a%20b%0D%0A#f"),
    ],
)
def test_with_query(target: str, query: bytes, expected: str) -> None:
    assert with_query(target, query) == expected


def test_to_is_quoted_for_a_head() -> None:
    (rule,) = parse_redirects("/a /ü?q=é\n", "_redirects")
    assert rule.to.fill({}) == "/%C3%BC?q=%C3%A9"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("/a\n", "expected FROM TO"),
        ("/a /b 301 Country=us\n", "conditions are not supported"),
        ("/a /b 404\n", "expected 301, 302, 303, 307, 308 or 200"),
        ("/a /b 200!\n", "expected 301"),
        ("/shop?id=1 /b\n", "a query is not matched"),
        ("a /b\n", "starts with /"),
        ("/a b\n", "TO is a path"),
        ("/a https://elsewhere.example/ 200\n", "serves a path of this site"),
        ("/a /../etc/passwd 200\n", "a rewrite cannot serve it"),
        ("/a /x/../../etc 200\n", "a rewrite cannot serve it"),
        ("/a /x/../y 200\n", "cannot leave ROOT"),
        ("/a /.env 200\n", "hidden or rules file"),
        ("/a /_headers 200\n", "hidden or rules file"),
        ("/a/* /.git/:splat 200\n", "hidden or rules file"),
    ],
)
def test_redirects_errors_name_file_and_line(text: str, why: str) -> None:
    with pytest.raises(RuleSyntaxError, match=why) as caught:
        parse_redirects("# first\n\n" + text, "/srv/_redirects")
    assert caught.value.line == 3


def test_comments_and_blank_lines() -> None:
    parsed = parse_redirects("# c\n\n  /a /b 302 # moved\n/c /d#frag\n", "_redirects")
    assert [(r.source.text, r.to.fill({}), r.status, r.line) for r in parsed] == [
        ("/a", "/b", 302, 3),
        ("/c", "/d#frag", 301, 4),
    ]


# --- the settings ----------------------------------------------------------------------


def test_settings_rules_and_header_are_checked() -> None:
    StaticOptions(
        header=("Strict-Transport-Security: max-age=63072000",), header_rules=("/*", "  X-A: 1")
    )
    with pytest.raises(
        ConfigError, match="--header 'Content-Length: 5': zerohttp sets this field itself"
    ):
        StaticOptions(header=("Content-Length: 5",))
    with pytest.raises(ConfigError, match=r"header_rules line 2: 'X A': .*token"):
        StaticOptions(header_rules=("/*", "  X A: 1"))
    with pytest.raises(ConfigError, match="redirect_rules line 1: status '999'"):
        StaticOptions(redirect_rules=("/a /b 999",))


# --- properties -------------------------------------------------------------------------

LINE_PIECES = st.sampled_from(
    [
        "/",
        "/a",
        "/:x",
        "*",
        " ",
        "  ",
        "\t",
        ":",
        "!",
        "X-A",
        ": v",
        "#",
        "301",
        "200",
        "https://",
        "\n",
        "..",
        "é",
        "\r",
        "\x00",
    ]
)
TEXTS = st.lists(LINE_PIECES, max_size=40).map("".join) | st.text(max_size=200)


@given(TEXTS)
def test_headers_parser_raises_only_its_error(text: str) -> None:
    try:
        blocks = parse_headers(text, "_headers")
    except RuleSyntaxError as exc:
        assert exc.source == "_headers" and 1 <= exc.line <= len(text.splitlines())
        return
    ruleset = RuleSet(blocks, ())
    ruleset.decide(b"/a/x")  # and what parsed can be matched


@given(TEXTS)
def test_redirects_parser_raises_only_its_error(text: str) -> None:
    try:
        parsed = parse_redirects(text, "_redirects")
    except RuleSyntaxError as exc:
        assert exc.source == "_redirects" and 1 <= exc.line <= len(text.splitlines())
        return
    decision = RuleSet((), parsed).decide(b"/a/x")
    assert "\r" not in decision.target and "\n" not in decision.target
