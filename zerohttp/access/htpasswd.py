"""htpasswd files, bcrypt entries only: what ``htpasswd -B`` writes.

A password file is a list of ``user:hash`` lines. Apache's ``htpasswd`` can also write
apr1-MD5 (``-m``, its old default), unsalted SHA-1 (``-s``), DES crypt (``-d``) and plain
text (``-p``); a stolen file of those is cracked in minutes on one GPU, so an entry in any
scheme but bcrypt is refused with its line number and the reason, rather than accepted
and left for an attacker. Parsing is a pure function over the text; reading the file and
noticing edits is the gate's business (``gate.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import bcrypt

# $2a$ (the original), $2b$ (OpenBSD's fix of the length wrap) and $2y$ (crypt_blowfish's,
# what htpasswd -B writes) are the same algorithm for every password below 256 bytes; $2x$
# marks hashes made by the buggy crypt_blowfish and is refused with the other schemes.
BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}\Z")
# crypt(3) with DES: 13 characters of the crypt alphabet, no marker
DES_CRYPT = re.compile(r"[./A-Za-z0-9]{13}\Z")
# bcrypt reads the first 72 bytes of a password; htpasswd -B (crypt_blowfish) drops the
# rest without a word, and pyca/bcrypt refuses longer ones: cut them the way htpasswd did
BCRYPT_PASSWORD_BYTES = 72

UNSAFE_SCHEMES: tuple[tuple[str, str], ...] = (
    ("$apr1$", "apr1-MD5 (htpasswd -m) is MD5, fast to brute-force"),
    ("{SHA}", "SHA-1 (htpasswd -s) is unsalted and fast to brute-force"),
    ("$1$", "MD5-crypt is fast to brute-force"),
    ("$5$", "SHA-256-crypt is not bcrypt"),
    ("$6$", "SHA-512-crypt is not bcrypt"),
    ("$2x$", "$2x$ marks a hash made by a buggy bcrypt"),
    ("$2", "a malformed bcrypt hash"),
)
ADVICE = "make it again with htpasswd -B"


class HtpasswdError(ValueError):
    """A line that is not a bcrypt entry, or a file with none: names file and line."""


@dataclass(frozen=True, slots=True)
class PasswordFile:
    """Users and their bcrypt hashes, as read from one version of the file."""

    users: Mapping[str, bytes]

    def verify(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s; slow on purpose (bcrypt), so never call it
        on the event loop. An unknown user costs one check against a hash of the same cost,
        so the answer's timing does not say which user names exist."""
        stored = self.users.get(user)
        secret = password.encode("utf-8")[:BCRYPT_PASSWORD_BYTES]
        if stored is None:
            bcrypt.checkpw(secret, self.decoy)
            return False
        return bcrypt.checkpw(secret, stored)

    @property
    def decoy(self) -> bytes:
        """A hash no password matches, with the cost of the file's first entry."""
        cost = next(iter(self.users.values()))[4:6] if self.users else b"05"
        return b"$2b$" + cost + b"$" + b"." * 53


def normalised(text: str) -> str:
    """RFC 7617 §2.1 with charset UTF-8: user-ids and passwords compare in NFC (RFC 8265's
    profiles), so a name typed as e+combining accent matches the precomposed é."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def unsafe_scheme(hash_text: str) -> str:
    """Why ``hash_text`` (not bcrypt) is refused, for the error line."""
    for prefix, why in UNSAFE_SCHEMES:
        if hash_text.startswith(prefix):
            return why
    if DES_CRYPT.match(hash_text):
        return "DES crypt (htpasswd -d) reads 8 characters of a password and is fast to crack"
    return "plain text (htpasswd -p) or an unknown scheme"


def parse_htpasswd(text: str, path: str) -> PasswordFile:
    """The entries of an htpasswd file's ``text``; HtpasswdError names ``path`` and the line.

    Blank lines and ``#`` comments are skipped. A user name may not be empty, hold a colon
    (RFC 7617: the user-id ends at the first one) or a control character, nor appear twice.
    """
    users: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        user, sep, hash_text = line.partition(":")
        if not sep or not user:
            raise HtpasswdError(f"{where}: expected USER:HASH")
        if any(unicodedata.category(char) == "Cc" for char in user):
            raise HtpasswdError(f"{where}: control character in the user name")
        if not BCRYPT.match(hash_text):
            raise HtpasswdError(
                f"{where}: user {user!r}: {unsafe_scheme(hash_text)}; only bcrypt is "
                f"accepted ({ADVICE})"
            )
        user = normalised(user)
        if user in users:
            raise HtpasswdError(f"{where}: user {user!r} appears twice")
        users[user] = hash_text.encode("ascii")
    if not users:
        raise HtpasswdError(f"{path}: no USER:HASH entries: nobody could sign in")
    return PasswordFile(users)
