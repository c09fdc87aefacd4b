"""Settings that reach a response head (issue 16 item 2): one check, at construction.

``head_value_problem`` is tested as a plain function; then that ``Config``, ``StaticOptions``
and ``StaticFiles`` refuse a value with CR/LF in it naming the flag; that every setting whose
value can reach a head is covered (a future field without its ``head=`` marker fails here);
and, end to end, that the CLI refuses to start rather than put the bytes on the wire.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from serverprocs import fetch, run_cli, server_process

import zerohttp
from zerohttp.config import Config
from zerohttp.errors import ConfigError
from zerohttp.message.response import RequestHead
from zerohttp.static.handler import StaticHandler
from zerohttp.static.head_values import (
    EXT_MEDIA_TYPE,
    FIELD_NAME,
    FIELD_VALUE,
    HEADER_FIELD,
    head_value_problem,
)
from zerohttp.static.options import StaticOptions

INJECTED = "public\r\nSet-Cookie: evil=1"


@pytest.mark.parametrize(
    "value",
    [
        "public, max-age=60",
        "no-store",
        "",
        'private, no-cache="Set-Cookie"',
    ],
)
def test_field_values_that_are_fine(value: str) -> None:
    assert head_value_problem(FIELD_VALUE, value) is None


@pytest.mark.parametrize(
    "value",
    [
        INJECTED,
        "a\nX-Evil: 1",
        "a\rb",
        "a\x00b",
        "a\tb",
        "a\x1fb",
        "a\x7fb",
        "caf\xe9",
        " public",
        "public ",
    ],
)
def test_field_values_that_are_refused(value: str) -> None:
    assert head_value_problem(FIELD_VALUE, value) is not None


def test_field_names_must_be_tokens() -> None:
    assert head_value_problem(FIELD_NAME, "X-Served-By") is None
    for bad in ("", "X Evil", "X-Evil:", "X\r\nEvil", "caf\xe9", "a/b"):
        assert head_value_problem(FIELD_NAME, bad) is not None, bad


@pytest.mark.parametrize(
    "entry",
    [
        "md=text/markdown",
        "txt=text/plain; charset=iso-8859-1",
        'x=application/x-thing;a="q u;o\\"te"',
        "geojson=application/geo+json",
    ],
)
def test_media_types_that_are_fine(entry: str) -> None:
    assert head_value_problem(EXT_MEDIA_TYPE, entry) is None


@pytest.mark.parametrize(
    "entry",
    [
        "md=text/markdown\r\nX-Evil: 1",
        "md=text/mark down",
        "md=text/",
        "md=/markdown",
        "md=text/markdown; charset",
        "md=text/markdown; charset=a b",
        "md=text/markdown\x00",
        "md=text/plain/extra",
    ],
)
def test_media_types_that_are_refused(entry: str) -> None:
    assert head_value_problem(EXT_MEDIA_TYPE, entry) is not None


@pytest.mark.parametrize("make", [StaticOptions, Config], ids=["StaticOptions", "Config"])
def test_settings_refuse_an_injected_cache_control(make: Any) -> None:
    with pytest.raises(ConfigError, match=r"^--cache-control 'public\\r\\nSet-Cookie"):
        make(cache_control=INJECTED)


@pytest.mark.parametrize("make", [StaticOptions, Config], ids=["StaticOptions", "Config"])
def test_settings_refuse_an_injected_media_type(make: Any) -> None:
    with pytest.raises(ConfigError, match=r"^--mime 'md=text/markdown\\r\\nX-Evil: 1'"):
        make(mime=("md=text/markdown\r\nX-Evil: 1",))


def test_static_files_refuses_an_injected_cache_control(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--cache-control"):
        zerohttp.StaticFiles(str(tmp_path), cache_control="a\r\nX-Evil: 1")
    with pytest.raises(ConfigError, match="--mime"):
        zerohttp.StaticFiles(str(tmp_path), mime=["md=text/markdown\nX-Evil: 1"])


def test_good_values_still_reach_the_head(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes(b"# a\n")
    options = StaticOptions(
        root=str(tmp_path), cache_control="public, max-age=60", mime=("md=text/x-md",)
    )
    response = StaticHandler(options).handle(RequestHead(b"GET", b"/a.md", b"1.1"))
    response.release()
    assert b"Cache-Control: public, max-age=60\r\n" in response.field_lines()
    assert b"Content-Type: text/x-md; charset=utf-8\r\n" in response.field_lines()


# --- every setting that can reach a head is checked ------------------------------------------

PAYLOAD = "x\r\nX-Evil: 1"


def _payloads(field: dataclasses.Field[Any]) -> list[Any]:
    """Values for ``field`` that carry a header line, in the shapes its checks may want."""
    default = getattr(Config(), field.name)
    if isinstance(default, tuple):
        return [(PAYLOAD,), (f"md=text/{PAYLOAD}",), (f"/s={PAYLOAD}",)]
    if isinstance(default, str):
        return [PAYLOAD, f"/{PAYLOAD}"]
    return []


@pytest.mark.parametrize("field", dataclasses.fields(Config), ids=lambda f: f.name)
def test_no_setting_lets_a_header_line_through(
    field: dataclasses.Field[Any], tmp_path: Path
) -> None:
    """A string setting either is refused with a header line in it, or its value never
    reaches the head of a file, a directory redirect, a 404 or an error: a new setting
    copied into heads without its ``head=`` marker fails here."""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "index.html").write_bytes(b"<p>x</p>\n")
    (tmp_path / "a.md").write_bytes(b"# a\n")
    for value in _payloads(field):
        try:
            options = Config(**{"root": str(tmp_path), field.name: value})
        except ConfigError:
            continue
        handler = StaticHandler(options)
        for target in (b"/a.md", b"/x", b"/x/", b"/missing", b"/a.md?q"):
            response = handler.handle(RequestHead(b"GET", target, b"1.1"))
            response.release()
            assert b"X-Evil" not in response.field_lines(), (field.name, value, target)


# --- end to end: the CLI refuses to start, or sends the value intact -------------------------


def test_cli_refuses_an_injected_cache_control(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path), "--port", "0", "--cache-control", INJECTED)
    assert result.returncode == 2  # a usage error: settings that cannot work
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("zerohttp: error: --cache-control 'public\\r\\nSet-Cookie")
    assert result.stderr.count("\n") == 1


def test_a_cache_control_setting_reaches_the_wire_intact(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a\n")
    args = ["-m", "zerohttp", str(tmp_path), "--port", "0", "--cache-control", "no-cache"]
    with server_process(args) as server:
        reply = fetch(server.base_url, "GET", "/a.txt")
    assert reply.status == 200
    assert [value for name, value in reply.raw_headers if name == "cache-control"] == ["no-cache"]
    assert "set-cookie" not in reply.headers


def test_environment_cannot_inject_either(tmp_path: Path) -> None:
    env = {**os.environ, "ZEROHTTP_CACHE_CONTROL": INJECTED}
    result = run_cli(str(tmp_path), "--port", "0", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--cache-control" in result.stderr
    assert "ZEROHTTP_CACHE_CONTROL" in result.stderr


def test_whole_header_fields() -> None:
    assert head_value_problem(HEADER_FIELD, "X-Frame-Options: DENY") is None
    assert head_value_problem(HEADER_FIELD, "X-Empty:") is None
    for bad in ("X-Frame-Options DENY", "X Frame: DENY", "X-A: b\r\nX-Evil: 1", ": b"):
        assert head_value_problem(HEADER_FIELD, bad) is not None, bad


def test_an_unknown_marker_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown head metadata"):
        head_value_problem("header", "x")
