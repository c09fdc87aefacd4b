"""A raw-socket WebSocket client that can send any frame, for conformance tests.

It is deliberately independent of the libraries the servers use (websockets, wsproto):
the framing, masking, close payloads and permessage-deflate here are written from RFC 6455
§5 and RFC 7692 §7 directly, so a bug shared by a server and its library cannot hide.

Two halves:

- sans-IO helpers (``encode_frame``, ``FrameParser``, ``close_payload``, ``parse_close``,
  ``handshake_request``, ``parse_handshake``, ``Deflate``) over plain bytes, unit tested
  in tests/test_ws_codec.py;
- ``WSClient``: one TCP connection, the opening handshake, frames written exactly as
  asked (split into chops if asked), and frames and messages read back with a timeout.

``echo_app`` is the ASGI application the conformance battery runs on every server
(``--app wsframes:echo_app`` from tests/): it echoes every message as it came.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = frozenset({CLOSE, PING, PONG})
EMPTY_BLOCK = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.1: stripped by the sender, appended back

# --- sans-IO: frames -------------------------------------------------------------------------


def apply_mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455 §5.3), at big-int speed."""
    if not data:
        return b""
    size = len(data)
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x37\xfa\x21\x3d",
    length: int | None = None,
    length_bytes: int | None = None,
) -> bytes:
    """One frame, exactly as asked: any opcode (0-15), RSV bits (0-7), FIN, a mask key or
    none (None: unmasked, which a server must refuse), a declared ``length`` that may lie
    about the payload, and ``length_bytes`` (0, 2 or 8) to force a length encoding."""
    declared = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)])
    masked = 0x80 if mask is not None else 0
    form = length_bytes
    if form is None:
        form = 0 if declared < 126 else 2 if declared < 65536 else 8
    if form == 0:
        head.append(masked | declared)
    elif form == 2:
        head.append(masked | 126)
        head += declared.to_bytes(2, "big")
    else:
        head.append(masked | 127)
        head += declared.to_bytes(8, "big")
    if mask is None:
        return bytes(head) + payload
    return bytes(head) + mask + apply_mask(payload, mask)


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    masked: bool = False


class FrameError(Exception):
    """The peer sent bytes that are no frame a server may send."""


class FrameParser:
    """Bytes in, frames out; frames may arrive split at any byte."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        size, offset = second & 0x7F, 2
        if size == 126:
            if len(buf) < 4:
                return None
            size, offset = int.from_bytes(buf[2:4], "big"), 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, offset = int.from_bytes(buf[2:10], "big"), 10
        masked = bool(second & 0x80)
        key = b""
        if masked:
            if len(buf) < offset + 4:
                return None
            key, offset = bytes(buf[offset : offset + 4]), offset + 4
        if len(buf) < offset + size:
            return None
        payload = bytes(buf[offset : offset + size])
        del buf[: offset + size]
        if masked:
            payload = apply_mask(payload, key)
        return Frame(first & 0xF, payload, bool(first & 0x80), (first >> 4) & 7, masked)


def close_payload(code: int | None, reason: bytes | str = b"") -> bytes:
    """A close frame's body (RFC 6455 §5.5.1); no code: empty (the reason is then dropped)."""
    if code is None:
        return b""
    raw = reason.encode() if isinstance(reason, str) else reason
    return code.to_bytes(2, "big") + raw


def parse_close(payload: bytes) -> tuple[int | None, bytes]:
    """A close frame's code (None: no status, 1005) and raw reason."""
    if len(payload) < 2:
        return None, payload
    return int.from_bytes(payload[:2], "big"), payload[2:]


# --- sans-IO: the opening handshake -------------------------------------------------------------


def accept_for(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def handshake_request(
    host: str,
    path: str = "/",
    *,
    key: bytes | None = None,
    extensions: str | None = None,
    protocols: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> tuple[bytes, bytes]:
    """The upgrade request (RFC 6455 §4.1) and the key it carries."""
    key = key or base64.b64encode(os.urandom(16))
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if protocols is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    lines += [f"{name}: {value}" for name, value in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


@dataclass
class Handshake:
    status: int
    headers: list[tuple[str, str]]  # lower-case names

    def get(self, name: str) -> str | None:
        values = [value for field_name, value in self.headers if field_name == name]
        return ", ".join(values) if values else None


def parse_handshake(head: bytes) -> Handshake:
    """A response head (up to, without, the blank line)."""
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return Handshake(status, headers)


# --- sans-IO: permessage-deflate (RFC 7692) -------------------------------------------------------


@dataclass
class Deflate:
    """What a permessage-deflate response agreed, and the client's two zlib streams."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    _compressor: Any = None
    _decompressor: Any = None

    @classmethod
    def from_response(cls, value: str) -> Deflate:
        """Parse the server's answer; raises ValueError for one RFC 7692 §5 forbids."""
        name, *params = [part.strip() for part in value.split(";")]
        if name != "permessage-deflate" or "," in value:
            raise ValueError(f"not one permessage-deflate: {value!r}")
        agreed = cls()
        seen: set[str] = set()
        for param in params:
            key, _, raw = param.partition("=")
            key, raw = key.strip(), raw.strip().strip('"')
            if key in seen:
                raise ValueError(f"{key} twice")
            seen.add(key)
            if key in ("server_no_context_takeover", "client_no_context_takeover"):
                if raw:
                    raise ValueError(f"{key} takes no value")
                setattr(agreed, key, True)
            elif key in ("server_max_window_bits", "client_max_window_bits"):
                if not raw.isdigit() or not 8 <= int(raw) <= 15 or raw.startswith("0"):
                    raise ValueError(f"{key}={raw!r}")
                setattr(agreed, key, int(raw))
            else:
                raise ValueError(f"unknown parameter {key}")
        return agreed

    def compress(self, data: bytes, *, reset: bool = False) -> bytes:
        """One message's compressed payload (the trailing empty block stripped). With an
        8-bit window, which zlib cannot compress within, stored blocks (no references)."""
        if self._compressor is None or reset or self.client_no_context_takeover:
            bits = self.client_max_window_bits
            level = 0 if bits == 8 else -1
            self._compressor = zlib.compressobj(level, wbits=-max(9, bits))
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(EMPTY_BLOCK)
        return out[:-4]

    def decompress(self, data: bytes) -> bytes:
        """One message the server compressed; within the window it agreed to (a stream
        that reaches further back fails here: "invalid distance too far back")."""
        if self._decompressor is None or self.server_no_context_takeover:
            self._decompressor = zlib.decompressobj(wbits=-max(9, self.server_max_window_bits))
        return bytes(self._decompressor.decompress(data + EMPTY_BLOCK))


# --- the client ---------------------------------------------------------------------------------


class Closed(Exception):
    """The server closed the TCP connection."""


@dataclass
class Message:
    kind: str  # "text", "binary", "pong", "ping", "close"
    data: bytes
    compressed: bool = False


@dataclass
class WSClient:
    """One WebSocket connection over a raw socket."""

    sock: socket.socket
    handshake: Handshake
    deflate: Deflate | None = None
    parser: FrameParser = field(default_factory=FrameParser)
    pending: list[Frame] = field(default_factory=list)
    eof: bool = False

    @classmethod
    def connect(
        cls,
        port: int,
        *,
        extensions: str | None = None,
        protocols: str | None = None,
        timeout: float = 5.0,
    ) -> WSClient:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request, key = handshake_request(
            f"127.0.0.1:{port}", extensions=extensions, protocols=protocols
        )
        sock.sendall(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                sock.close()
                raise Closed(f"no handshake response: {buffer!r}")
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        handshake = parse_handshake(head)
        client = cls(sock, handshake)
        if handshake.status != 101:
            sock.close()
            raise Closed(f"handshake refused: {head!r}")
        if handshake.get("sec-websocket-accept") != accept_for(key).decode():
            sock.close()
            raise Closed(f"wrong Sec-WebSocket-Accept: {head!r}")
        agreed = handshake.get("sec-websocket-extensions")
        if agreed is not None:
            client.deflate = Deflate.from_response(agreed)
        client.pending = client.parser.feed(rest)
        return client

    # sending

    def send_raw(self, data: bytes, *, chop: int | None = None, delay: float = 0.0) -> None:
        """Write ``data``, in pieces of ``chop`` bytes (each its own write) if asked."""
        if chop is None:
            self.sock.sendall(data)
            return
        for start in range(0, len(data), chop):
            self.sock.sendall(data[start : start + chop])
            if delay:
                time.sleep(delay)

    def send_frame(self, opcode: int, payload: bytes = b"", **options: Any) -> None:
        self.send_raw(encode_frame(opcode, payload, **options))

    def send_message(self, data: bytes | str, *, compress: bool = False) -> None:
        opcode = TEXT if isinstance(data, str) else BINARY
        raw = data.encode() if isinstance(data, str) else data
        if compress:
            assert self.deflate is not None
            self.send_frame(opcode, self.deflate.compress(raw), rsv=4)
        else:
            self.send_frame(opcode, raw)

    def send_close(self, code: int | None = 1000, reason: bytes | str = b"") -> None:
        self.send_frame(CLOSE, close_payload(code, reason))

    # receiving

    def recv_frame(self, timeout: float = 5.0) -> Frame:
        """The next frame; raises TimeoutError, or Closed at EOF."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            if self.eof:
                raise Closed("EOF")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                raise
            except OSError as exc:  # a reset after the server failed the connection
                self.eof = True
                raise Closed(str(exc)) from exc
            if not chunk:
                self.eof = True
                raise Closed("EOF")
            self.pending = self.parser.feed(chunk)
        return self.pending.pop(0)

    def recv_message(self, timeout: float = 5.0) -> Message:
        """The next message or control frame, reassembled and inflated; server frames must
        be unmasked (RFC 6455 §5.1) and well-formed, else FrameError."""
        deadline = time.monotonic() + timeout
        parts: list[bytes] = []
        first: Frame | None = None
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.masked:
                raise FrameError("the server masked a frame")
            if frame.opcode in CONTROL:
                if not frame.fin or len(frame.payload) > 125 or frame.rsv:
                    raise FrameError(f"bad control frame {frame}")
                kind = {CLOSE: "close", PING: "ping", PONG: "pong"}[frame.opcode]
                return Message(kind, frame.payload)
            if (first is None) != (frame.opcode != CONT):
                raise FrameError(f"bad fragmentation: {frame.opcode}")
            if first is None:
                first = frame
            elif frame.rsv:
                raise FrameError("RSV bits on a continuation frame")
            parts.append(frame.payload)
            if frame.fin:
                break
        data = b"".join(parts)
        compressed = bool(first.rsv & 4)
        if first.rsv & 3 or (compressed and self.deflate is None):
            raise FrameError(f"RSV bits {first.rsv} not agreed")
        if compressed:
            assert self.deflate is not None
            data = self.deflate.decompress(data)
        return Message("text" if first.opcode == TEXT else "binary", data, compressed)

    def wait_eof(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the TCP connection (frames read are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.recv_frame(max(0.0, deadline - time.monotonic()))
            except Closed:
                return True
            except TimeoutError:
                return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WSClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the echo application -------------------------------------------------------------------------


class DeliberateFailure(RuntimeError):
    """What ``echo_app`` raises when asked to (``!raise``)."""


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Every message back as it came (text as text, bytes as bytes). Two texts are
    commands: ``!close CODE [REASON]`` closes with that code and reason (``!close CODE
    *N``: a reason of N "é"), and ``!raise`` raises DeliberateFailure."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None and text.startswith("!close "):
            _, code, *reason = text.split(" ", 2)
            why = reason[0] if reason else ""
            if why.startswith("*"):
                why = "é" * int(why[1:])
            await send({"type": "websocket.close", "code": int(code), "reason": why})
        elif text == "!raise":
            raise DeliberateFailure("deliberate application failure")
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
