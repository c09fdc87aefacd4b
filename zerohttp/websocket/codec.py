"""Frames in, messages out: websockets' sans-IO ``Protocol``, completed for a server.

websockets parses and masks frames (in C), answers pings, runs the closing handshake and
enforces the message size (1009). It hands over frames, not messages, and leaves text
validation to its own asyncio layer; ``ServerCodec`` adds both inside the parser
(``recv_frame``), so an invalid UTF-8 byte fails the connection with 1007 at the frame
that carries it (fail fast, RFC 6455 §8.1), before any later frame is looked at.

Beyond websockets: a close amid a fragmented message is answered, not failed (§5.4); an
application's close reason is cut to fit a close frame; and with ``hold_close`` a client's
close waits for ``answer_close()``, so the driver can let the application reply to the
messages that came just before it (Autobahn 7.1.1).

The common frame takes a short cut past websockets' parser (``simple_frames``): a whole,
unfragmented, masked text or binary frame without RSV bits, within the size limit, that
starts where the parser waits for its next frame. It is read with websockets' own C mask
and checked for UTF-8 as the parser would; anything else (a control frame, a fragment, a
compressed frame, a frame cut by the TCP segment, invalid text) goes to the parser from that
frame on, so every rule above still decides it. Outgoing messages on a connection without
extensions are framed directly too (``frame``). ``benchmarks/ws_codec.py`` measures both
ways, and wsproto, which was not chosen.
"""

from __future__ import annotations

import codecs
import logging
import struct
from collections.abc import Generator, Sequence

from websockets.exceptions import PayloadTooBig
from websockets.extensions.base import Extension
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.protocol import CLOSED, CLOSING, OPEN, SERVER, Protocol
from websockets.speedups import apply_mask

# websockets logs every server-side close at INFO; the access log says it once already
_logger = logging.getLogger("zerohttp.websocket.codec")
_logger.setLevel(logging.WARNING)

TEXT, BINARY, CONT, PONG, CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG, Opcode.CLOSE
DATA = (TEXT, BINARY, CONT)
MAX_REASON = 123  # a control frame carries at most 125 bytes (RFC 6455 §5.5), 2 are the code
ABNORMAL = 1006  # never on the wire: what the app is told when the TCP connection just ends

Message = str | bytes


class ServerCodec(Protocol):
    """One open WebSocket, server side: ``feed`` bytes, take ``messages`` and
    ``data_to_send()``; ``send_*`` frames a message."""

    def __init__(
        self,
        *,
        max_size: int | None,
        extensions: Sequence[Extension] = (),
        hold_close: bool = False,
    ) -> None:
        # websockets checks its limit on a frame's wire length before inflating it: with an
        # extension (permessage-deflate) that lets it through a little over the limit (a
        # message that does not compress grows by up to ~0.3 %), and recv_frame holds the
        # inflated message to the limit itself
        wire_limit = max_size
        if extensions and max_size is not None:
            wire_limit = max_size + max_size // 256 + 1024
        super().__init__(SERVER, state=OPEN, max_size=wire_limit, logger=_logger)
        self.limit = max_size  # of a message, as the application gets it
        self.extensions = list(extensions)
        self._message_size = 0  # inflated bytes of the message so far (with extensions)
        # hold_close: a client's close is answered by ``answer_close()``, once the
        # application has had the messages that came before it (and could reply to them),
        # not inside the parser: Autobahn 7.1.1 wants the echo of a message sent just
        # before a close (RFC 6455 §5.5.1 allows either)
        self.hold_close = hold_close
        self.held_close: bytes | None = None  # the client's close payload, not yet answered
        self.messages: list[Message] = []
        self.pongs = 0  # pong frames received: the keepalive reads this
        self._parts: list[bytes] | list[str] | None = None  # a fragmented message so far
        self._decoder: codecs.IncrementalDecoder | None = None  # set while it is text

    def feed(self, data: bytes) -> list[Message]:
        """The complete messages in ``data`` (and what came before it)."""
        if (
            self.current_size is None  # no fragmented message under way
            and self.state is OPEN
            and not self.reader.buffer  # the parser waits at a frame's first byte
        ):
            simple, used = simple_frames(data, self.limit)
            if used == len(data):
                return simple
            if used:
                data = data[used:]
                self.messages = simple
        self.receive_data(data)
        self.events.clear()  # frames: what we need of them was taken in recv_frame
        messages, self.messages = self.messages, []
        return messages

    @property
    def frames_directly(self) -> bool:
        """A message may be framed by ``frame``: no extension transforms it, and no
        fragmented message of ours is under way."""
        return not self.extensions and not self.expect_continuation_frame

    def send_message(self, message: Message) -> None:
        if not self.frames_directly or self.state is not OPEN:
            if isinstance(message, str):
                self.send_text(message.encode())
            else:
                self.send_binary(message)
        else:
            self.writes.append(frame(message))

    def send_close(self, code: CloseCode | int | None = None, reason: str = "") -> None:
        if self.held_close is not None:
            self.answer_close()  # the client closed first: its close is what we answer
        else:
            super().send_close(code, fit_reason(reason))

    def fail(self, code: CloseCode | int, reason: str = "") -> None:
        self.held_close = None
        super().fail(code, fit_reason(reason))

    def answer_close(self) -> None:
        """Answer the held close (as websockets' ``recv_frame`` would have): the same
        payload back, then the server closes TCP."""
        data = self.held_close
        self.held_close = None
        if data is None or self.state is not OPEN:
            return
        self.send_frame(Frame(CLOSE, data))
        self.close_sent = self.close_rcvd
        self.close_rcvd_then_sent = True
        self.state = CLOSING
        self.send_eof()

    @property
    def open(self) -> bool:
        return self.state is OPEN

    @property
    def closed(self) -> bool:
        return self.state is CLOSED

    def ending(self) -> tuple[int, str]:
        """The code and reason the application is told the connection ended with: the
        client's close frame, else the one we failed it with, else 1006."""
        close: Close | None = self.close_rcvd
        if close is None:
            close = self.close_sent
        if close is None:
            return ABNORMAL, ""
        return int(close.code), close.reason

    def recv_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is CLOSE and self.current_size is not None:
            # A close amid a fragmented message (control frames may come between its
            # fragments, RFC 6455 §5.4) ends the message unfinished; the close is answered
            # as any other (§5.5.1), not failed with 1002 as websockets does.
            self.current_size = None
            self._parts = self._decoder = None
        if opcode is CLOSE and self.hold_close and self.state is OPEN:
            self._hold(frame)
            return
        super().recv_frame(frame)  # framing rules first: a stray continuation is a 1002
        if self.extensions and self.limit is not None and opcode in DATA:
            size = len(frame.data) if opcode is not CONT else self._message_size + len(frame.data)
            if size > self.limit:
                raise PayloadTooBig(size, self.limit)  # the parser fails it with 1009
            self._message_size = size
        if opcode is TEXT:
            if frame.fin:
                self.messages.append(bytes(frame.data).decode())  # raises: 1007
            else:
                self._decoder = codecs.getincrementaldecoder("utf-8")()
                self._parts = [self._decoder.decode(frame.data)]
        elif opcode is BINARY:
            if frame.fin:
                self.messages.append(bytes(frame.data))
            else:
                self._decoder = None
                self._parts = [bytes(frame.data)]
        elif opcode is CONT:
            self._continue(frame)
        elif opcode is PONG:
            self.pongs += 1

    def _hold(self, frame: Frame) -> None:
        self.close_rcvd = Close.parse(bytes(frame.data))  # raises as for any close: 1002/1007
        self.held_close = bytes(frame.data)
        self.parser = self._discard_after_close()
        next(self.parser)

    def _discard_after_close(self) -> Generator[None]:
        """After a close, a peer discards any further data (RFC 6455 §1.4)."""
        while not (yield from self.reader.at_eof()):
            self.reader.discard()
        self.state = CLOSED  # the client left before we answered
        yield

    def _continue(self, frame: Frame) -> None:
        parts = self._parts
        assert parts is not None  # super() refused a continuation of nothing
        decoder = self._decoder
        if decoder is not None:
            text_parts: list[str] = parts  # type: ignore[assignment]
            text_parts.append(decoder.decode(frame.data, final=frame.fin))
            if frame.fin:
                self.messages.append("".join(text_parts))
        else:
            byte_parts: list[bytes] = parts  # type: ignore[assignment]
            byte_parts.append(bytes(frame.data))
            if frame.fin:
                self.messages.append(b"".join(byte_parts))
        if frame.fin:
            self._parts = self._decoder = None


def simple_frames(data: bytes, max_size: int | None) -> tuple[list[Message], int]:
    """The messages of the simple frames at the start of ``data``, and the bytes they took:
    FIN set, no RSV bits, text or binary, masked (a client's frames must be), complete,
    within ``max_size``, and (text) valid UTF-8. It stops at the first frame that is not
    one of those: the parser reads that one and decides what it is."""
    messages: list[Message] = []
    limit = len(data)
    position = 0
    while limit - position >= 6:
        first = data[position]
        second = data[position + 1]
        if (first != 0x81 and first != 0x82) or second < 0x80:
            break
        length = second & 0x7F
        start = position + 6
        if length == 126:
            start += 2
            if start > limit:
                break
            length = (data[position + 2] << 8) | data[position + 3]
        elif length == 127:
            start += 8
            if start > limit:
                break
            (length,) = struct.unpack_from("!Q", data, position + 2)
        end = start + length
        if end > limit or (max_size is not None and length > max_size):
            break
        payload = apply_mask(data[start:end], data[start - 4 : start])
        if first == 0x81:
            try:
                messages.append(payload.decode())
            except UnicodeDecodeError:
                break  # the parser fails it with 1007
        else:
            messages.append(payload)
        position = end
    return messages, position


def frame(message: Message) -> bytes:
    """One unmasked, unfragmented frame of ``message`` (a server's, without extensions)."""
    if isinstance(message, str):
        payload = message.encode()
        first = 0x81
    else:
        payload = bytes(message)
        first = 0x82
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


def fit_reason(reason: str) -> str:
    """``reason`` cut to what a close frame can carry, at a character boundary (as
    wsproto does): an application's long reason must not turn its close into an error."""
    return reason.encode("utf-8", "replace")[:MAX_REASON].decode("utf-8", "ignore")


__all__ = ["ABNORMAL", "CloseCode", "Message", "ServerCodec"]
