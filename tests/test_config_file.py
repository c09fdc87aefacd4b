"""The TOML settings file (``--config``), over parsed data: types, unknown keys, relative
paths, and the ``[[headers]]``/``[[redirects]]`` tables as lines of ``_headers`` and
``_redirects``; then reading a file, and the precedence command line > environment > file.
The process itself (a server started from a file, one-line errors) is in
``test_config_file_e2e.py``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from zerohttp.cli import (
    OPTION_GROUPS,
    build_parser,
    ignored_settings,
    names_an_address,
    parse_config,
)
from zerohttp.config import Config
from zerohttp.config_file import (
    KEYS,
    PATH_FIELDS,
    REDIRECT_STATUSES,
    header_block,
    load,
    read,
    redirect_line,
    settings,
)
from zerohttp.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "site.toml"
SOURCE = "site.toml"


def error(data: dict[str, Any], base: str = "") -> str:
    with pytest.raises(ConfigError) as raised:
        settings(data, SOURCE, base)
    return str(raised.value)


# --- keys and their types -------------------------------------------------------------------


def toml_default(field: dataclasses.Field[Any]) -> Any:
    """The field's default as the TOML parser hands it over (an array is a list)."""
    default = getattr(Config(), field.name)
    return list(default) if isinstance(default, tuple) else default


@pytest.mark.parametrize("name", KEYS)
def test_every_setting_is_a_key(name: str) -> None:
    """Generated from the fields: each default, written in the file, is the default again."""
    field = next(f for f in dataclasses.fields(Config) if f.name == name)
    found = settings({name: toml_default(field)}, SOURCE)
    assert Config(**found) == Config()
    assert type(found[name]) is type(getattr(Config(), name))


def test_keys_are_the_options() -> None:
    options = {name for _, metavars in OPTION_GROUPS for name in metavars}
    assert set(KEYS) == options - {"config"}
    assert "header_rules" not in KEYS and "redirect_rules" not in KEYS


@pytest.mark.parametrize(
    "data, message",
    [
        ({"port": "80"}, 'site.toml: port: expected an integer, got "80"'),
        ({"port": 80.0}, "site.toml: port: expected an integer, got 80.0"),
        ({"port": True}, "site.toml: port: expected an integer, got true"),
        ({"port": [80]}, "site.toml: port: expected an integer, got an array"),
        ({"port": {"a": 1}}, "site.toml: port: expected an integer, got a table"),
        ({"autoindex": "yes"}, 'site.toml: autoindex: expected true or false, got "yes"'),
        ({"autoindex": 1}, "site.toml: autoindex: expected true or false, got 1"),
        ({"host": 127}, "site.toml: host: expected a string, got 127"),
        ({"uds_mode": 660}, "site.toml: uds_mode: expected a string, got 660"),
        ({"keepalive_timeout": "5"}, 'site.toml: keepalive_timeout: expected a number, got "5"'),
        ({"keepalive_timeout": False}, "site.toml: keepalive_timeout: expected a number, got "
         "false"),
        ({"index": 1}, "site.toml: index: expected a string or an array of strings, got 1"),
        ({"mime": ["md=text/markdown", 2]}, "site.toml: mime: expected a string or an array of "
         "strings, got an array"),
        ({"access_log": "jsn"}, 'site.toml: access_log: expected one of off, common, combined, '
         'json, got "jsn"'),
        ({"loop": "trio"}, 'site.toml: loop: expected one of auto, uvloop, asyncio, got "trio"'),
    ],
)  # fmt: skip
def test_wrong_type_names_key_and_file(data: dict[str, Any], message: str) -> None:
    assert error(data) == message


def test_a_date_is_shown_as_written() -> None:
    import datetime

    assert error({"port": datetime.date(1979, 5, 27)}) == (
        "site.toml: port: expected an integer, got 1979-05-27"
    )


def test_long_values_are_shortened() -> None:
    message = error({"port": "x" * 500})
    assert message == 'site.toml: port: expected an integer, got "' + "x" * 56 + "..."


def test_values_as_the_fields_take_them() -> None:
    found = settings(
        {
            "keepalive_timeout": 5,  # an integer where seconds are asked for
            "index": "home.html",  # one string is one item
            "compress": "zstd, gzip",  # a comma list, written as on the command line
            "precompressed": "none",
            "header": "X-A: a, b",  # a repeatable option's string is one entry: no split
            "mime": ["md=text/markdown", "log=text/plain"],
            "access_log": "JSON",  # choices in any case, as the flag
            "cors_allow_origin": [],
        },
        SOURCE,
    )
    assert found == {
        "keepalive_timeout": 5.0,
        "index": ("home.html",),
        "compress": ("zstd", "gzip"),
        "precompressed": (),
        "header": ("X-A: a, b",),
        "mime": ("md=text/markdown", "log=text/plain"),
        "access_log": "json",
        "cors_allow_origin": (),
    }
    assert type(found["keepalive_timeout"]) is float


@pytest.mark.parametrize(
    "key, message",
    [
        ("prot", "site.toml: prot: unknown setting; did you mean port?"),
        ("hots", "site.toml: hots: unknown setting; did you mean host?"),
        ("access-log", "site.toml: access-log: unknown setting; did you mean access_log?"),
        ("Port", "site.toml: Port: unknown setting; did you mean port?"),
        ("acces_log_file", "site.toml: acces_log_file: unknown setting; did you mean "
         "access_log_file?"),
        ("header", None),  # a key: no error
        ("heders", "site.toml: heders: unknown setting; did you mean headers?"),
        ("quux", "site.toml: quux: unknown setting"),
        ("config", "site.toml: config: a settings file cannot name another one (give --config "
         "once)"),
        ("header_rules", "site.toml: header_rules: not a key of the file: write [[headers]] "
         "tables"),
        ("redirect_rules", "site.toml: redirect_rules: not a key of the file: write "
         "[[redirects]] tables"),
        ("check", "site.toml: check: unknown setting"),
    ],
)  # fmt: skip
def test_unknown_key_names_key_and_file(key: str, message: str | None) -> None:
    value = ["X-A: b"] if key == "header" else 1
    if message is None:
        settings({key: value}, SOURCE)
    else:
        assert error({key: value}) == message


# --- relative paths: from the file's directory -------------------------------------------------


def test_path_fields_are_the_file_and_directory_options() -> None:
    """Every option whose argument is a FILE, DIR or ROOT (or a socket PATH) is resolved."""
    metavars = {name: metavar for _, group in OPTION_GROUPS for name, metavar in group.items()}
    named = {n for n, m in metavars.items() if m in ("FILE", "DIR", "ROOT")} - {"config"}
    assert set(PATH_FIELDS) == named | {"uds"}
    assert metavars["mount"].endswith("=DIR")


@pytest.mark.parametrize("name", PATH_FIELDS)
def test_relative_paths_start_from_the_files_directory(name: str) -> None:
    assert settings({name: "x/y"}, SOURCE, "/srv/site")[name] == "/srv/site/x/y"
    assert settings({name: "/abs/y"}, SOURCE, "/srv/site")[name] == "/abs/y"
    assert settings({name: ""}, SOURCE, "/srv/site")[name] == ""
    assert settings({name: "x/y"}, SOURCE, "")[name] == "x/y"  # site.toml in the cwd


def test_mount_directories_start_from_the_files_directory() -> None:
    found = settings({"mount": ["/static=public", "/abs=/var/www", "bad"]}, SOURCE, "/srv")
    assert found["mount"] == ("/static=/srv/public", "/abs=/var/www", "bad")


def test_other_strings_are_not_paths() -> None:
    found = settings(
        {"app": "main:app", "health_path": "/healthz", "cache_control": "x"}, "s", "/b"
    )
    assert found == {"app": "main:app", "health_path": "/healthz", "cache_control": "x"}


# --- [[headers]] and [[redirects]] -----------------------------------------------------------


def test_headers_tables_are_headers_blocks() -> None:
    found = settings(
        {
            "headers": [
                {"for": "/*", "set": {"X-Frame-Options": "DENY", "X-Empty": ""}},
                {"for": "/docs/:page", "remove": ["X-Frame-Options"],
                 "set": {"X-Frame-Options": "SAMEORIGIN"}},
                {"for": "/api/*", "remove": "Server"},
            ]
        },
        SOURCE,
    )  # fmt: skip
    assert found == {
        "header_rules": (
            "/*",
            "  X-Frame-Options: DENY",
            "  X-Empty:",
            "/docs/:page",
            "  ! X-Frame-Options",
            "  X-Frame-Options: SAMEORIGIN",
            "/api/*",
            "  ! Server",
        )
    }


def test_redirects_tables_are_redirects_lines() -> None:
    found = settings(
        {
            "redirects": [
                {"from": "/old/*", "to": "/new/:splat"},
                {"from": "/b/:slug", "to": "https://blog.example.com/:slug?x=1", "status": 302},
                {"from": "/app/*", "to": "/index.html", "status": 200},
            ]
        },
        SOURCE,
    )
    assert found == {
        "redirect_rules": (
            "/old/* /new/:splat 301",
            "/b/:slug https://blog.example.com/:slug?x=1 302",
            "/app/* /index.html 200",
        )
    }


TOKEN = "a header field name must be a token (letters, digits, !#$%&'*+-.^_`|~)"
NO_SPACE = "a URL pattern has no space or control character"
PRINTABLE = "a header field value must be printable ASCII (no CR, LF or control character)"
A_SETTING = (
    "a setting inside a table: settings go above the first [[headers]] or [[redirects]] line"
)


@pytest.mark.parametrize(
    "tables, message",
    [
        ({"for": "/a"}, "[2]: sets and removes nothing (give set or remove)"),
        ({"set": {"A": "b"}}, '[2]: no for = "/pattern"'),
        ({"for": "a/*", "set": {"A": "b"}}, "[2].for: 'a/*': a URL pattern starts with /"),
        ({"for": "/:a/:a", "set": {}}, "[2].for: '/:a/:a': a pattern can use placeholder :a once"),
        ({"for": "/a b", "set": {"A": "b"}}, f'[2].for: "/a b": {NO_SPACE}'),
        ({"for": "/a\n/b", "set": {"A": "b"}}, f'[2].for: "/a\\n/b": {NO_SPACE}'),
        ({"for": "/a\u2028b", "set": {"A": "b"}}, f'[2].for: "/a\u2028b": {NO_SPACE}'),
        ({"for": 1, "set": {"A": "b"}}, "[2].for: expected a URL pattern, got 1"),
        ({"for": "/a", "set": "A: b"}, '[2].set: expected a table of NAME = VALUE, got "A: b"'),
        ({"for": "/a", "set": {"A": 1}}, "[2].set: A: expected a string, got 1"),
        ({"for": "/a", "set": {"A": "b\r\nX-Evil: 1"}},
         f'[2].set: A: "b\\r\\nX-Evil: 1": {PRINTABLE}'),
        ({"for": "/a", "set": {"A": " b"}},
         '[2].set: A: " b": a header field value cannot start or end with a space'),
        ({"for": "/a", "set": {"A B": "b"}}, f'[2].set: "A B": {TOKEN}'),
        ({"for": "/a", "set": {"!x": "b"}}, '[2].set: "!x": a header field name starting '
         "with ! reads as a removal in _headers"),
        ({"for": "/a", "remove": [1]},
         "[2].remove: expected an array of header names, got an array"),
        ({"for": "/a", "remove": ["A:"]}, f'[2].remove: "A:": {TOKEN}'),
        ({"for": "/a", "sett": {"A": "b"}}, "[2].sett: unknown key; did you mean set?"),
        ({"for": "/a", "set": {"A": "b"}, "port": 1}, f"[2].port: {A_SETTING}"),
    ],
)  # fmt: skip
def test_bad_headers_table_names_its_index(tables: dict[str, Any], message: str) -> None:
    good = {"for": "/", "set": {"A": "b"}}
    assert error({"headers": [good, tables]}) == f"site.toml: headers{message}"


TARGET = (
    "must be a path (/new/:splat) or an absolute http(s) URL, without spaces or control characters"
)
STATUSES = "expected one of 200, 301, 302, 303, 307, 308, got"


@pytest.mark.parametrize(
    "table, message",
    [
        ({"to": "/b"}, '[1]: no from = "/pattern"'),
        ({"from": "/a"}, "[1].to: expected a path or an absolute URL, got nothing"),
        ({"from": "/a", "to": 5}, "[1].to: expected a path or an absolute URL, got 5"),
        ({"from": "/a", "to": "/b c"}, f'[1].to: "/b c": {TARGET}'),
        ({"from": "/a", "to": "/b\r\n/c"}, f'[1].to: "/b\\r\\n/c": {TARGET}'),
        ({"from": "/a", "to": "//evil.example"}, f'[1].to: "//evil.example": {TARGET}'),
        ({"from": "/a", "to": "javascript:alert(1)"}, f'[1].to: "javascript:alert(1)": {TARGET}'),
        ({"from": "/a", "to": "b"}, f'[1].to: "b": {TARGET}'),
        ({"from": "/a", "to": "/b", "status": 404}, f"[1].status: {STATUSES} 404"),
        ({"from": "/a", "to": "/b", "status": "301"}, f'[1].status: {STATUSES} "301"'),
        ({"from": "/a", "to": "/b", "status": True}, f"[1].status: {STATUSES} true"),
        ({"from": "/a", "to": "/b", "code": 302}, "[1].code: unknown key"),
        ({"from": "/a", "too": "/b"}, "[1].too: unknown key; did you mean to?"),
        ({"from": "a", "to": "/b"}, "[1].from: 'a': a URL pattern starts with /"),
        ({"from": "/a b", "to": "/b"}, f'[1].from: "/a b": {NO_SPACE}'),
    ],
)  # fmt: skip
def test_bad_redirects_table_names_its_index(table: dict[str, Any], message: str) -> None:
    assert error({"redirects": [table]}) == f"site.toml: redirects{message}"


@pytest.mark.parametrize("key", ["headers", "redirects"])
@pytest.mark.parametrize(
    "value, shown", [({"for": "/"}, "a table"), ("/a", '"/a"'), ([1], "an array")]
)
def test_tables_must_be_arrays_of_tables(key: str, value: Any, shown: str) -> None:
    """``[headers]`` (one table) instead of ``[[headers]]`` is said as such."""
    assert error({key: value}) == f"site.toml: {key}: expected [[{key}]] tables, got {shown}"


# --- the translation, for any input: the rules come back, and no line is smuggled in ---------

# text with the characters that could break a line or a field: CR, LF, the other line
# breaks str.splitlines knows, spaces, colons, '!' and '#'
TRICKY = st.text(
    alphabet=st.sampled_from(list("aZ09-_/:*!# \t\r\n\x0b\x0c\x1c\x85\u2028.é=,;'\""))
    | st.characters(),
    max_size=12,
)
# mostly well-formed, so that one tricky field among good ones is tried often
PATTERNS = st.one_of(
    st.sampled_from(["/", "/a/*", "/:x/b", "/docs/:page/*"]),
    TRICKY.map("/".__add__),
    TRICKY.map("/a/".__add__),
    TRICKY,
)
TARGETS = st.one_of(PATTERNS, TRICKY.map("https://h/".__add__), st.just("https://h/:splat"))
NAMES = st.one_of(st.sampled_from(["X-A", "Cache-Control", "!x", "a!"]), TRICKY)
VALUES = st.one_of(st.sampled_from(["v", "a, b", "max-age=1", "x: y", ""]), TRICKY)


def read_headers(lines: tuple[str, ...]) -> list[tuple[str, list[str], dict[str, str]]]:
    """A tiny ``_headers`` reader (Cloudflare's syntax) for the round trip."""
    blocks: list[tuple[str, list[str], dict[str, str]]] = []
    for line in lines:
        if not line.startswith((" ", "\t")):
            blocks.append((line, [], {}))
        elif line.strip().startswith("!"):
            blocks[-1][1].append(line.strip()[1:].strip())
        else:
            name, _, value = line.strip().partition(":")
            blocks[-1][2][name.strip()] = value.strip()
    return blocks


@hypothesis_settings(max_examples=300)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"for": PATTERNS, "set": st.dictionaries(NAMES, VALUES, min_size=1, max_size=2)},
            optional={
                "remove": st.lists(NAMES, max_size=2),
            },
        ),
        min_size=1,
        max_size=2,
    )
)
def test_headers_round_trip(tables: list[dict[str, Any]]) -> None:
    try:
        lines = settings({"headers": tables}, SOURCE).get("header_rules", ())
    except ConfigError:
        return
    text = "\n".join(lines)
    assert text.splitlines() == list(lines), "a value made a line of its own"
    expected = [(t["for"], list(t.get("remove", [])), dict(t.get("set", {}))) for t in tables]
    assert read_headers(lines) == expected


@hypothesis_settings(max_examples=300)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"from": PATTERNS, "to": TARGETS},
            optional={"status": st.sampled_from([*REDIRECT_STATUSES, 404, 0])},
        ),
        min_size=1,
        max_size=2,
    )
)
def test_redirects_round_trip(tables: list[dict[str, Any]]) -> None:
    try:
        lines = settings({"redirects": tables}, SOURCE).get("redirect_rules", ())
    except ConfigError:
        return
    assert "\n".join(lines).splitlines() == list(lines)
    read_back = [tuple(line.split()) for line in lines]
    assert read_back == [(t["from"], t["to"], str(t.get("status", 301))) for t in tables]


@hypothesis_settings(max_examples=300)
@given(NAMES, VALUES)
def test_no_name_or_value_that_breaks_a_line_passes(name: str, value: str) -> None:
    try:
        block = header_block({"for": "/", "set": {name: value}}, "w")
    except ConfigError:
        return
    assert name.isprintable() and value.isprintable() and "\t" not in name + value
    assert not name.startswith("!") and ":" not in name
    assert "\n".join(block).splitlines() == block == ["/", f"  {name}: {value}".rstrip()]


def test_header_block_and_redirect_line_directly() -> None:
    assert header_block({"for": "/a", "set": {"B": "c"}}, "w") == ["/a", "  B: c"]
    assert redirect_line({"from": "/a", "to": "/b", "status": 307}, "w") == "/a /b 307"


# --- reading a file ---------------------------------------------------------------------------


def test_read_a_file(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('port = 9000\n[[redirects]]\nfrom = "/a"\nto = "/b"\n')
    assert read(str(path)) == {"port": 9000, "redirects": [{"from": "/a", "to": "/b"}]}
    assert load(path) == {
        "port": 9000,
        "redirect_rules": ("/a /b 301",),
        "config": str(path),
    }


@pytest.mark.parametrize(
    "content, message",
    [
        (b"port = \n", "{path}:1:8: invalid TOML: invalid value"),
        (b"port = 1\nport = 2\n", "{path}:2:9: invalid TOML: cannot overwrite a value"),
        (b'host = "a"\n[x\n', "{path}:2:3: invalid TOML: expected ']' at the end of a table "
         "declaration"),
        (b'host = "\xff"\n', "{path}:1: not UTF-8 text, as TOML must be"),
        (b'\n\nhost = "\xff"\n', "{path}:3: not UTF-8 text, as TOML must be"),
    ],
)  # fmt: skip
def test_bad_toml_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "site.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        read(str(path))
    assert str(raised.value) == message.format(path=path)


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as raised:
        read(str(missing))
    assert str(raised.value) == (
        f"{missing}: cannot read the settings file: No such file or directory"
    )
    with pytest.raises(ConfigError) as raised:
        read(str(tmp_path))
    assert str(raised.value) == f"{tmp_path}: cannot read the settings file: Is a directory"


def test_load_resolves_from_the_files_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "site.toml"
    path.write_text('root = "../public"\nmount = ["/s=static"]\n')
    found = load(str(path))
    assert found["root"] == os.path.join(tmp_path, "conf", "../public")
    assert found["mount"] == (f"/s={tmp_path / 'conf' / 'static'}",)


def test_the_example_is_a_valid_config() -> None:
    found = load(EXAMPLE)
    config = Config(**found)
    assert config.root == str(REPO / "examples" / "site")
    assert os.path.isdir(config.root)
    assert (config.port, config.access_log, config.health_path) == (8080, "combined", "/healthz")
    assert config.header_rules[0] == "/*"
    assert "/old-docs/* /docs/:splat 308" in config.redirect_rules
    assert "  Content-Security-Policy: default-src 'self'; img-src 'self' data:" in (
        config.header_rules
    )


def test_the_examples_commented_settings_are_settings_too() -> None:
    """Uncommented, every ``# key = value`` line of the example is a key of the right type."""
    lines = EXAMPLE.read_text().splitlines()
    commented = [line[2:] for line in lines if line.startswith("# ") and " = " in line]
    assert len(commented) >= 8
    data: dict[str, Any] = {}
    import tomllib

    for line in commented:
        data.update(tomllib.loads(line))
    found = settings(data, SOURCE)
    assert {"ssl_certfile", "basic_auth_file", "basic_auth_paths", "uds"} <= set(found)


def test_the_example_shows_every_section() -> None:
    text = EXAMPLE.read_text()
    for needle in ("[[headers]]", "[[redirects]]", "basic_auth", "cors_", "proxy_headers",
                   "access_log", "ssl_certfile", "compress", "port", "root"):  # fmt: skip
        assert needle in text


# --- precedence: command line, environment, file, defaults ----------------------------------


@pytest.fixture
def site_toml(tmp_path: Path) -> Path:
    (tmp_path / "public").mkdir()
    path = tmp_path / "site.toml"
    path.write_text(
        'port = 1111\nroot = "public"\nautoindex = true\nmime = ["md=text/markdown"]\n'
        'host = "0.0.0.0"\n'
    )
    return path


def test_the_file_fills_what_nothing_else_gives(site_toml: Path) -> None:
    config = parse_config(["--config", str(site_toml)], {})
    assert (config.port, config.autoindex, config.host) == (1111, True, "0.0.0.0")
    assert config.root == str(site_toml.parent / "public")
    assert config.config == str(site_toml)
    assert config.mime == ("md=text/markdown",)


def test_environment_beats_the_file(site_toml: Path) -> None:
    environ = {"ZEROHTTP_PORT": "2222", "ZEROHTTP_AUTOINDEX": "0", "ZEROHTTP_ROOT": "www"}
    config = parse_config(["--config", str(site_toml)], environ)
    assert (config.port, config.autoindex, config.root) == (2222, False, "www")
    assert config.host == "0.0.0.0"


def test_command_line_beats_both(site_toml: Path) -> None:
    environ = {"ZEROHTTP_PORT": "2222"}
    argv = ["--config", str(site_toml), "--port", "3333", "--mime", "x=a/b", "--no-autoindex"]
    config = parse_config(argv, environ)
    assert (config.port, config.autoindex) == (3333, False)
    assert config.mime == ("x=a/b",), "a repeatable flag replaces the file's list"


def test_the_path_from_the_environment(site_toml: Path) -> None:
    assert parse_config([], {"ZEROHTTP_CONFIG": str(site_toml)}).port == 1111
    other = site_toml.with_name("other.toml")
    other.write_text("port = 4444\n")
    config = parse_config(["--config", str(other)], {"ZEROHTTP_CONFIG": str(site_toml)})
    assert config.port == 4444


def test_without_a_file_nothing_changes() -> None:
    assert parse_config([], {}) == Config()


def test_a_value_that_cannot_work_names_the_file(site_toml: Path) -> None:
    site_toml.write_text("port = 70000\nmax_header_bytes = 10\n")
    with pytest.raises(ConfigError) as raised:
        parse_config(["--config", str(site_toml)], {})
    assert str(raised.value) == (
        f"--port 70000: must be between 0 and 65535 (from {site_toml}: port)"
    )
    # overridden, it is not blamed
    with pytest.raises(ConfigError) as raised:
        parse_config(["--config", str(site_toml), "--port", "1"], {})
    assert str(raised.value) == (
        f"--max-header-bytes 10: must be at least 1024 (from {site_toml}: max_header_bytes)"
    )
    argv = ["--config", str(site_toml), "--port", "1", "--max-header-bytes", "5"]
    with pytest.raises(ConfigError) as raised:
        parse_config(argv, {})
    assert str(raised.value) == "--max-header-bytes 5: must be at least 1024"


def test_a_file_error_is_raised_even_for_an_overridden_key(site_toml: Path) -> None:
    """The file is checked whole: a wrong type is a mistake in it whatever wins."""
    site_toml.write_text('port = "80"\n')
    with pytest.raises(ConfigError, match=r'port: expected an integer, got "80"'):
        parse_config(["--config", str(site_toml), "--port", "1"], {})


def test_contradictions_inside_the_file_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('uds = "/tmp/z.sock"\nport = 9000\n')
    config = parse_config(["--config", str(path)], {})
    errors, warnings = ignored_settings(config, set(), set(), {"uds", "port", "config"})
    assert errors == [
        f'uds = "/tmp/z.sock" in {path} and port = 9000 in {path}: two addresses to listen '
        "on: --port ignored"
    ]
    assert warnings == []
    # one from the command line, one from the file: the file is a base, a warning
    config = parse_config(["--config", str(path), "--uds", "/tmp/y.sock"], {})
    errors, warnings = ignored_settings(config, {"uds", "config"}, set(), {"uds", "port"})
    assert errors == []
    assert warnings == [
        f"--uds /tmp/y.sock and port = 9000 in {path}: two addresses to listen on: --port ignored"
    ]


def test_access_log_file_without_a_format_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('access_log_file = "a.log"\n')
    config = parse_config(["--config", str(path)], {})
    errors, _ = ignored_settings(config, {"config"}, set(), {"access_log_file"})
    assert errors and "access_log_file = " in errors[0]


def test_an_address_in_the_file_is_an_address() -> None:
    assert names_an_address([], {}, {"port"})
    assert names_an_address([], {}, {"uds"})
    assert not names_an_address([], {}, {"host", "root"})


def test_help_says_the_precedence() -> None:
    text = " ".join(build_parser().format_help().split())
    assert (
        "Precedence: the command line, then the environment, then the file, then the defaults"
        in text
    )
    assert "--config FILE" in text
    assert "The command line wins over the environment" in text
