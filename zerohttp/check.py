"""``zerohttp --check URL``: the container health check, which needs no curl in the image.

It runs every few seconds in every container, so this module imports only the standard
library's HTTP client: nothing of the server (no asyncio, h11, uvloop, prometheus_client).
"""

from __future__ import annotations

import http.client
import sys
import urllib.parse

from . import __version__

CHECK_TIMEOUT = 3.0


def check(url: str, timeout: float = CHECK_TIMEOUT) -> int:
    """GET ``url``: 0 on a 2xx/3xx status, else 1 after one line on stderr.

    Never 2, which Docker reserves in a HEALTHCHECK. An https:// certificate is not
    verified: the probe asks whether the server answers, not who it is.
    """
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        print(
            f"zerohttp: error: --check {url!r}: expected http://HOST[:PORT]/PATH", file=sys.stderr
        )
        return 1
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers={"User-Agent": f"zerohttp-check/{__version__}"})
        response = connection.getresponse()
        status, reason = response.status, response.reason
    except (OSError, http.client.HTTPException) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        print(f"zerohttp: check {url}: {why}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if 200 <= status < 400:
        print(f"zerohttp: check {url}: {status} {reason}")
        return 0
    print(f"zerohttp: check {url}: {status} {reason}", file=sys.stderr)
    return 1


def check_argument(argv: list[str]) -> str | None:
    """The URL when ``argv`` is exactly ``--check URL`` (or ``--check=URL``): the form the
    image's HEALTHCHECK and the probes use, answered without building the full parser.
    Any other form (more options, an abbreviation) goes through the parser as usual."""
    if len(argv) == 2 and argv[0] == "--check" and not argv[1].startswith("-"):
        return argv[1]
    if len(argv) == 1 and argv[0].startswith("--check="):
        return argv[0].partition("=")[2]
    return None
