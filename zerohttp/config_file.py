"""Settings from a TOML file: ``zerohttp --config site.toml`` (or ``ZEROHTTP_CONFIG``).

The keys are ``Config``'s field names, the option names with underscores (``port = 8080``,
``access_log = "json"``, ``mime = ["md=text/markdown"]``), so a setting has one name
wherever it is given. TOML's own types must match the field's: an integer for ``port``,
``true``/``false`` for an on/off option, a string or an array of strings for a list (a
comma list such as ``compress`` also takes ``"zstd,gzip"``, as on the command line), and an
integer wherever a number of seconds is asked for. ``[[headers]]`` and ``[[redirects]]``
tables hold the rules of ``_headers`` and ``_redirects``; they are written out as lines of
those files into ``header_rules`` and ``redirect_rules``, so one rule engine reads both.

A relative path in the file (``root``, a ``mount``'s DIR, ``uds``, the TLS, log, htpasswd
and cache files) is taken from the file's directory, not from where zerohttp was started:
the file and the site it describes move together, and a systemd unit or a container that
starts ``zerohttp --config /srv/site/site.toml`` from another directory still finds them.
A path from the command line or the environment stays relative to the working directory.

Every mistake is a ConfigError of one line that names the file and the key
(``site.toml: port: expected an integer, got "80"``); an unknown key suggests the close
name (``prot`` -> ``did you mean port?``). ``settings`` is pure over the parsed data;
``read`` is the only function that touches the file, and ``load`` joins them: from Python,
``Config(**load("site.toml"))``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import sys
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .config import Config
from .errors import ConfigError
from .static.head_values import FIELD_NAME, FIELD_VALUE, head_value_problem
from .static.options import settable
from .static.urlpattern import compile_pattern

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, as a package before the standard library took it in
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

#: settings whose relative paths are taken from the file's directory (``mount``'s DIR too)
PATH_FIELDS = (
    "root",
    "uds",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_ca_certs",
    "access_log_file",
    "basic_auth_file",
    "compress_cache",
)
#: ``_redirects`` statuses: the redirects, and 200 for a rewrite
REDIRECT_STATUSES = (200, 301, 302, 303, 307, 308)
#: the keys of one ``[[headers]]`` / ``[[redirects]]`` table
HEADER_KEYS = ("for", "set", "remove")
REDIRECT_KEYS = ("from", "to", "status")
#: the tables, and the (``cli=False``) field each one fills
TABLES = {"headers": "header_rules", "redirects": "redirect_rules"}

_FIELDS = {field.name: field for field in dataclasses.fields(Config)}
#: the keys a file may set: every option but the file's own path and the tables' fields
KEYS = tuple(name for name, field in _FIELDS.items() if settable(field) and name != "config")
_SCALARS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
_EXPECTED = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_LIST_EXPECTED = "a string or an array of strings"


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``Config`` keyword arguments from the TOML file at ``path`` (``config`` included)."""
    source = os.fspath(path)
    found = settings(read(source), source, os.path.dirname(source))
    return {**found, "config": source}


def read(path: str) -> dict[str, Any]:
    """The parsed file; ConfigError, one line naming it, when it cannot be read or parsed."""
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the settings file: {exc.strerror or exc}") from None
    try:
        data: dict[str, Any] = tomllib.loads(text.decode("utf-8"))
        return data
    except UnicodeDecodeError as exc:
        line = text[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text, as TOML must be") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}:{_toml_error(str(exc))}") from None


def _toml_error(message: str) -> str:
    """``Invalid value (at line 3, column 8)`` -> ``3:8: invalid TOML: invalid value``."""
    found = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message, re.DOTALL)
    if found is None:
        return f" invalid TOML: {message}"
    text, line, column = found.groups()
    return f"{line}:{column}: invalid TOML: {text[:1].lower()}{text[1:]}"


def settings(data: Mapping[str, Any], source: str, base: str = "") -> dict[str, Any]:
    """``Config`` field -> value for what the parsed file ``data`` says; ``source`` names
    the file in errors, ``base`` is the directory its relative paths start from."""
    found: dict[str, Any] = {}
    for key, value in data.items():
        if key in TABLES:
            found[TABLES[key]] = _table_lines(key, value, source)
        elif key in KEYS:
            found[key] = _resolved(key, _setting(key, value, source), base)
        else:
            raise ConfigError(f"{source}: {key}: {_unknown(key)}")
    return found


def _unknown(key: str) -> str:
    if key == "config":
        return "a settings file cannot name another one (give --config once)"
    if key in _FIELDS:
        table = next(name for name, field in TABLES.items() if field == key)
        return f"not a key of the file: write [[{table}]] tables"
    return "unknown setting" + _suggestion(key, (*KEYS, *TABLES))


def _suggestion(key: str, known: tuple[str, ...]) -> str:
    """``; did you mean port?`` for ``prot``: of difflib's close names, the one with the
    fewest letters added or dropped first (two swapped letters are a typo's commonest form,
    and difflib alone ranks ``root`` level with ``port``)."""
    spelled = key.lower().replace("-", "_")
    if spelled in known:
        return f"; did you mean {spelled}?"
    close = difflib.get_close_matches(spelled, known, n=5)
    if not close:
        return ""
    letters: Counter[str] = Counter(spelled)

    def apart(name: str) -> int:
        other: Counter[str] = Counter(name)
        return sum((other - letters).values()) + sum((letters - other).values())

    best = min(close, key=apart)
    return f"; did you mean {best}?"


def _setting(key: str, value: Any, source: str) -> Any:
    """``value`` as the field ``key`` takes it, or ConfigError when TOML's type is not its."""
    field = _FIELDS[key]
    style = field.metadata.get("list")
    if style:
        if isinstance(value, str):
            items = tuple(value.split(",")) if style == "comma" else (value,)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = tuple(value)
        else:
            raise ConfigError(
                f"{source}: {key}: expected {_LIST_EXPECTED}, got {toml_value(value)}"
            )
        if style == "comma":  # as the flag: blanks dropped, "none" is the empty list
            items = tuple(item.strip() for item in items if item.strip())
            items = () if items == ("none",) else items
        return items
    kind = _kind(field)
    if not isinstance(value, (int, float) if kind is float else kind) or (
        isinstance(value, bool) and kind is not bool
    ):
        raise ConfigError(f"{source}: {key}: expected {_EXPECTED[kind]}, got {toml_value(value)}")
    choices = field.metadata.get("choices")
    if choices is not None and isinstance(value, str):  # as the flag, in any case
        if value.lower() not in choices:
            raise ConfigError(
                f"{source}: {key}: expected one of {', '.join(choices)}, got {toml_value(value)}"
            )
        return value.lower()
    return float(value) if isinstance(value, int | float) and kind is float else value


def _kind(field: dataclasses.Field[Any]) -> type:
    """The Python type a field's value has: its annotation, else its default's type
    (``loop``'s Literal and ``app``'s Any are strings in a file)."""
    hint = field.type if isinstance(field.type, str) else ""
    return _SCALARS.get(hint) or type(field.default)


def toml_value(value: Any, limit: int = 60) -> str:
    """A value as TOML writes it, shortened to ``limit`` characters (0: whole): ``"80"``,
    ``true``, ``an array``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
    return text if not limit or len(text) <= limit else text[: limit - 3] + "..."


def _resolved(key: str, value: Any, base: str) -> Any:
    """A relative path from the file, taken from the file's directory ``base``."""
    if key == "mount":
        return tuple(_mounted(entry, base) for entry in value)
    if key in PATH_FIELDS and value:
        return os.path.join(base, value)
    return value


def _mounted(entry: str, base: str) -> str:
    prefix, sep, directory = entry.partition("=")
    if not sep or not directory:  # malformed: Config names it as given
        return entry
    return f"{prefix}={os.path.join(base, directory)}"


# --- [[headers]] and [[redirects]]: lines of _headers and _redirects ------------------------


def _table_lines(key: str, value: Any, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
        got = toml_value(value)
        raise ConfigError(f"{source}: {key}: expected [[{key}]] tables, got {got}")
    lines: list[str] = []
    for number, table in enumerate(value, 1):
        where = f"{source}: {key}[{number}]"
        if key == "headers":
            lines.extend(header_block(table, where))
        else:
            lines.append(redirect_line(table, where))
    return tuple(lines)


def header_block(table: Mapping[str, Any], where: str) -> list[str]:
    """One ``[[headers]]`` table as a ``_headers`` block: the pattern, then ``! Name`` for
    each of ``remove`` and ``Name: value`` for each of ``set`` (removed first, so a table
    that removes and sets one name replaces what an earlier block set)."""
    _check_keys(table, HEADER_KEYS, where)
    pattern = _pattern(table, "for", where)
    removed = table.get("remove", [])
    if isinstance(removed, str):
        removed = [removed]
    if not isinstance(removed, list) or not all(isinstance(name, str) for name in removed):
        raise ConfigError(
            f"{where}.remove: expected an array of header names, got {toml_value(removed)}"
        )
    added = table.get("set", {})
    if not isinstance(added, dict):
        raise ConfigError(f"{where}.set: expected a table of NAME = VALUE, got {toml_value(added)}")
    if not removed and not added:
        raise ConfigError(f"{where}: sets and removes nothing (give set or remove)")
    lines = [pattern]
    for name in removed:
        _check_name(name, f"{where}.remove")
        lines.append(f"  ! {name}")
    for name, field_value in added.items():
        _check_name(name, f"{where}.set")
        if not isinstance(field_value, str):
            raise ConfigError(
                f"{where}.set: {name}: expected a string, got {toml_value(field_value)}"
            )
        problem = head_value_problem(FIELD_VALUE, field_value)
        if problem is not None:
            raise ConfigError(f"{where}.set: {name}: {toml_value(field_value)}: {problem}")
        lines.append(f"  {name}: {field_value}".rstrip())
    return lines


def redirect_line(table: Mapping[str, Any], where: str) -> str:
    """One ``[[redirects]]`` table as a ``_redirects`` line: ``FROM TO STATUS``."""
    _check_keys(table, REDIRECT_KEYS, where)
    origin = _pattern(table, "from", where)
    target = table.get("to")
    if not isinstance(target, str):
        missing = "to" not in table
        got = "nothing" if missing else toml_value(target)
        raise ConfigError(f"{where}.to: expected a path or an absolute URL, got {got}")
    if not _one_word(target) or not _is_target(target):
        raise ConfigError(
            f"{where}.to: {toml_value(target)}: must be a path (/new/:splat) or an absolute "
            "http(s) URL, without spaces or control characters"
        )
    status = table.get("status", 301)
    if isinstance(status, bool) or status not in REDIRECT_STATUSES:
        codes = ", ".join(map(str, REDIRECT_STATUSES))
        raise ConfigError(f"{where}.status: expected one of {codes}, got {toml_value(status)}")
    return f"{origin} {target} {status}"


def _check_keys(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key in KEYS:  # TOML puts every key below a [[table]] line into that table
            raise ConfigError(
                f"{where}.{key}: a setting inside a table: settings go above the first "
                "[[headers]] or [[redirects]] line"
            )
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key{_suggestion(key, known)}")


def _pattern(table: Mapping[str, Any], key: str, where: str) -> str:
    """The URL pattern under ``key``: one word (it is written on a line of its own)."""
    if key not in table:
        raise ConfigError(f'{where}: no {key} = "/pattern"')
    pattern = table[key]
    if not isinstance(pattern, str):
        raise ConfigError(f"{where}.{key}: expected a URL pattern, got {toml_value(pattern)}")
    if not _one_word(pattern):
        shown = toml_value(pattern)
        raise ConfigError(
            f"{where}.{key}: {shown}: a URL pattern has no space or control character"
        )
    try:
        compile_pattern(pattern)
    except ValueError as exc:
        raise ConfigError(f"{where}.{key}: {exc}") from None
    return pattern


def _check_name(name: str, where: str) -> None:
    problem = head_value_problem(FIELD_NAME, name)
    if problem is None and name.startswith("!"):  # a token, but _headers reads "! x" lines
        problem = "a header field name starting with ! reads as a removal in _headers"
    if problem is not None:
        raise ConfigError(f"{where}: {toml_value(name)}: {problem}")


def _one_word(text: str) -> bool:
    """No space and nothing that ends a line (``str.splitlines`` splits on more than LF)."""
    return bool(text) and text.isprintable() and not any(char.isspace() for char in text)


def _is_target(target: str) -> bool:
    if target.startswith("/"):
        return not target.startswith("//")  # //host is another site: write https://host
    parts = urllib.parse.urlsplit(target)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
