"""``zerohttp`` command line, generated from the fields of ``Config``.

Every field is a flag (``root`` is the positional ROOT) and also an environment variable,
``ZEROHTTP_`` plus the field's name in capitals: ``ZEROHTTP_PORT=8080``,
``ZEROHTTP_ACCESS_LOG=json``, ``ZEROHTTP_ROOT=/srv``. A field added to ``Config`` gets both;
``OPTION_GROUPS`` says where ``--help`` lists it and what its argument is called. An
environment value is turned into the flag's own arguments and parsed by the same parser,
so it is converted and checked exactly like the flag, and a bad one is the flag's one-line
error naming the variable. ``--config FILE`` (or ``ZEROHTTP_CONFIG``) reads a TOML file
whose keys are the same field names (see ``config_file``). Precedence: command line, then
environment, then the file, then the ``Config`` default.

``zerohttp --check URL`` is not a setting: it fetches URL and exits 0 on a 2xx/3xx answer,
1 otherwise: a container health check that needs no curl in the image. It runs every few
seconds, so this module imports the server (``config``, ``runner`` and what they pull in)
only inside the functions that need it, after ``--check`` has been ruled out.

Exit status: 2 for a usage error (a bad option or variable, or settings ``Config`` or
``ignored_settings`` refuse: nothing was tried), 1 when valid settings fail on this system
(ROOT missing, port in use, the app does not import, ...), 0 after a clean stop.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence

from . import __version__
from .check import CHECK_TIMEOUT, check, check_argument
from .errors import ConfigError, flag_name

TYPE_CHECKING = False  # as typing.TYPE_CHECKING for type checkers, without importing typing
if TYPE_CHECKING:
    import dataclasses
    from typing import Any, NoReturn

    from .config import Config

ENV_PREFIX = "ZEROHTTP_"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
USAGE_ERROR = 2  # argparse's status, used for every setting refused before starting
START_ERROR = 1  # valid settings that failed on this system

#: The sections of ``--help``, in order; each maps its ``Config`` fields to the metavar that
#: says what the option takes ("" for an on/off option or one with choices). Every field is
#: in exactly one section (a test checks it), so a new field cannot be forgotten.
OPTION_GROUPS: tuple[tuple[str, dict[str, str]], ...] = (
    (
        "listening",
        {
            "host": "ADDRESS",
            "port": "PORT",
            "uds": "PATH",
            "uds_mode": "MODE",
            "fd": "FD",
            "backlog": "N",
        },
    ),
    (
        "files",
        {
            "root": "ROOT",
            "index": "NAME,...",
            "autoindex": "",
            "spa": "",
            "precompressed": "CODING,...",
            "cache_control": "VALUE",
            "immutable_pattern": "REGEX",
            "mime": "EXT=TYPE",
            "open_file_cache": "N",
            "sendfile": "",
        },
    ),
    (
        "compression",
        {
            "compress": "CODING,...",
            "compress_min_size": "BYTES",
            "compress_max_size": "BYTES",
            "compress_cache": "DIR",
            "compress_cache_size": "BYTES",
        },
    ),
    (
        "site rules, auth and CORS",
        {
            "site_rules": "",
            "header": "'NAME: VALUE'",
            "basic_auth_file": "FILE",
            "basic_auth_realm": "TEXT",
            "basic_auth_paths": "PATTERN",
            "cors_allow_origin": "ORIGIN",
            "cors_allow_headers": "NAME,...",
            "cors_max_age": "SECONDS",
        },
    ),
    ("behind a proxy", {"proxy_headers": "", "forwarded_allow_ips": "IP,..."}),
    (
        "limits and timeouts",
        {
            "max_header_bytes": "BYTES",
            "max_discard_bytes": "BYTES",
            "limit_concurrency": "N",
            "header_timeout": "SECONDS",
            "body_timeout": "SECONDS",
            "send_timeout": "SECONDS",
            "keepalive_timeout": "SECONDS",
            "timeout_graceful_shutdown": "SECONDS",
        },
    ),
    (
        "TLS",
        {
            "ssl_certfile": "FILE",
            "ssl_keyfile": "FILE",
            "ssl_keyfile_password": "PASSWORD",
            "ssl_ciphers": "CIPHERS",
            "ssl_ca_certs": "FILE",
            "ssl_cert_reqs": "{0,1,2}",
        },
    ),
    (
        "logs, metrics and health checks",
        {
            "log_level": "",
            "access_log": "",
            "access_log_file": "FILE",
            "metrics_port": "PORT",
            "metrics_host": "ADDRESS",
            "health_path": "PATH",
        },
    ),
    (
        "ASGI",
        {
            "app": "MODULE:ATTR",
            "factory": "",
            "root_path": "/PREFIX",
            "lifespan": "",
            "mount": "/PREFIX=DIR",
        },
    ),
    (
        "WebSocket (with --app)",
        {
            "ws": "",
            "ws_max_size": "BYTES",
            "ws_max_queue": "N",
            "ws_ping_interval": "SECONDS",
            "ws_ping_timeout": "SECONDS",
            "ws_per_message_deflate": "",
        },
    ),
    ("processes", {"workers": "N", "loop": ""}),
    ("settings file", {"config": "FILE"}),
)

#: defaults shown as what they mean rather than as the value that encodes it
DEFAULT_WORDS = {
    "fd": "none",
    "metrics_port": "off",
    "health_path": "off",
    "limit_concurrency": "no limit",
}

DESCRIPTION = (
    "Serve a directory over HTTP/1.1, file bodies zero-copy. Ctrl-C (or SIGTERM) stops the "
    "server: downloads in progress get --timeout-graceful-shutdown seconds to finish, and a "
    "second Ctrl-C stops it at once."
)

ENV_HELP = (
    "Every option can also be set in the environment: ZEROHTTP_ and the option's name in "
    "capitals, dashes as underscores (ZEROHTTP_PORT=8080, ZEROHTTP_ACCESS_LOG=json, "
    "ZEROHTTP_ROOT=/srv for ROOT). The command line wins over the environment. On/off "
    "options take 1/0, true/false, yes/no or on/off; A,B,... lists are written as on the "
    "command line; a repeatable option (--mime, --mount) takes a comma-separated list, or "
    "one entry per line when the value contains a newline (then commas are kept). An empty "
    "variable counts as unset. --config FILE (or ZEROHTTP_CONFIG) reads settings from a TOML "
    "file whose keys are the option names with underscores (port = 8080, access_log = "
    '"json", mime = ["md=text/markdown"], root = "public"), plus [[headers]] and '
    "[[redirects]] tables (see examples/site.toml); its relative paths start from its own "
    "directory. Precedence: the command line, then the environment, then the file, then the "
    "defaults. Exit status: 0 after a clean stop, 2 for a usage error (a bad option, variable "
    "or settings file, settings that cannot work together), 1 when the server cannot start "
    "(ROOT missing, port in use, the app fails to import...) or fails."
)


def env_name(field_name: str) -> str:
    """The environment variable for a ``Config`` field: ``port`` -> ``ZEROHTTP_PORT``."""
    return ENV_PREFIX + field_name.upper()


class _OneLineParser(argparse.ArgumentParser):
    """Bad arguments end with one line on stderr, not a usage dump."""

    #: (variable, value) of the environment setting being parsed, named in its error
    source: tuple[str, str] | None = None

    def error(self, message: str) -> NoReturn:
        if self.source is not None:
            var, value = self.source
            message += f" (from {var})"
            if re.match(r"(tcp|udp)://", value):
                message += (
                    "; Kubernetes sets it for a Service named 'zerohttp': set "
                    "enableServiceLinks: false in the pod spec"
                )
        self.exit(USAGE_ERROR, f"zerohttp: error: {message} (see zerohttp --help)\n")


def build_parser() -> _OneLineParser:
    """The parser; its namespace holds only what the arguments gave (no defaults)."""
    import dataclasses

    from .config import Config
    from .static.options import settable

    parser = _OneLineParser(prog="zerohttp", description=DESCRIPTION, epilog=ENV_HELP)
    parser.add_argument("--version", action="version", version=f"zerohttp {__version__}")
    parser.add_argument(
        "--check",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="fetch URL (http:// or https://, certificate not verified) and exit: 0 on a "
        f"2xx/3xx status, else 1 after one line; times out after {CHECK_TIMEOUT:g} s. "
        "A container health check that needs no curl",
    )
    fields = {field.name: field for field in dataclasses.fields(Config)}
    listed = {name for _, metavars in OPTION_GROUPS for name in metavars}
    unlisted = {
        name: name.upper()
        for name, field in fields.items()
        if name not in listed and settable(field)
    }
    defaults = Config()
    hints = _type_hints()
    for title, metavars in (*OPTION_GROUPS, ("other", unlisted)):
        group = parser.add_argument_group(title) if metavars else None
        for name, metavar in metavars.items():
            if group is not None and name in fields:
                _add_option(group, fields[name], metavar, getattr(defaults, name), hints)
    return parser


def _add_option(
    group: argparse._ArgumentGroup,
    field: dataclasses.Field[Any],
    metavar: str,
    default: object,
    hints: Mapping[str, Any],
) -> None:
    meta = field.metadata
    env = f"[env: {env_name(field.name)}]"
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS}
    if meta.get("positional"):
        help_text = f"{meta['help']} {env}"
        group.add_argument(field.name, nargs="?", metavar=metavar, help=help_text, **kwargs)
        return
    help_text = meta["help"]
    if "default:" not in help_text:  # some texts say what their default means themselves
        help_text += f" (default: {DEFAULT_WORDS.get(field.name) or _shown(default)})"
    kwargs["help"] = f"{help_text} {env}"
    value_type = _value_type(hints.get(field.name), default)
    if "choices" in meta:
        kwargs["choices"] = meta["choices"]
    if value_type is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif meta.get("list") == "repeat":
        kwargs.update(action="append", metavar=metavar)
    elif meta.get("list") == "comma":
        kwargs.update(type=_comma_list, metavar=metavar)
    elif "choices" in meta:
        kwargs["type"] = str.lower  # --log-level DEBUG is --log-level debug
    else:
        kwargs.update(type=value_type, metavar=metavar)
    group.add_argument(flag_name(field.name), dest=field.name, **kwargs)


def _type_hints() -> dict[str, Any]:
    import typing

    from .config import Config

    return typing.get_type_hints(Config)


def _value_type(hint: Any, default: object) -> Any:
    """What converts one argument: the annotation (``X | None`` as X), else the default's type."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = args[0] if len(args) == 1 else None
    if hint in (bool, int, float, str):
        return hint
    if default is None or typing.get_origin(hint) is typing.Literal:
        return str
    return type(default)


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, tuple):
        default = ",".join(default)
    return str(default) if default not in ("", None) else "none"


def _comma_list(text: str) -> tuple[str, ...]:
    """``br,gzip`` -> ("br", "gzip"); ``none`` or nothing -> ()."""
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    return () if items == ("none",) else items


def _env_arguments(
    parser: _OneLineParser, field: dataclasses.Field[Any], value: str, is_bool: bool
) -> list[str]:
    """The command-line arguments that say what the environment value says."""
    if field.metadata.get("positional"):
        return ["--", value]
    flag = flag_name(field.name)
    if is_bool:
        word = value.lower()
        if word in TRUE_WORDS:
            return [flag]
        if word in FALSE_WORDS:
            return ["--no-" + flag[2:]]
        parser.error(
            f"argument {flag}: invalid boolean value: {value!r} "
            "(use 1/0, true/false, yes/no or on/off)"
        )
    if field.metadata.get("list") == "repeat":
        entries = value.splitlines() if "\n" in value else value.split(",")
        return [f"{flag}={entry.strip()}" for entry in entries if entry.strip()]
    return [f"{flag}={value}"]


def settings_from_env(
    parser: _OneLineParser, environ: Mapping[str, str], skip: Sequence[str] = ()
) -> dict[str, Any]:
    """``Config`` field -> value for each ``ZEROHTTP_*`` variable set (fields in ``skip``
    excepted); a bad value exits with the flag's error naming the variable."""
    import dataclasses

    from .config import Config
    from .static.options import settable

    hints = _type_hints()
    defaults = Config()
    found: dict[str, Any] = {}
    for field in dataclasses.fields(Config):
        var = env_name(field.name)
        value = environ.get(var, "").strip()
        if field.name in skip or not value or not settable(field):
            continue
        is_bool = _value_type(hints.get(field.name), getattr(defaults, field.name)) is bool
        parser.source = (var, value)
        try:
            namespace = parser.parse_args(_env_arguments(parser, field, value, is_bool))
        finally:
            parser.source = None
        if field.name in vars(namespace):  # a repeatable option given only separators
            found[field.name] = getattr(namespace, field.name)
    return found


def parse_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """The ``Config`` that ``zerohttp ARGV`` runs with, ``ZEROHTTP_*`` from ``environ``
    (default ``os.environ``), then the ``--config`` file, filling what the arguments leave
    out."""
    parser = build_parser()
    given = _given(parser.parse_args(argv))
    return _config(parser, given, os.environ if environ is None else environ)[0]


def _given(namespace: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line gave."""
    return {name: value for name, value in vars(namespace).items() if name != "check"}


def _config(
    parser: _OneLineParser, given: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[Config, dict[str, Any], dict[str, Any]]:
    """The ``Config`` of the command line, the environment and the settings file, in that
    order of precedence, and the settings that came from the environment and from the file.
    A ConfigError from ``Config`` names the variable or file key that gave what it refuses."""
    from .config import Config

    from_env = settings_from_env(parser, environ, skip=list(given))
    path = given.get("config") or from_env.get("config")
    from_file: dict[str, Any] = {}
    if path:
        from .config_file import load

        from_file = load(path)
    values = {**from_file, **from_env, **given}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    try:
        return Config(**values), from_env, from_file
    except ConfigError as exc:
        message = str(exc)

        def named(names: Collection[str]) -> list[str]:
            return [
                name
                for name in names
                if name not in given
                and re.search(rf"(?<![\w-]){re.escape(flag_name(name))}(?![\w-])", message)
            ]

        by_env = [env_name(name) for name in named(from_env)]
        by_file = [name for name in named(from_file) if name not in from_env]
        if by_env:
            message += f" (from {', '.join(by_env)})"
        if by_file:
            message += f" (from {path}: {', '.join(by_file)})"
        if by_env or by_file:
            raise ConfigError(message) from None
        raise


def ignored_settings(
    config: Config,
    from_cli: Collection[str],
    from_env: Collection[str],
    from_file: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """(errors, warnings) for settings given that others make ineffective, so that none is
    silently ignored. Given together on the command line, or together in the settings
    file, they are an error; when one came from elsewhere (the image's ZEROHTTP_PORT with
    ``--uds``, say, or the file's port) a warning."""
    errors: list[str] = []
    warnings: list[str] = []

    def said(name: str) -> str:
        value = getattr(config, name)
        if name in from_cli:
            return f"ROOT {value!r}" if name == "root" else f"{flag_name(name)} {value}"
        if name in from_env:
            return f"{env_name(name)}={value}"
        from .config_file import toml_value

        return f"{name} = {toml_value(value, limit=0)} in {config.config}"

    def report(names: Sequence[str], why: str, always_error: bool = False) -> None:
        only_file = {*from_file} - {*from_cli, *from_env}
        together = all(name in from_cli for name in names) or all(
            name in only_file for name in names
        )
        if always_error or together:
            errors.append(f"{' and '.join(said(name) for name in names)}: {why}")
        else:
            warnings.append(f"{' and '.join(said(name) for name in names)}: {why}")

    given = {*from_cli, *from_env, *from_file}
    listener = "uds" if config.uds else "fd" if config.fd >= 0 else ""
    tcp = [name for name in ("host", "port") if name in given]
    if listener and tcp:
        ignored = " and ".join(flag_name(name) for name in tcp)
        report([listener, *tcp], f"two addresses to listen on: {ignored} ignored")
    if config.app and "root" in given:
        mounted = [os.path.normpath(directory) for _, directory in config.mounts]
        if os.path.normpath(config.root) not in mounted:
            report(
                ["app", "root"],
                "ROOT is not served with --app: serve files with --mount /PREFIX=DIR",
            )
    if "access_log_file" in given and "access_log" not in given:
        report(
            ["access_log_file"],
            "no access log is written while --access-log is off: "
            "add --access-log common, combined or json",
            always_error=True,
        )
    return errors, warnings


def cleartext_password_warnings(config: Config) -> list[str]:
    """Basic auth over plain HTTP sends the password in clear (base64 is no encryption):
    fine behind a TLS proxy (--proxy-headers says there is one), else worth a warning."""
    if not config.basic_auth_file or config.ssl_certfile or config.proxy_headers:
        return []
    return [
        "--basic-auth-file without TLS: passwords cross the network in clear; add "
        "--ssl-certfile, or serve behind a TLS proxy (--proxy-headers)"
    ]


ADDRESS_FLAGS = ("--port", "--uds", "--fd")


def names_an_address(
    argv: Sequence[str], environ: Mapping[str, str], from_file: Collection[str] = ()
) -> bool:
    """Whether the command line, a ZEROHTTP_ variable or the settings file says where to
    listen (else a socket passed by systemd socket activation is served)."""
    if any(arg.split("=", 1)[0] in ADDRESS_FLAGS for arg in argv):
        return True
    if any(flag[2:] in from_file for flag in ADDRESS_FLAGS):
        return True
    return any(environ.get(f"ZEROHTTP_{flag[2:].upper()}") for flag in ADDRESS_FLAGS)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    url = check_argument(args)
    if url is not None:  # the health check's own form: the server is not imported
        sys.exit(check(url))
    parser = build_parser()
    namespace = parser.parse_args(args)
    if "check" in vars(namespace):
        sys.exit(check(namespace.check))
    given = _given(namespace)
    try:
        config, from_env, from_file = _config(parser, given, os.environ)
    except ConfigError as exc:
        parser.exit(USAGE_ERROR, f"zerohttp: error: {exc}\n")
    errors, warnings = ignored_settings(config, given, from_env, from_file)
    if errors:
        parser.exit(USAGE_ERROR, f"zerohttp: error: {errors[0]}\n")
    for warning in [*warnings, *cleartext_password_warnings(config)]:
        print(f"zerohttp: warning: {warning}", file=sys.stderr)
    _serve(config, address_given=names_an_address(args, os.environ, from_file))


def _serve(config: Config, address_given: bool) -> None:
    import logging

    from .runner import run

    logging.basicConfig(level=config.log_level.upper(), format="%(message)s", stream=sys.stderr)
    try:
        run(config, address_given=address_given)
    except ConfigError as exc:
        print(f"zerohttp: error: {exc}", file=sys.stderr)
        sys.exit(START_ERROR)
    except KeyboardInterrupt:
        pass
