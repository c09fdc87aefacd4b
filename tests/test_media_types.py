"""MediaTypes: file name to Content-Type, deterministic, with per-site overrides."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest

from zerohttp.static.media_types import DEFAULT_TYPE, MediaTypes


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("page.htm", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("mod.mjs", "text/javascript; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("logo.svg", "image/svg+xml; charset=utf-8"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("app.wasm", "application/wasm"),
        ("font.woff2", "font/woff2"),
        ("font.woff", "font/woff"),
        ("image.png", "image/png"),
        ("photo.jpg", "image/jpeg"),
        ("photo.webp", "image/webp"),
        ("doc.pdf", "application/pdf"),
        ("clip.mp4", "video/mp4"),
        ("archive.tar.gz", "application/gzip"),
    ],
)
def test_known_types(name: str, content_type: str) -> None:
    assert MediaTypes().content_type(name) == content_type


@pytest.mark.parametrize(
    "name",
    [
        "README",
        "Makefile",
        "file.unknownext",
        "file.",
        ".bashrc",  # a dotfile has no extension
        "dir.d/file",  # a dot in a directory name is not an extension
        "",
    ],
)
def test_unknown_and_missing_extension(name: str) -> None:
    assert MediaTypes().content_type(name) == DEFAULT_TYPE == "application/octet-stream"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("INDEX.HTML", "text/html; charset=utf-8"),
        ("Logo.PNG", "image/png"),
        ("App.Js", "text/javascript; charset=utf-8"),
        ("FONT.WOFF2", "font/woff2"),
    ],
)
def test_extension_is_case_insensitive(name: str, content_type: str) -> None:
    assert MediaTypes().content_type(name) == content_type


def test_path_with_directories_uses_final_extension() -> None:
    assert MediaTypes().content_type("assets/v1.2/app.css") == "text/css; charset=utf-8"


def test_override_text_type_gets_charset() -> None:
    types = MediaTypes({"foo": "text/x-foo"})
    assert types.content_type("a.foo") == "text/x-foo; charset=utf-8"
    assert types.content_type("A.FOO") == "text/x-foo; charset=utf-8"
    # the rest of the table is untouched
    assert types.content_type("a.png") == "image/png"


def test_override_non_text_type_gets_no_charset() -> None:
    assert MediaTypes({"bar": "application/x-bar"}).content_type("x.bar") == "application/x-bar"


@pytest.mark.parametrize("key", [".foo", "FOO", ".Foo"])
def test_override_key_is_normalised(key: str) -> None:
    assert MediaTypes({key: "text/x-foo"}).content_type("x.foo") == "text/x-foo; charset=utf-8"


def test_override_replaces_builtin() -> None:
    types = MediaTypes({"js": "application/javascript", "png": "image/x-custom"})
    assert types.content_type("a.js") == "application/javascript"
    assert types.content_type("a.png") == "image/x-custom"


def test_overrides_do_not_leak_between_instances() -> None:
    MediaTypes({"png": "image/x-custom"})
    assert MediaTypes().content_type("a.png") == "image/png"


def test_override_with_explicit_charset_not_doubled() -> None:
    types = MediaTypes({"txt": "text/plain; charset=iso-8859-1"})
    assert types.content_type("a.txt") == "text/plain; charset=iso-8859-1"


def test_independent_of_system_mime_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine's /etc/mime.types (here: a hostile one loaded globally) changes nothing."""
    for name in ("_db", "types_map", "common_types", "encodings_map", "suffix_map", "inited"):
        monkeypatch.setattr(mimetypes, name, getattr(mimetypes, name))
    monkeypatch.setattr(mimetypes, "_db", None)
    bogus = tmp_path / "mime.types"
    bogus.write_text("image/x-bogus png\ntext/x-bogus js\napplication/x-bogus html\n")
    mimetypes.init([str(bogus)])
    assert mimetypes.guess_type("a.png")[0] == "image/x-bogus"  # the global table did change

    types = MediaTypes()
    assert types.content_type("a.png") == "image/png"
    assert types.content_type("a.js") == "text/javascript; charset=utf-8"
    assert types.content_type("a.html") == "text/html; charset=utf-8"
