"""The --autoindex listing: ordering, escaping, links, sizes and dates."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.message.dates import http_date
from zerohttp.static.autoindex import Entry, render_listing, sort_entries

MTIME = 784111777.25
DATE = "Sun, 06 Nov 1994 08:49:37 GMT"


class Listing(HTMLParser):
    """Links (href, text), table rows (cell texts) and the title of a rendered page."""

    def __init__(self, page: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.title = ""
        self._href: str | None = None
        self._text: list[str] = []
        self._cell: list[str] | None = None
        self._in_title = False
        self.tags: list[str] = []
        self.feed(page.decode("utf-8"))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self._href = dict(attrs)["href"] or ""
            self._text = []
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text)))
            self._href = None
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data


ENTRIES = [
    Entry("zeta.txt", False, 12, MTIME),
    Entry("Beta", True, 4096, MTIME),
    Entry("alpha.txt", False, 0, MTIME + 60),
    Entry("alpha", True, 4096, MTIME + 120),
    Entry("Alpha.txt", False, 7, MTIME),
    Entry("gamma", True, 64, MTIME),
]


def test_sort_entries_directories_first_then_names() -> None:
    names = [e.name for e in sort_entries(ENTRIES)]
    assert names == ["alpha", "Beta", "gamma", "Alpha.txt", "alpha.txt", "zeta.txt"]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], []),
        ([Entry("b", False, 1, 0), Entry("a", False, 1, 0)], ["a", "b"]),
        ([Entry("file", False, 1, 0), Entry("zdir", True, 1, 0)], ["zdir", "file"]),
        ([Entry("b", False, 1, 0), Entry("B", False, 1, 0)], ["B", "b"]),  # exact tie-break
        ([Entry("B", False, 1, 0), Entry("a", False, 1, 0)], ["a", "B"]),  # case-insensitive
        ([Entry("Straße", False, 1, 0), Entry("STRASSE", False, 1, 0)], ["STRASSE", "Straße"]),
        ([Entry("10", False, 1, 0), Entry("9", False, 1, 0)], ["10", "9"]),
    ],
)
def test_sort_entries(entries: list[Entry], expected: list[str]) -> None:
    assert [e.name for e in sort_entries(entries)] == expected


def test_listing_rows_and_order() -> None:
    page = render_listing("/docs/", ENTRIES)
    listing = Listing(page)
    assert listing.title == "Index of /docs/"
    assert listing.links == [
        ("../", "../"),
        ("./alpha/", "alpha/"),
        ("./Beta/", "Beta/"),
        ("./gamma/", "gamma/"),
        ("./Alpha.txt", "Alpha.txt"),
        ("./alpha.txt", "alpha.txt"),
        ("./zeta.txt", "zeta.txt"),
    ]
    assert listing.rows == [
        ["Name", "Size", "Last modified"],
        ["../", "", ""],
        ["alpha/", "-", http_date(MTIME + 120)],
        ["Beta/", "-", DATE],
        ["gamma/", "-", DATE],
        ["Alpha.txt", "7", DATE],
        ["alpha.txt", "0", http_date(MTIME + 60)],
        ["zeta.txt", "12", DATE],
    ]
    assert http_date(MTIME + 60) == "Sun, 06 Nov 1994 08:50:37 GMT"


def test_listing_is_a_utf8_html_document() -> None:
    page = render_listing("/", [Entry("été.txt", False, 5, MTIME)])
    assert page.startswith(b"<!doctype html>\n")
    assert b'<meta charset="utf-8">' in page
    assert "été.txt".encode() in page
    assert Listing(page).links == [("./%C3%A9t%C3%A9.txt", "été.txt")]


def test_root_has_no_parent_link() -> None:
    listing = Listing(render_listing("/", ENTRIES[:1]))
    assert listing.title == "Index of /"
    assert listing.links == [("./zeta.txt", "zeta.txt")]


@pytest.mark.parametrize("url_path", ["/a/", "/a/b/c/", "/space%20dir/"])
def test_parent_link_below_root(url_path: str) -> None:
    listing = Listing(render_listing(url_path, []))
    assert listing.links == [("../", "../")]
    assert listing.title == f"Index of {url_path}"


def test_empty_directory() -> None:
    listing = Listing(render_listing("/empty/", []))
    assert listing.rows == [["Name", "Size", "Last modified"], ["../", "", ""]]


XSS = "<img src=x onerror=alert(1)>.txt"


def test_markup_in_a_name_is_escaped() -> None:
    page = render_listing("/", [Entry(XSS, False, 3, MTIME), Entry("<b>dir", True, 0, MTIME)])
    assert b"<img" not in page
    assert b"<b>" not in page
    assert b"&lt;img src=x onerror=alert(1)&gt;.txt" in page
    listing = Listing(page)
    assert "img" not in listing.tags and "b" not in listing.tags
    assert listing.links == [
        ("./%3Cb%3Edir/", "<b>dir/"),
        ("./%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt", XSS),
    ]


def test_markup_in_the_title_is_escaped() -> None:
    page = render_listing("/<script>alert(1)</script>/", [])
    assert b"<script" not in page
    assert Listing(page).title == "Index of /<script>alert(1)</script>/"


@pytest.mark.parametrize(
    ("name", "href"),
    [
        ("javascript:alert(1)", "./javascript%3Aalert%281%29"),
        ("JavaScript:alert(1)", "./JavaScript%3Aalert%281%29"),
        ("data:text/html,x", "./data%3Atext%2Fhtml%2Cx"),
        ("//evil.example", "./%2F%2Fevil.example"),
        ('a"b', "./a%22b"),
        ("a'b", "./a%27b"),
        ("a b&c", "./a%20b%26c"),
        ("100%.txt", "./100%25.txt"),
        ("q?x=1#frag", "./q%3Fx%3D1%23frag"),
        ("back\\slash", "./back%5Cslash"),
        ("tab\there", "./tab%09here"),
        ("new\nline", "./new%0Aline"),
        ("-_.~", "./-_.~"),
    ],
)
def test_names_are_percent_encoded_behind_dot_slash(name: str, href: str) -> None:
    page = render_listing("/", [Entry(name, False, 1, MTIME)])
    listing = Listing(page)
    assert listing.links == [(href, name)]
    hrefs = re.findall(rb'href="([^"]*)"', page)
    assert hrefs == [href.encode()]
    assert not any(h.lower().startswith(b"javascript:") for h in hrefs)


def test_directory_link_keeps_its_slash_outside_the_encoding() -> None:
    listing = Listing(render_listing("/", [Entry("a/b?", True, 0, MTIME)]))
    assert listing.links == [("./a%2Fb%3F/", "a/b?/")]


def test_sizes_and_dates() -> None:
    entries = [
        Entry("big.iso", False, 4_700_000_000, 0.0),
        Entry("dir", True, 123456, 2**31),
        Entry("frac", False, 1, 784111777.999),
    ]
    rows = Listing(render_listing("/", entries)).rows[1:]
    assert rows == [
        ["dir/", "-", "Tue, 19 Jan 2038 03:14:08 GMT"],
        ["big.iso", "4700000000", "Thu, 01 Jan 1970 00:00:00 GMT"],
        ["frac", "1", DATE],
    ]


def test_undecodable_file_name_does_not_break_the_listing() -> None:
    raw = b"caf\xe9.txt"  # Latin-1 name on a UTF-8 system
    name = raw.decode("utf-8", "surrogateescape")
    page = render_listing("/", [Entry(name, False, 1, MTIME), Entry("ok.txt", False, 2, MTIME)])
    hrefs = [href for href, _ in Listing(page).links]
    assert hrefs == ["./caf%E9.txt", "./ok.txt"]


# --- properties --------------------------------------------------------------------------------

NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=20,
)


@given(
    st.lists(
        st.builds(Entry, NAME, st.booleans(), st.integers(0, 2**42), st.floats(0, 2**32)),
        max_size=8,
        unique_by=lambda e: e.name,
    ),
    st.booleans(),
)
def test_property_every_name_links_to_itself(entries: list[Entry], at_root: bool) -> None:
    page = render_listing("/" if at_root else "/sub/", entries)
    listing = Listing(page)
    links = listing.links if at_root else listing.links[1:]
    if not at_root:
        assert listing.links[0] == ("../", "../")
    assert set(listing.tags) <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "a",
    }
    ordered = sort_entries(entries)
    assert len(links) == len(ordered)
    for (href, text), entry in zip(links, ordered, strict=True):
        suffix = "/" if entry.is_dir else ""
        assert href.startswith("./")
        assert re.fullmatch(r"\./[A-Za-z0-9%._~-]*/?", href), href
        assert unquote(href[2:], errors="strict") == entry.name + suffix
        assert text == entry.name + suffix
