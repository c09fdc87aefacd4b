"""Settings whose values are copied into a response head, checked in one place.

A setting such as ``--cache-control`` is written into every response head as given, so a
CR or LF in it would let whoever writes the configuration add header fields (or a whole
response) of their choosing. Each such setting's field says, in its ``head`` metadata, what
it becomes in the head; ``head_value_problem`` is the one check for all of them, run when
the settings are built, so a bad value is a ``ConfigError`` at start, never bytes on a wire.
"""

from __future__ import annotations

import re

#: ``head`` metadata: the value is sent as a header field's value (``Cache-Control: VALUE``)
FIELD_VALUE = "field-value"
#: ``head`` metadata: the value is sent as a header field's name
FIELD_NAME = "field-name"
#: ``head`` metadata: ``EXT=TYPE``, TYPE sent as a Content-Type value
EXT_MEDIA_TYPE = "ext=media-type"
#: ``head`` metadata: a whole ``Name: value`` field, sent as written (for added fields)
HEADER_FIELD = "name: value"

# RFC 9110 §5.6.2 token; §8.3.1 media-type = type "/" subtype parameters, a parameter's
# value a token or a quoted-string (§5.6.4, printable ASCII inside the quotes).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_TOKEN_RE = re.compile(_TOKEN)
_MEDIA_TYPE_RE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*")
# printable ASCII and space: no CR, LF, NUL, other C0 control or DEL (and nothing that the
# latin-1 head encoding would have to guess at)
_FIELD_VALUE_RE = re.compile(r"[\x20-\x7e]*")


def is_token(text: str) -> bool:
    """RFC 9110 §5.6.2: a field name, a coding, a method."""
    return _TOKEN_RE.fullmatch(text) is not None


def head_value_problem(kind: str, value: str) -> str | None:
    """Why ``value`` cannot be sent in a head as ``kind`` (a ``head`` metadata), or None."""
    if kind == FIELD_VALUE:
        if not _FIELD_VALUE_RE.fullmatch(value):
            return "a header field value must be printable ASCII (no CR, LF or control character)"
        if value != value.strip(" "):
            return "a header field value cannot start or end with a space"
        return None
    if kind == FIELD_NAME:
        if not is_token(value):
            return "a header field name must be a token (letters, digits, !#$%&'*+-.^_`|~)"
        return None
    if kind == HEADER_FIELD:
        name, sep, field_value = value.partition(":")
        if not sep:
            return "expected NAME: VALUE"
        return head_value_problem(FIELD_NAME, name) or head_value_problem(
            FIELD_VALUE, field_value.strip(" ")
        )
    if kind == EXT_MEDIA_TYPE:
        media_type = value.partition("=")[2].strip()
        if not _MEDIA_TYPE_RE.fullmatch(media_type):
            return f"{media_type!r} is not a media type TYPE/SUBTYPE[; NAME=VALUE]"
        return None
    raise ValueError(f"unknown head metadata {kind!r}")  # a programming error, not a setting
