"""The opening handshake (RFC 6455 §4.2), decided over plain data.

``read_offer`` checks a client's upgrade request and negotiates permessage-deflate
(RFC 7692) before the application sees it: a request that is no valid handshake gets a
clear 400 (426 for a version we do not speak) and never reaches the app. ``accepted``
renders the 101 the application's accept turns into. The frame-level extension objects
are websockets' own (``websockets.extensions.permessage_deflate``), so the codec and the
negotiation agree by construction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import InvalidHeader, NegotiationError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.headers import build_extension, parse_extension, parse_subprotocol

from ..message.response import RequestHead, Response

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION = b"13"
Headers = Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Offer:
    """A valid opening handshake: what the 101 and the connection need from it."""

    key: bytes
    subprotocols: tuple[str, ...]
    extension_header: str | None  # our Sec-WebSocket-Extensions answer, if one was agreed
    extensions: tuple[Extension, ...]


def deflate_factory() -> ServerPerMessageDeflateFactory:
    """websockets' memory-lean defaults (window 2**12, memLevel 5): ~64 KiB a connection
    instead of ~320 KiB at zlib's defaults, for a ratio within a few percent."""
    return ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
    )


def is_upgrade(headers: Headers) -> bool:
    """The request asks for ``Upgrade: websocket`` (any case, possibly among others)."""
    return any(name == b"upgrade" and b"websocket" in _tokens(value) for name, value in headers)


def wants_websocket(request: RequestHead) -> bool:
    """``request`` asks for a WebSocket: ``is_upgrade``, in HTTP/1.1 or later. An HTTP/1.0
    request's Upgrade field is ignored (RFC 9110 §7.8: "A server MUST ignore an Upgrade
    header field that is received in an HTTP/1.0 request"): it is plain HTTP."""
    return request.http_version != b"1.0" and is_upgrade(request.headers)


def read_offer(request: RequestHead, *, deflate: bool) -> Offer | Response:
    """The offer in ``request``, or the error response for a broken handshake."""
    if request.method != b"GET":
        return _refusal(405, "a WebSocket handshake is a GET", [("Allow", "GET")])
    if request.http_version != b"1.1":
        return _refusal(400, "a WebSocket handshake needs HTTP/1.1")
    connection: set[bytes] = set()
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[str] = []
    extension_values: list[str] = []
    for name, value in request.headers:
        if name == b"connection":
            connection.update(_tokens(value))
        elif name == b"sec-websocket-key":
            keys.append(value.strip())
        elif name == b"sec-websocket-version":
            versions.append(value.strip())
        elif name == b"sec-websocket-protocol":
            protocols.append(value.decode("latin-1"))
        elif name == b"sec-websocket-extensions":
            extension_values.append(value.decode("latin-1"))
    if b"upgrade" not in connection:
        return _refusal(400, "Connection: Upgrade is missing")
    if versions != [VERSION]:
        return _refusal(426, "only WebSocket version 13", [("Sec-WebSocket-Version", "13")])
    if len(keys) != 1 or not _valid_key(keys[0]):
        return _refusal(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    try:
        subprotocols = tuple(p for value in protocols for p in parse_subprotocol(value))
        header, extensions = _negotiate(extension_values) if deflate else (None, ())
    except InvalidHeader as exc:
        return _refusal(400, str(exc))
    return Offer(keys[0], subprotocols, header, extensions)


def accept_value(key: bytes) -> str:
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode("ascii")


def accepted(offer: Offer, subprotocol: str | None, headers: Headers) -> Response:
    """The 101 for ``offer``; the application's own ``headers`` go after ours (ASGI
    ``websocket.accept``), except the handshake's fields, which only the server sets."""
    fields: list[tuple[str, str]] = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_value(offer.key)),
    ]
    if offer.extension_header is not None:
        fields.append(("Sec-WebSocket-Extensions", offer.extension_header))
    if subprotocol is not None:
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    for name, value in headers:
        lowered = name.lower()
        if lowered in RESERVED or lowered == b"sec-websocket-protocol":
            continue
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return Response(101, tuple(fields), b"")


# what the application may not set in its accept: the handshake and the framing are ours
RESERVED = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
        b"date",
        b"server",
    }
)


def _negotiate(values: list[str]) -> tuple[str | None, tuple[Extension, ...]]:
    """At most one permessage-deflate, the first offer we can accept (RFC 7692 §5)."""
    factory = deflate_factory()
    for value in values:
        for name, params in parse_extension(value):
            if name != factory.name:
                continue
            try:
                answer, extension = factory.process_request_params(params, [])
            except NegotiationError:
                continue
            return build_extension([(name, answer)]), (LazyDeflate.of(extension),)
    return None, ()


class LazyDeflate(PerMessageDeflate):
    """permessage-deflate whose zlib streams are made when a message first needs them: an
    idle WebSocket then holds no ~33 KiB compressor and ~10 KiB decompressor (websockets
    makes both at the handshake, and again per message without context takeover)."""

    @classmethod
    def of(cls, extension: PerMessageDeflate) -> LazyDeflate:
        lazy = cls(
            extension.remote_no_context_takeover,
            extension.local_no_context_takeover,
            extension.remote_max_window_bits,
            extension.local_max_window_bits,
            extension.compress_settings,
        )
        for stream in ("encoder", "decoder"):
            lazy.__dict__.pop(stream, None)
        return lazy

    def __getattr__(self, name: str) -> Any:
        """Only for what is not set: a stream's first use."""
        if name == "encoder":
            self.encoder = zlib.compressobj(
                wbits=-self.local_max_window_bits, **self.compress_settings
            )
            return self.encoder
        if name == "decoder":
            self.decoder = zlib.decompressobj(wbits=-self.remote_max_window_bits)
            return self.decoder
        raise AttributeError(name)


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


def _refusal(status: int, why: str, extra: list[tuple[str, str]] | None = None) -> Response:
    body = f"WebSocket handshake refused: {why}\n".encode()
    fields = [
        *(extra or []),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    return Response(status, tuple(fields), body, close=True)
