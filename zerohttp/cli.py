"""``zerohttp`` command line, generated from the fields of ``Config``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .config import Config
from .errors import ConfigError
from .runner import run


class _OneLineParser(argparse.ArgumentParser):
    """Bad arguments end with one line on stderr, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"zerohttp: error: {message} (see zerohttp --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="zerohttp", description="Serve a directory over HTTP/1.1, file bodies zero-copy."
    )
    parser.add_argument("--version", action="version", version=f"zerohttp {__version__}")
    defaults = Config()
    for field in dataclasses.fields(Config):
        meta = field.metadata
        default = getattr(defaults, field.name)
        kwargs: dict[str, Any] = {"help": meta["help"]}
        if meta.get("positional"):
            parser.add_argument(field.name, nargs="?", default=default, metavar="ROOT", **kwargs)
            continue
        kwargs["help"] += f" (default: {_shown(default)})"
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta.get("list") == "repeat":
            kwargs.update(action="append", metavar=field.name.upper())
            default = None
        elif meta.get("list") == "comma":
            kwargs.update(type=_comma_list, metavar="A,B,...")
            kwargs["help"] = kwargs["help"].replace(
                f"(default: {getattr(defaults, field.name)})", f"(default: {','.join(default)})"
            )
        else:
            kwargs["type"] = type(default)
            if "choices" not in meta:
                kwargs["metavar"] = field.name.upper()
        parser.add_argument(flag, dest=field.name, default=default, **kwargs)
    return parser


def _shown(default: object) -> str:
    if isinstance(default, tuple):
        default = ",".join(default)
    return str(default) if default != "" else "none"


def _comma_list(text: str) -> tuple[str, ...]:
    """``br,gzip`` -> ("br", "gzip"); ``none`` or nothing -> ()."""
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    return () if items == ("none",) else items


def parse_config(argv: Sequence[str] | None = None) -> Config:
    namespace = build_parser().parse_args(argv)
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(Config)}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
        elif value is None:
            values[name] = getattr(Config(), name)
    return Config(**values)


ADDRESS_FLAGS = ("--port", "--uds", "--fd")


def names_an_address(argv: Sequence[str]) -> bool:
    """Whether the command line says where to listen (else systemd's socket may be used)."""
    return any(arg.split("=", 1)[0] in ADDRESS_FLAGS for arg in argv)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        config = parse_config(argv)
        logging.basicConfig(level=config.log_level.upper(), format="%(message)s", stream=sys.stderr)
        run(config, address_given=names_an_address(sys.argv[1:] if argv is None else argv))
    except ConfigError as exc:
        sys.exit(f"zerohttp: error: {exc}")
    except KeyboardInterrupt:
        pass
