"""``zerohttp --help``: options in sections, arguments named for what they take, each
default said once and in words, and how to stop the server."""

from __future__ import annotations

import dataclasses
import re

import pytest

from zerohttp import Config
from zerohttp.cli import OPTION_GROUPS, build_parser
from zerohttp.static.options import settable

SECTIONS = [
    "listening",
    "files",
    "compression",
    "site rules, auth and CORS",
    "behind a proxy",
    "limits and timeouts",
    "TLS",
    "logs, metrics and health checks",
    "ASGI",
    "WebSocket (with --app)",
    "processes",
    "settings file",
]


def help_text() -> str:
    return build_parser().format_help()


def test_every_field_is_in_exactly_one_section() -> None:
    """A new Config field must be given a section (and a metavar) in cli.OPTION_GROUPS."""
    placed = [name for _, metavars in OPTION_GROUPS for name in metavars]
    on_the_command_line = [field.name for field in dataclasses.fields(Config) if settable(field)]
    assert sorted(placed) == sorted(on_the_command_line)
    assert "\nother:" not in help_text()


def test_sections_in_order() -> None:
    text = help_text()
    headings = re.findall(r"^(\S[^:\n]*):$", text, re.MULTILINE)
    assert headings == ["options", *SECTIONS]
    assert [title for title, _ in OPTION_GROUPS] == SECTIONS


@pytest.mark.parametrize(
    "usage",
    [
        "--mime EXT=TYPE",
        "--mount /PREFIX=DIR",
        "--app MODULE:ATTR",
        "--uds PATH",
        "--port PORT",
        "--fd FD",
        "--host ADDRESS",
        "--header-timeout SECONDS",
        "--timeout-graceful-shutdown SECONDS",
        "--access-log-file FILE",
        "--health-path PATH",
        "--index NAME,...",
        "--max-header-bytes BYTES",
        "--workers N",
        "--log-level {critical,error,warning,info,debug}",
        "--check URL",
    ],
)
def test_metavar_says_what_an_option_takes(usage: str) -> None:
    assert f"[{usage}]" in " ".join(help_text().split())


def test_no_metavar_is_a_field_name() -> None:
    """A field's name in capitals (--cache-control CACHE_CONTROL) says nothing it takes."""
    for action in build_parser()._actions:
        if action.option_strings and action.nargs != 0 and action.choices is None:
            assert action.metavar is not None, action.option_strings
            if action.dest not in ("port", "fd"):  # those names say it
                assert action.metavar != action.dest.upper(), action.option_strings


def test_each_default_once_and_in_words() -> None:
    for action in build_parser()._actions:
        text = action.help or ""
        assert text.count("default:") <= 1, text
        assert not re.search(r"default: (-1|False|True)\)", text), text
    text = " ".join(help_text().split())
    assert "--metrics-port PORT serve Prometheus" in text
    assert re.search(r"--fd FD [^[]*\(default: none\)", text)
    assert re.search(r"--metrics-port PORT [^[]*\(default: off\)", text)
    assert re.search(r"--access-log-file FILE [^[]*\(default: stdout\) \[env", text)
    assert re.search(r"--header-timeout SECONDS [^[]*\(default: 30\) \[env", text)
    assert re.search(r"--no-sendfile [^[]*\(default: on\) \[env", text)


def test_says_how_to_stop() -> None:
    text = " ".join(help_text().split())
    assert "Ctrl-C (or SIGTERM) stops the server" in text
    assert "a second Ctrl-C stops it at once" in text
