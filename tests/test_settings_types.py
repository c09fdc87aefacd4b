"""Settings built from Python (issue 16 item 8): one string is one list item, and a value
of the wrong type is a ConfigError naming the flag, not a character-by-character list or
a TypeError from deep inside a check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zerohttp.config import Config
from zerohttp.errors import ConfigError
from zerohttp.message.response import RequestHead
from zerohttp.static.handler import StaticHandler
from zerohttp.static.options import StaticOptions


@pytest.mark.parametrize(
    "field, value",
    [
        ("index", "index.htm"),
        ("precompressed", "gzip"),
        ("mime", "md=text/markdown"),
    ],
)
@pytest.mark.parametrize("make", [StaticOptions, Config], ids=["StaticOptions", "Config"])
def test_one_string_is_one_item(make: Any, field: str, value: str) -> None:
    assert getattr(make(**{field: value}), field) == (value,)


def test_one_mount_string_is_one_mount() -> None:
    config = Config(app="tests.apps:app", mount="/a=b")
    assert config.mount == ("/a=b",)
    assert config.mounts == [("/a", "b")]


def test_lists_become_tuples() -> None:
    config = Config(index=["a.html", "b.html"], mime=["md=text/markdown"])
    assert config.index == ("a.html", "b.html")
    assert config.mime == ("md=text/markdown",)
    hash(config)  # frozen settings stay hashable


def test_a_single_index_string_is_served(tmp_path: Path) -> None:
    (tmp_path / "index.htm").write_bytes(b"<p>htm</p>\n")
    handler = StaticHandler(StaticOptions(root=str(tmp_path), index="index.htm"))
    response = handler.handle(RequestHead(b"GET", b"/", b"1.1"))
    response.release()
    assert response.status == 200


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("index", 5, r"^--index 5: expected a string or a list of strings$"),
        ("mime", ["md=text/markdown", 1], r"^--mime \['md=text/markdown', 1\]: expected a string"),
        ("mount", {"/a": "b"}, r"^--mount \{'/a': 'b'\}: expected a string"),
        ("port", "8000", r"^--port '8000': expected an integer$"),
        ("port", 80.0, r"^--port 80.0: expected an integer$"),
        ("workers", True, r"^--workers True: expected an integer$"),
        ("autoindex", 1, r"^--autoindex 1: expected True or False$"),
        ("keepalive_timeout", "5", r"^--keepalive-timeout '5': expected a number$"),
        ("cache_control", b"no-cache", r"^--cache-control b'no-cache': expected a string$"),
        ("host", None, r"^--host None: expected a string$"),
    ],
)
def test_a_wrong_type_names_the_flag(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**{field: value})


def test_an_int_is_a_number_of_seconds() -> None:
    assert Config(keepalive_timeout=5).keepalive_timeout == 5


def test_a_path_object_is_a_path(tmp_path: Path) -> None:
    config = Config(root=tmp_path, access_log_file=tmp_path / "log")
    assert config.root == str(tmp_path)
    assert config.access_log_file == str(tmp_path / "log")


def test_root_is_named_as_the_command_line_names_it() -> None:
    with pytest.raises(ConfigError, match=r"^ROOT 5: expected a string$"):
        Config(root=5)  # type: ignore[arg-type]
