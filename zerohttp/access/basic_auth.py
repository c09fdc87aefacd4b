"""HTTP Basic authentication (RFC 7617) as plain functions: the credentials a request
carries, and the answers that ask for them.

The challenge names the realm and ``charset="UTF-8"``, so browsers send user names and
passwords beyond ASCII as UTF-8 (RFC 7617 §2.1). The 401 body is the same short page for
every failure: it never says whether the user exists or which part was wrong.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from ..message.response import Response, error_response
from .htpasswd import normalised

# RFC 9110 §11.1: auth-scheme (a token, any case), one or more spaces, then the token68
_CREDENTIALS = re.compile(rb"[Bb][Aa][Ss][Ii][Cc] +([A-Za-z0-9+/]+=*) *\Z")
# A verification is queued for at most this long in the eyes of the client: Retry-After
RETRY_AFTER_SECONDS = 1


def parse_basic(value: bytes) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization`` value, or None when it is not Basic
    credentials: another scheme, bad base64, not UTF-8, no colon, a control character
    (RFC 7617 §2: neither part may hold one). Both parts are NFC-normalised."""
    found = _CREDENTIALS.match(value)
    if found is None:
        return None
    try:
        decoded = base64.b64decode(found.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or _has_control(decoded):
        return None
    return normalised(user), normalised(password)


def _has_control(text: str) -> bool:
    if text.isascii():
        return any(ord(char) < 0x20 or char == "\x7f" for char in text)
    return any(unicodedata.category(char) == "Cc" for char in text)


def challenge_value(realm: str) -> str:
    """The ``WWW-Authenticate`` value; ``realm`` was checked by Config (no quote, backslash
    or control character), so it goes into the quoted-string as it is."""
    return f'Basic realm="{realm}", charset="UTF-8"'


def challenge(realm: str) -> Response:
    """401 asking for credentials; the same page whatever was wrong."""
    return error_response(
        401, [("WWW-Authenticate", challenge_value(realm)), ("Cache-Control", "no-store")]
    )


def busy() -> Response:
    """503 when too many password checks are queued: the server, not this client, is over
    its bound (a flood from elsewhere), so not 429; Retry-After says when to come back."""
    return error_response(
        503, [("Retry-After", str(RETRY_AFTER_SECONDS)), ("Cache-Control", "no-store")]
    )
