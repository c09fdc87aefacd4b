"""TLS for the listener: the server context, and why file bodies cannot be zero-copy over it.

Zero-copy over TLS needs kernel TLS: OpenSSL hands the session keys to the kernel's ``tls``
ULP, then sendfile(2) sends encrypted records. asyncio's and uvloop's SSL transports run
OpenSSL over a memory BIO, on which it never enables kTLS, and the kernels these machines
run are built without ``CONFIG_TLS`` (``shared/notes/ktls-platform.md``). So TLS bodies take
the fallback path; ``ktls_unavailable_reason`` says why in one line, and the body-path choice
stays a single switch (``HTTPConnection.zero_copy``) for a kTLS path to use one day.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
import sys
from dataclasses import dataclass

from .errors import ConfigError

ULP_LIST = "/proc/sys/net/ipv4/tcp_available_ulp"

# glibc's mallopt parameters (malloc.h) and the values that keep TLS bodies' buffers on the
# heap: see keep_buffers_on_the_heap.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 8 << 20
TRIM_THRESHOLD = 64 << 20
TOP_PAD = 16 << 20


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
    load_key_pair(context, settings)
    if settings.ciphers:
        try:
            context.set_ciphers(settings.ciphers)
        except ssl.SSLError:
            raise ConfigError(f"--ssl-ciphers {settings.ciphers!r}: no cipher matches") from None
    if settings.ca_certs:
        _read_pem("--ssl-ca-certs", settings.ca_certs)
        try:
            context.load_verify_locations(settings.ca_certs)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"--ssl-ca-certs {settings.ca_certs!r}: {exc}") from None
    context.verify_mode = ssl.VerifyMode(settings.cert_reqs)
    context.set_alpn_protocols(["http/1.1"])
    keep_buffers_on_the_heap()
    return context


def keep_buffers_on_the_heap() -> bool:
    """Keep the allocator from mapping and unmapping memory per body chunk; True if set.

    A TLS body is read, encrypted and written in 256 KiB pieces, each a fresh ``bytes``.
    glibc maps blocks that size with mmap and unmaps them on free (and trims the heap's
    top), so every chunk faulted in new zeroed pages: a 1 GiB download spent most of its
    CPU in page faults (benchmarks/RESULTS.md, "Issue 21"). Raising the mmap and trim
    thresholds keeps the freed blocks for the next chunk. Not glibc: nothing to do.
    """
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)


class _PasswordNeeded(Exception):
    """Raised by the password callback: the key is encrypted and no password was given."""


def load_key_pair(context: ssl.SSLContext, settings: TLSSettings) -> None:
    """Load the certificate chain and key; ConfigError says what is wrong, naming the file.

    The password goes in as a callback, which OpenSSL calls only for an encrypted key: so
    an encrypted key without ``--ssl-keyfile-password`` fails at once instead of OpenSSL
    prompting on the terminal, and a failure after the call is a wrong password.
    """
    key_flag = _key_flag(settings)
    texts = {flag: _read_pem(flag, path) for flag, path in _pem_files(settings)}
    asked = False

    def password() -> str:
        nonlocal asked
        asked = True
        if not settings.password:
            raise _PasswordNeeded
        return settings.password

    try:
        context.load_cert_chain(settings.certfile, settings.keyfile or None, password)
    except _PasswordNeeded:
        raise ConfigError(
            f"{key_flag} {_key_path(settings)!r}: the key is encrypted: give its password "
            "with --ssl-keyfile-password"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(_key_pair_problem(settings, texts, asked, exc)) from None


def _pem_files(settings: TLSSettings) -> list[tuple[str, str]]:
    files = [("--ssl-certfile", settings.certfile)]
    if settings.keyfile:
        files.append(("--ssl-keyfile", settings.keyfile))
    return files


def _read_pem(flag: str, path: str) -> str:
    """The file's text, for telling later what it holds; ConfigError if it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read().decode("ascii", "replace")
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path!r}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{flag} {path!r}: is a directory, not a PEM file") from None
    except OSError as exc:
        raise ConfigError(f"{flag} {path!r}: {exc.strerror or exc}") from None


def _key_path(settings: TLSSettings) -> str:
    return settings.keyfile or settings.certfile


def _key_flag(settings: TLSSettings) -> str:
    """The flag that names the file holding the key."""
    return "--ssl-keyfile" if settings.keyfile else "--ssl-certfile"


def _key_pair_problem(
    settings: TLSSettings, texts: dict[str, str], asked: bool, exc: Exception
) -> str:
    """One line for a key pair OpenSSL refused (its own words are often just ``PEM lib``)."""
    cert, key_flag = settings.certfile, _key_flag(settings)
    key_text = texts[key_flag]
    if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
        if settings.keyfile:
            return (
                f"--ssl-keyfile {settings.keyfile!r} is not the key of the certificate "
                f"in --ssl-certfile {cert!r}"
            )
        return f"--ssl-certfile {cert!r}: the private key is not the certificate's key"
    if "-----BEGIN CERTIFICATE-----" not in texts["--ssl-certfile"]:
        return f"--ssl-certfile {cert!r}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
    if asked:
        return f"--ssl-keyfile-password: wrong password for the key in {_key_path(settings)!r}"
    if "PRIVATE KEY-----" not in key_text:
        if settings.keyfile:
            return f"--ssl-keyfile {settings.keyfile!r}: no PEM private key in it"
        return (
            f"--ssl-certfile {cert!r} holds a certificate but no private key: give the key "
            "with --ssl-keyfile"
        )
    return f"{key_flag} {_key_path(settings)!r}: cannot load the key pair: {exc}"


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
