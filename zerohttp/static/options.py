"""What decides how files are served, shared by the CLI server and the ASGI ``StaticFiles``.

``Config`` (the whole server's settings) extends this class, so the file-serving options
exist once: the CLI builds its flags from these fields, and ``zerohttp.StaticFiles`` takes
the same names as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, flag_name
from ..message.response import Fields
from .compress.policy import CODINGS
from .head_values import EXT_MEDIA_TYPE, FIELD_VALUE, HEADER_FIELD, head_value_problem
from .negotiation import DEFAULT_PREFERENCE, SIBLING_SUFFIXES
from .rules.errors import RuleSyntaxError
from .rules.headers_file import parse_headers, reserved_problem
from .rules.redirects_file import parse_redirects


def option(default: Any, help: str, **cli: Any) -> Any:
    """A dataclass field that carries its CLI help (and list/choice style) as metadata.

    ``head=`` (a kind from ``head_values``) marks a setting whose value is copied into
    response heads: every such value is checked by ``head_value_problem`` on construction.
    """
    return dataclasses.field(default=default, metadata={"help": help, **cli})


# Field annotations (strings: ``from __future__ import annotations``) whose values are
# type-checked on construction, for the Python API; the CLI's parser already converts.
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}
_TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "True or False"}


def settle_fields(options: Any) -> None:
    """Make list settings tuples (one string is one item) and refuse values of a wrong type.

    ``Config(index="index.htm")`` means one index file, not nine one-letter ones; a list
    becomes a tuple so the frozen settings stay hashable; a path object is a path string.
    Runs before any other check, so those see the types their fields promise. ConfigError
    names the flag.
    """
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        flag = _flag(field)
        if field.metadata.get("list"):
            if isinstance(value, str):
                object.__setattr__(options, field.name, (value,))
            elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                if isinstance(value, list):
                    object.__setattr__(options, field.name, tuple(value))
            else:
                raise ConfigError(f"{flag} {value!r}: expected a string or a list of strings")
            continue
        hint = field.type if isinstance(field.type, str) else ""
        if hint == "str" and isinstance(value, os.PathLike):
            value = os.fspath(value)
            object.__setattr__(options, field.name, value)
        types = _SCALAR_TYPES.get(hint)
        # exact for bool: True is an int, and 1 is no on/off setting
        if types is not None and (
            not isinstance(value, types) or (isinstance(value, bool) and hint != "bool")
        ):
            raise ConfigError(f"{flag} {value!r}: expected {_TYPE_WORDS[hint]}")


def settable(field: dataclasses.Field[Any]) -> bool:
    """Whether a field is a setting by name: a flag, a ZEROHTTP_ variable, a settings-file
    key. Fields made ``cli=False`` (the settings file's rule tables) are filled otherwise."""
    return bool(field.metadata.get("cli", True))


def check_head_values(options: Any) -> None:
    """Every value that reaches a response head is sendable (fields marked ``head=``)."""
    for field in dataclasses.fields(options):
        kind = field.metadata.get("head")
        if kind is None:
            continue
        value = getattr(options, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            problem = head_value_problem(kind, item)
            if problem is not None:
                raise ConfigError(f"{_flag(field)} {item!r}: {problem}")


def header_fields(lines: tuple[str, ...]) -> Fields:
    """``--header`` values (``Name: value``, already checked) as fields."""
    return tuple(
        (name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines)
    )


def check_site_rules(options: StaticOptions) -> None:
    """``--header`` names no field zerohttp writes itself; the settings' rules parse (the
    files' own are read when a server starts)."""
    for line in options.header:
        problem = reserved_problem(line.partition(":")[0].strip())
        if problem is not None:
            raise ConfigError(f"--header {line!r}: {problem}")
    try:
        parse_headers("\n".join(options.header_rules), "header_rules")
        parse_redirects("\n".join(options.redirect_rules), "redirect_rules")
    except RuleSyntaxError as exc:
        raise ConfigError(str(exc)) from None


def _flag(field: dataclasses.Field[Any]) -> str:
    """How the command line names the setting: ``--cache-control``, or ``ROOT``."""
    if field.metadata.get("positional"):
        return field.name.upper()
    return flag_name(field.name)


@dataclass(frozen=True, slots=True)
class StaticOptions:
    """The file-serving settings; validated on construction (ConfigError names the flag)."""

    root: str = option(".", "directory to serve (default: the current directory)", positional=True)
    index: tuple[str, ...] = option(
        ("index.html",), "index file names for a directory, tried in order", list="comma"
    )
    autoindex: bool = option(False, "list the contents of directories that have no index file")
    spa: bool = option(
        False, "single-page app: serve /index.html for unknown paths with no file extension"
    )
    precompressed: tuple[str, ...] = option(
        DEFAULT_PREFERENCE,
        "precompressed siblings (NAME.br, .zst, .gz) to serve, in preference order; 'none' off",
        list="comma",
    )
    cache_control: str = option("", "Cache-Control value sent with every file", head=FIELD_VALUE)
    immutable_pattern: str = option(
        "", "regex on the URL path: matches get Cache-Control: public, max-age=31536000, immutable"
    )
    mime: tuple[str, ...] = option(
        (), "media type override EXT=TYPE (repeatable)", list="repeat", head=EXT_MEDIA_TYPE
    )
    open_file_cache: int = option(
        256, "files kept open with pre-rendered headers, revalidated by stat on every hit; 0 off"
    )
    compress: tuple[str, ...] = option(
        ("zstd", "br", "gzip"),
        "codings text files are compressed into, once (cached, then sent zero-copy), in "
        "preference order; 'none' off",
        list="comma",
    )
    compress_min_size: int = option(1024, "smallest file compressed, in bytes")
    compress_max_size: int = option(64 * 1024 * 1024, "largest file compressed, in bytes")
    compress_cache: str = option(
        "",
        "directory of the compressed copies (default: a private per-user directory under the "
        "system temporary directory)",
    )
    compress_cache_size: int = option(
        512 * 1024 * 1024, "most bytes of compressed copies kept; least recently used go first"
    )
    site_rules: bool = option(
        True,
        "apply ROOT/_headers and ROOT/_redirects (Cloudflare Pages syntax); "
        "--no-site-rules ignores them",
    )
    header: tuple[str, ...] = option(
        (), "add NAME: VALUE to every response (repeatable)", list="repeat", head=HEADER_FIELD
    )
    # the config file's [[headers]] and [[redirects]] tables, as lines of _headers and
    # _redirects: no command-line flag or environment variable
    header_rules: tuple[str, ...] = option((), "_headers lines", list="repeat", cli=False)
    redirect_rules: tuple[str, ...] = option((), "_redirects lines", list="repeat", cli=False)

    def __post_init__(self) -> None:
        settle_fields(self)
        for name in self.index:
            if not name or "/" in name or name.startswith("."):
                raise ConfigError(f"--index {name!r}: must be a plain, visible file name")
        for coding in self.precompressed:
            if coding not in SIBLING_SUFFIXES:
                known = ", ".join(SIBLING_SUFFIXES)
                raise ConfigError(f"--precompressed {coding!r}: must be one of {known}")
        try:
            re.compile(self.immutable_pattern)
        except re.error as exc:
            raise ConfigError(f"--immutable-pattern {self.immutable_pattern!r}: {exc}") from None
        for coding in self.compress:
            if coding not in CODINGS:
                raise ConfigError(f"--compress {coding!r}: must be one of {', '.join(CODINGS)}")
        if len(set(self.compress)) != len(self.compress):
            raise ConfigError(f"--compress {','.join(self.compress)}: a coding is named twice")
        if self.compress_min_size < 0:
            raise ConfigError(f"--compress-min-size {self.compress_min_size}: must be >= 0")
        if self.compress_max_size < self.compress_min_size:
            raise ConfigError(
                f"--compress-max-size {self.compress_max_size}: must be >= --compress-min-size"
                f" ({self.compress_min_size})"
            )
        if self.compress_cache_size <= 0:
            raise ConfigError(f"--compress-cache-size {self.compress_cache_size}: must be > 0")
        if self.open_file_cache < 0:
            raise ConfigError(f"--open-file-cache {self.open_file_cache}: must be >= 0")
        self.mime_overrides  # noqa: B018 - raises ConfigError for a malformed entry
        check_head_values(self)
        check_site_rules(self)

    @property
    def mime_overrides(self) -> dict[str, str]:
        overrides: dict[str, str] = {}
        for entry in self.mime:
            ext, sep, media_type = entry.partition("=")
            if not sep or not ext.strip(". ") or "/" not in media_type:
                raise ConfigError(f"--mime {entry!r}: expected EXT=TYPE, e.g. md=text/markdown")
            overrides[ext.strip(". ").lower()] = media_type.strip()
        return overrides
