"""One settings object shared by the CLI, the Python API and the connection layer.

Each field carries its CLI help in its metadata so the command line is built from this
class (see ``cli.py``) and the option list exists exactly once. The file-serving fields
come from ``StaticOptions``, which the ASGI ``StaticFiles`` app uses on its own.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from typing import Any, Literal

from .access.cors import parse_origin
from .errors import ConfigError, flag_name
from .http.accesslog import ACCESS_LOG_FORMATS
from .http.proxy import TrustedPeers
from .listeners import parse_mode
from .static.head_values import FIELD_NAME
from .static.options import StaticOptions, settle_fields
from .static.options import option as _opt
from .static.urlpattern import compile_pattern
from .tls import TLSSettings
from .websocket.driver import WebSocketSettings

LoopName = Literal["auto", "uvloop", "asyncio"]
LOOP_NAMES: tuple[LoopName, ...] = ("auto", "uvloop", "asyncio")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LIFESPAN_MODES = ("auto", "on", "off")
# uvicorn's names: "websockets" and "websockets-sansio" are the one codec zerohttp has
# (websockets' sans-IO layer); wsproto was measured and not offered (websocket/codec.py)
WS_MODES = ("auto", "none", "websockets", "websockets-sansio")
BASIC_AUTH_REALM = "zerohttp"


@dataclass(frozen=True, slots=True)
class Config(StaticOptions):
    """Everything a running server needs to know; immutable once the server starts."""

    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8000, "TCP port to listen on (0 picks a free one)")
    loop: LoopName = _opt(
        "auto", "event loop: uvloop when installed, else asyncio", choices=LOOP_NAMES
    )
    sendfile: bool = _opt(
        True, "send file bodies with sendfile(2); --no-sendfile reads them instead"
    )
    log_level: str = _opt("info", "logging level", choices=LOG_LEVELS)
    max_header_bytes: int = _opt(
        16384, "largest accepted request line plus header fields, in bytes (else 431)"
    )
    keepalive_timeout: float = _opt(75.0, "seconds an idle keep-alive connection is kept open")
    header_timeout: float = _opt(30.0, "seconds a client has to send a complete request head")
    send_timeout: float = _opt(60.0, "seconds a response may make no progress before it is aborted")
    body_timeout: float = _opt(
        30.0,
        "longest wait, in seconds, between two reads of a request body (else 408, or close)",
    )
    max_discard_bytes: int = _opt(
        65536,
        "largest request body (sent with a GET or HEAD) read and dropped on a kept connection",
    )
    backlog: int = _opt(1024, "listen(2) backlog")
    limit_concurrency: int = _opt(
        0, "most open client connections; more get 503 and are closed at once (0: no limit)"
    )
    timeout_graceful_shutdown: float = _opt(
        10.0, "seconds busy connections get to finish after SIGTERM/SIGINT (a second: at once)"
    )
    uds: str = _opt("", "listen on this unix socket instead of --host/--port (removed on exit)")
    uds_mode: str = _opt(
        "660", "permissions of the --uds socket, octal (660: a proxy in our group can connect)"
    )
    fd: int = _opt(-1, "accept on this inherited listening socket descriptor instead")
    workers: int = _opt(
        1, "worker processes, each with its own loop, sharing the port through SO_REUSEPORT"
    )
    access_log: str = _opt(
        "off",
        "access log format: off, common, combined (as Apache/nginx) or json (one object a line)",
        choices=ACCESS_LOG_FORMATS,
    )
    access_log_file: str = _opt("", "write the access log to this file (default: stdout)")
    metrics_port: int = _opt(
        -1, "serve Prometheus metrics at /metrics on this port (-1: off; 0 picks a free one)"
    )
    metrics_host: str = _opt("127.0.0.1", "address of the metrics listener")
    health_path: str = _opt(
        "",
        "answer GET/HEAD of this path with 200 ok whatever ROOT or the app holds, never "
        "logged: for health checks (empty: off)",
    )
    app: Any = _opt(
        "",
        "host an ASGI application, MODULE:ATTRIBUTE imported from the current directory "
        "(or, from Python, the application object)",
    )
    factory: bool = _opt(False, "--app names a factory: call it to get the application")
    root_path: str = _opt("", "ASGI root_path: the prefix the application is mounted under")
    lifespan: str = _opt(
        "auto", "ASGI lifespan: auto (if the app supports it), on, off", choices=LIFESPAN_MODES
    )
    ws: str = _opt(
        "auto",
        "WebSocket for --app: auto or websockets (websockets' sans-IO codec), or none "
        "(an upgrade request gets 501)",
        choices=WS_MODES,
    )
    ws_max_size: int = _opt(
        16 * 1024 * 1024, "largest WebSocket message accepted, in bytes (else close 1009)"
    )
    ws_max_queue: int = _opt(
        32, "WebSocket messages held for the application before reading from the client stops"
    )
    ws_ping_interval: float = _opt(20.0, "seconds between WebSocket keepalive pings (0: none)")
    ws_ping_timeout: float = _opt(
        20.0, "seconds a WebSocket ping waits for its pong before closing with 1011"
    )
    ws_per_message_deflate: bool = _opt(
        True, "offer WebSocket permessage-deflate compression (RFC 7692) to clients that ask"
    )
    ssl_certfile: str = _opt("", "TLS: certificate chain (PEM); serves HTTPS when given")
    ssl_keyfile: str = _opt("", "TLS: private key (PEM), if not in --ssl-certfile")
    ssl_keyfile_password: str = _opt("", "TLS: password of an encrypted --ssl-keyfile")
    ssl_ciphers: str = _opt("", "TLS: OpenSSL cipher list for TLS 1.2 (default: OpenSSL's)")
    ssl_ca_certs: str = _opt(
        "", "TLS: CA certificates (PEM) that client certificates must chain to"
    )
    ssl_cert_reqs: int = _opt(
        0, "TLS: client certificates: 0 not asked, 1 optional, 2 required (as ssl.CERT_*)"
    )
    mount: tuple[str, ...] = _opt(
        (),
        "with --app: serve DIR natively under /PREFIX, as /PREFIX=DIR (repeatable)",
        list="repeat",
    )
    basic_auth_file: str = _opt(
        "", "require a password: an htpasswd file of bcrypt entries (htpasswd -B)"
    )
    basic_auth_realm: str = _opt(BASIC_AUTH_REALM, "the realm named in WWW-Authenticate")
    basic_auth_paths: tuple[str, ...] = _opt(
        (),
        "URL patterns (as in _headers) that need the password (repeatable; default: all)",
        list="repeat",
    )
    cors_allow_origin: tuple[str, ...] = _opt(
        (), "answer CORS requests from this ORIGIN (repeatable; * for any)", list="repeat"
    )
    cors_allow_headers: tuple[str, ...] = _opt(
        (),
        "request headers a CORS preflight may ask for (default: echo what it asks)",
        list="comma",
        head=FIELD_NAME,
    )
    cors_max_age: int = _opt(7200, "seconds a browser may cache a CORS preflight's answer")
    proxy_headers: bool = _opt(
        False,
        "take the client's address and scheme from X-Forwarded-For/-Proto and Forwarded "
        "when the peer is in --forwarded-allow-ips",
    )
    forwarded_allow_ips: tuple[str, ...] = _opt(
        ("127.0.0.1",),
        "peers (addresses or networks; * for all) whose proxy headers are trusted",
        list="comma",
    )
    config: str = _opt("", "read settings from this TOML file (see examples/site.toml)")

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, with the CLI flag's name in the message."""
        settle_fields(self)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port}: must be between 0 and 65535")
        if self.loop not in LOOP_NAMES:
            raise ConfigError(f"--loop {self.loop}: must be one of {', '.join(LOOP_NAMES)}")
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(
                f"--log-level {self.log_level}: must be one of {', '.join(LOG_LEVELS)}"
            )
        if self.max_header_bytes < 1024:
            raise ConfigError(f"--max-header-bytes {self.max_header_bytes}: must be at least 1024")
        for name in ("keepalive_timeout", "header_timeout", "send_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(
                    f"{flag_name(name)} {getattr(self, name)}: must be a positive number of seconds"
                )
        if self.limit_concurrency < 0:
            raise ConfigError(f"--limit-concurrency {self.limit_concurrency}: must be >= 0")
        if not self.timeout_graceful_shutdown >= 0:
            raise ConfigError(
                f"--timeout-graceful-shutdown {self.timeout_graceful_shutdown}: must be >= 0"
            )
        if self.max_discard_bytes < 0:
            raise ConfigError(f"--max-discard-bytes {self.max_discard_bytes}: must be >= 0")
        if self.backlog < 1:
            raise ConfigError(f"--backlog {self.backlog}: must be at least 1")
        if self.uds and self.fd >= 0:
            raise ConfigError("--uds and --fd are two ways to listen: give one")
        parse_mode(self.uds_mode)
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: must be at least 1")
        if self.workers > 1 and (not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork")):
            raise ConfigError("--workers needs SO_REUSEPORT and fork() (Linux, BSD, macOS)")
        if self.access_log not in ACCESS_LOG_FORMATS:
            raise ConfigError(
                f"--access-log {self.access_log}: must be one of {', '.join(ACCESS_LOG_FORMATS)}"
            )
        if not -1 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port {self.metrics_port}: must be -1 (off) to 65535")
        if (
            self.metrics_port == self.port != 0
            and not self.uds
            and self.fd < 0
            and _same_listener_host(self.metrics_host, self.host)
        ):
            raise ConfigError(
                f"--metrics-port {self.metrics_port} is also --port: the metrics listener "
                "needs a port of its own"
            )
        if self.metrics_port == 0 and self.workers > 1:
            raise ConfigError("--metrics-port 0 with --workers: name the port the workers share")
        if self.health_path and (
            not self.health_path.startswith("/")
            or any(not 0x21 <= ord(char) <= 0x7E for char in self.health_path)
            or "?" in self.health_path
            or "#" in self.health_path
        ):
            raise ConfigError(
                f"--health-path {self.health_path!r}: must be a URL path such as /healthz"
            )
        if self.lifespan not in LIFESPAN_MODES:
            raise ConfigError(f"--lifespan {self.lifespan}: must be one of auto, on, off")
        if self.root_path and not self.root_path.startswith("/"):
            raise ConfigError(f"--root-path {self.root_path!r}: must start with /")
        _check_websocket(self)
        if self.mount and not self.app:
            raise ConfigError("--mount needs --app (without an app, ROOT is served at /)")
        self.mounts  # noqa: B018 - raises ConfigError for a malformed entry
        if self.ssl_cert_reqs not in (0, 1, 2):
            raise ConfigError(f"--ssl-cert-reqs {self.ssl_cert_reqs}: must be 0, 1 or 2")
        tls_only = {
            "--ssl-keyfile": self.ssl_keyfile,
            "--ssl-keyfile-password": self.ssl_keyfile_password,
            "--ssl-ciphers": self.ssl_ciphers,
            "--ssl-ca-certs": self.ssl_ca_certs,
            "--ssl-cert-reqs": self.ssl_cert_reqs,
        }
        ignored = [flag for flag, value in tls_only.items() if value]
        if ignored and not self.ssl_certfile:
            raise ConfigError(
                f"{' and '.join(ignored)}: TLS settings need --ssl-certfile "
                "(without it there is no TLS)"
            )
        if self.ssl_cert_reqs and self.ssl_certfile and not self.ssl_ca_certs:
            # nothing to verify a client certificate against: with 2 every handshake
            # fails, with 1 every client that does send a certificate is refused
            raise ConfigError(
                f"--ssl-cert-reqs {self.ssl_cert_reqs} needs --ssl-ca-certs: without CA "
                "certificates no client certificate can be verified"
            )
        check_cors_and_proxy(self)
        _check_basic_auth(self)
        StaticOptions.__post_init__(self)  # slots dataclasses lose zero-argument super()

    @property
    def mounts(self) -> list[tuple[str, str]]:
        """``--mount`` entries as (URL prefix without trailing slash, directory)."""
        found = []
        for entry in self.mount:
            prefix, sep, directory = entry.partition("=")
            prefix = prefix.rstrip("/")
            if not sep or not prefix.startswith("/") or not directory:
                raise ConfigError(f"--mount {entry!r}: expected /PREFIX=DIR, e.g. /static=public")
            found.append((prefix, directory))
        return found

    @property
    def tls(self) -> TLSSettings | None:
        if not self.ssl_certfile:
            return None
        return TLSSettings(
            self.ssl_certfile,
            self.ssl_keyfile,
            self.ssl_keyfile_password,
            self.ssl_ciphers,
            self.ssl_ca_certs,
            self.ssl_cert_reqs,
        )

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def check_cors_and_proxy(config: Config) -> None:
    """Refuse a CORS or proxy setting that cannot work, naming its flag."""
    for origin in config.cors_allow_origin:
        try:
            parse_origin(origin)
        except ValueError as exc:
            raise ConfigError(f"--cors-allow-origin {origin!r}: {exc}") from None
    if "*" in config.cors_allow_origin and len(config.cors_allow_origin) > 1:
        raise ConfigError("--cors-allow-origin *: allows every origin, so name no other")
    if config.cors_max_age < 0:
        raise ConfigError(f"--cors-max-age {config.cors_max_age}: must be >= 0 seconds")
    try:
        TrustedPeers(config.forwarded_allow_ips)
    except ValueError as exc:
        raise ConfigError(f"--forwarded-allow-ips: {exc}") from None


def websocket_settings(config: Config) -> WebSocketSettings | None:
    """What the ASGI host's WebSocket driver reads; None with ``--ws none``."""
    if config.ws == "none":
        return None
    return WebSocketSettings(
        max_size=config.ws_max_size,
        max_queue=config.ws_max_queue,
        ping_interval=config.ws_ping_interval,
        ping_timeout=config.ws_ping_timeout,
        per_message_deflate=config.ws_per_message_deflate,
        send_timeout=config.send_timeout,
    )


def _check_websocket(config: Config) -> None:
    if config.ws not in WS_MODES:
        raise ConfigError(f"--ws {config.ws}: must be one of {', '.join(WS_MODES)}")
    if config.ws_max_size < 1:
        raise ConfigError(f"--ws-max-size {config.ws_max_size}: must be at least 1 byte")
    if config.ws_max_queue < 1:
        raise ConfigError(f"--ws-max-queue {config.ws_max_queue}: must be at least 1")
    if config.ws_ping_interval < 0:
        raise ConfigError(f"--ws-ping-interval {config.ws_ping_interval}: must be 0 or more")
    if config.ws_ping_timeout <= 0:
        raise ConfigError(f"--ws-ping-timeout {config.ws_ping_timeout}: must be more than 0")


def _check_basic_auth(config: Config) -> None:
    """--basic-auth-*: the realm goes into a quoted-string of WWW-Authenticate as it is, the
    paths must compile as URL patterns, and neither means anything without the file (read
    and checked line by line when the server starts: ``access.gate``)."""
    realm = config.basic_auth_realm
    if not realm or any(not 0x20 <= ord(char) <= 0x7E or char in '"\\' for char in realm):
        raise ConfigError(
            f"--basic-auth-realm {realm!r}: must be printable ASCII without quote or backslash"
        )
    for pattern in config.basic_auth_paths:
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise ConfigError(f"--basic-auth-paths {exc}") from None
    if config.basic_auth_file:
        return
    given = [
        flag
        for flag, set_ in (
            ("--basic-auth-realm", realm != BASIC_AUTH_REALM),
            ("--basic-auth-paths", bool(config.basic_auth_paths)),
        )
        if set_
    ]
    if given:
        raise ConfigError(
            f"{' and '.join(given)}: need --basic-auth-file (without it no password is asked)"
        )


def _same_listener_host(one: str, other: str) -> bool:
    """Whether listeners on these two hosts and one port would clash: the same address, or a
    wildcard (``""`` is every address, ``0.0.0.0`` every IPv4 one, ``::`` every IPv6 one)."""
    if one == other or "" in (one, other):
        return True
    if (":" in one) != (":" in other):  # IPv4 and IPv6 (asyncio binds IPv6 sockets v6-only)
        return False
    return one in ("0.0.0.0", "::") or other in ("0.0.0.0", "::")
