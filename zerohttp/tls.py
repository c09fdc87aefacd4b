"""TLS for the listener: the server context, and why file bodies cannot be zero-copy over it.

Zero-copy over TLS needs kernel TLS: OpenSSL hands the session keys to the kernel's ``tls``
ULP, then sendfile(2) sends encrypted records. asyncio's and uvloop's SSL transports run
OpenSSL over a memory BIO, on which it never enables kTLS, and the kernels these machines
run are built without ``CONFIG_TLS`` (``shared/notes/ktls-platform.md``). So TLS bodies take
the fallback path; ``ktls_unavailable_reason`` says why in one line, and the body-path choice
stays a single switch (``HTTPConnection.zero_copy``) for a kTLS path to use one day.
"""

from __future__ import annotations

import ssl
import sys
from dataclasses import dataclass

from .errors import ConfigError

ULP_LIST = "/proc/sys/net/ipv4/tcp_available_ulp"


@dataclass(frozen=True, slots=True)
class TLSSettings:
    certfile: str
    keyfile: str = ""
    password: str = ""
    ciphers: str = ""
    ca_certs: str = ""
    cert_reqs: int = ssl.CERT_NONE


def server_context(settings: TLSSettings) -> ssl.SSLContext:
    """TLS 1.2 and 1.3, ALPN ``http/1.1``; ConfigError names the file that did not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            settings.certfile, settings.keyfile or None, settings.password or None
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"--ssl-certfile/--ssl-keyfile: {exc.filename}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"--ssl-certfile/--ssl-keyfile: cannot load the key pair: {exc}"
        ) from None
    if settings.ciphers:
        try:
            context.set_ciphers(settings.ciphers)
        except ssl.SSLError:
            raise ConfigError(f"--ssl-ciphers {settings.ciphers!r}: no cipher matches") from None
    if settings.ca_certs:
        try:
            context.load_verify_locations(settings.ca_certs)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"--ssl-ca-certs {settings.ca_certs!r}: {exc}") from None
    context.verify_mode = ssl.VerifyMode(settings.cert_reqs)
    context.set_alpn_protocols(["http/1.1"])
    return context


def ktls_unavailable_reason(ulp_list: str | None = None) -> str:
    """Why TLS bodies are not sent with sendfile here (always a reason, for now: see above)."""
    if ulp_list is None:
        try:
            with open(ULP_LIST) as file:
                ulp_list = file.read()
        except OSError:
            ulp_list = ""
    reasons = []
    if "tls" not in ulp_list.split():
        reasons.append("the kernel has no 'tls' ULP (CONFIG_TLS)")
    if not hasattr(ssl, "OP_ENABLE_KTLS"):
        reasons.append(
            f"Python {sys.version_info[0]}.{sys.version_info[1]} has no ssl.OP_ENABLE_KTLS"
        )
    reasons.append("the event loop's SSL transport encrypts in user space (memory BIO)")
    return "; ".join(reasons)
