"""CORS for the files: which other origins a browser lets read them (Fetch standard §3.2).

``--cors-allow-origin`` names the origins (``*`` for any). A request whose ``Origin`` is
one of them gets ``Access-Control-Allow-Origin`` (that origin, or ``*``) and, unless the
value is ``*``, ``Origin`` added to its ``Vary``; a preflight (``OPTIONS`` with
``Access-Control-Request-Method``) from one is answered ``204`` here, with the methods the
static handler has, the request headers it may send (the configured list, else those it
asked for) and how long the browser may keep the answer. Any other request, with another
origin or with none, passes through untouched: no CORS fields, no cost but one pass over
its header names, and its cached pre-rendered head is sent as it is.

The wrapper stands outermost around the static handler (``stack.py``), so its fields are
on every answer of it: 200, 206, 304, 404, listings and the SPA fallback. A response that
already has ``Access-Control-Allow-Origin`` (a ``_headers`` rule set it) is left as the
rule made it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from typing import Protocol
from urllib.parse import urlsplit

from ..asgi.host import FileHandler
from ..message.response import Fields, FieldsChange, RequestHead, Response
from ..static.head_values import is_token

ALLOW_METHODS = "GET, HEAD, OPTIONS"  # what the static handler answers
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(text: str) -> str:
    """A configured origin as browsers serialise it (``scheme://host[:port]``, lower-case,
    no default port), or ``*``. Raises ValueError saying what is wrong."""
    if text == "*":
        return text
    if text.lower() == "null":
        raise ValueError("the null origin is any sandboxed page or file: name real origins")
    parts = urlsplit(text)
    if not _SCHEME.fullmatch(parts.scheme) or not text.lower().startswith(parts.scheme + "://"):
        raise ValueError("an origin is scheme://host[:port], e.g. https://example.com")
    if parts.path or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(
            f"an origin has no path: {parts.scheme}://{parts.netloc} (browsers send no slash)"
        )
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise ValueError("an origin is scheme://host[:port], e.g. https://example.com")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 0 to 65535") from None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if any(not 0x21 <= ord(char) <= 0x7E for char in host):
        raise ValueError("the host must be ASCII (an IDN in its xn-- form)")
    scheme = parts.scheme.lower()
    if port is None or DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def request_header_names(value: bytes) -> str | None:
    """A preflight's ``Access-Control-Request-Headers`` as it may be echoed: its tokens,
    comma-joined (anything else dropped: the value goes into our head), or None if none."""
    names = [
        name
        for name in (part.strip(" \t") for part in value.decode("latin-1").split(","))
        if is_token(name)
    ]
    return ", ".join(names) if names else None


ANY_ORIGIN: Fields = (("Access-Control-Allow-Origin", "*"),)
# extended renderings kept, shared out among the allowed origins
RENDERED_CACHE_SIZE = 1024
# the fields a response to an allowed origin gains, and the change that adds them
Allowance = tuple[Fields, FieldsChange]
_VARY_ORIGIN: Fields = (("Vary", "Origin"),)
_ACAO = "access-control-allow-origin"


class CORSPolicy:
    """``--cors-allow-origin``, ``--cors-allow-headers`` and ``--cors-max-age``, with every
    field it adds rendered once."""

    __slots__ = ("allow_headers", "anyone", "max_age", "origins")

    def __init__(
        self, origins: Iterable[str], allow_headers: Iterable[str] = (), max_age: int = 7200
    ) -> None:
        normalised = [parse_origin(origin) for origin in origins]
        self.allow_headers = ", ".join(allow_headers) or None  # None: echo the request's
        self.max_age = str(max_age)
        named = [origin for origin in normalised if origin != "*"]
        # the request's Origin, as bytes, -> what a response to it gains; the renderings
        # kept are shared out among the origins
        each = max(1, RENDERED_CACHE_SIZE // max(1, len(named)))
        self.origins: dict[bytes, Allowance] = {
            origin.encode("ascii"): allowance((("Access-Control-Allow-Origin", origin),), each)
            for origin in named
        }
        self.anyone = allowance(ANY_ORIGIN) if "*" in normalised else None

    def allowance_for(self, origin: bytes) -> Allowance | None:
        """What a response to a request from ``origin`` gains, or None: not allowed."""
        if self.anyone is not None:
            return self.anyone
        return self.origins.get(origin)

    def preflight(self, allowed: Fields, request: RequestHead) -> Response:
        """``204`` to an allowed origin's preflight."""
        fields: list[tuple[str, str]] = [
            *allowed,
            ("Access-Control-Allow-Methods", ALLOW_METHODS),
        ]
        headers = self.allow_headers
        if headers is None:
            asked = request.header(b"access-control-request-headers")
            headers = request_header_names(asked) if asked is not None else None
        if headers is not None:
            fields.append(("Access-Control-Allow-Headers", headers))
        fields.append(("Access-Control-Max-Age", self.max_age))
        if self.anyone is None:
            fields.append(("Vary", "Origin"))
        return Response(204, tuple(fields))


def allowance(allowed: Fields, limit: int = RENDERED_CACHE_SIZE) -> Allowance:
    """``allowed`` and the change that adds it (``cors_fields``) to a response: one carrying
    the open-file cache's pre-rendered head gets its extended rendering, made once per file
    version, so a repeated request from the origin costs a dictionary look-up."""
    return allowed, FieldsChange(partial(cors_fields, allowed=allowed), limit)


def cors_fields(fields: Fields, allowed: Fields) -> Fields:
    """``fields`` with ``allowed`` appended and ``Origin`` in ``Vary`` (not for ``*``);
    the same ``fields`` when they hold an Allow-Origin already (a site rule decided)."""
    vary_at = -1
    for index, (name, _) in enumerate(fields):
        lower = name.lower()
        if lower == _ACAO:
            return fields
        if lower == "vary":
            vary_at = index
    if allowed is ANY_ORIGIN:
        return fields + allowed
    if vary_at < 0:
        return fields + allowed + _VARY_ORIGIN
    vary = fields[vary_at][1]
    tokens = {token.strip(" \t").lower() for token in vary.split(",")}
    if "*" not in tokens and "origin" not in tokens:
        fields = (
            *fields[:vary_at],
            (fields[vary_at][0], f"{vary}, Origin"),
            *fields[vary_at + 1 :],
        )
    return fields + allowed


class CORSHandler:
    """The static handler (or a mount's) with ``policy`` applied to what it answers."""

    __slots__ = ("inner", "policy")

    def __init__(self, inner: FileHandler, policy: CORSPolicy) -> None:
        self.inner = inner
        self.policy = policy

    def handle(self, request: RequestHead) -> Response:
        origin = None
        for name, value in request.headers:
            if name == b"origin":
                origin = value
        if origin is None:
            return self.inner.handle(request)
        found = self.policy.allowance_for(origin)
        if found is None:
            return self.inner.handle(request)
        allowed, change = found
        if (
            request.method == b"OPTIONS"
            and request.header(b"access-control-request-method") is not None
        ):
            return self.policy.preflight(allowed, request)
        return change.apply(self.inner.handle(request))


class CORSSettings(Protocol):
    """The settings CORS reads (``zerohttp.Config`` has them)."""

    @property
    def cors_allow_origin(self) -> tuple[str, ...]: ...
    @property
    def cors_allow_headers(self) -> tuple[str, ...]: ...
    @property
    def cors_max_age(self) -> int: ...


def cors_stack(inner: FileHandler, config: CORSSettings) -> FileHandler:
    """``inner`` answering CORS as ``config`` says; without ``--cors-allow-origin``,
    ``inner`` itself: nothing stands in the way of a server that does not use it."""
    if not config.cors_allow_origin:
        return inner
    policy = CORSPolicy(config.cors_allow_origin, config.cors_allow_headers, config.cors_max_age)
    return CORSHandler(inner, policy)
