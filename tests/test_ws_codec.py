"""The frame codec over plain data (``zerohttp.websocket.codec``) and the test client's own
framing (``tests/wsframes.py``), which the conformance battery trusts: each is checked
against the other and against RFC 6455 examples, with hypothesis for the round trips."""

from __future__ import annotations

import itertools
import os
import zlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from wsframes import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Deflate,
    Frame,
    FrameParser,
    apply_mask,
    close_payload,
    encode_frame,
    parse_close,
)

from zerohttp.message.response import RequestHead
from zerohttp.websocket.codec import ServerCodec
from zerohttp.websocket.handshake import Offer, read_offer

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def codec(max_size: int | None = 1 << 20, deflate: str | None = None) -> ServerCodec:
    if deflate is None:
        return ServerCodec(max_size=max_size)
    headers = (
        (b"connection", b"upgrade"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", KEY),
        (b"sec-websocket-extensions", deflate.encode()),
    )
    offer = read_offer(RequestHead(b"GET", b"/", b"1.1", headers), deflate=True)
    assert isinstance(offer, Offer) and offer.extension_header is not None
    return ServerCodec(max_size=max_size, extensions=offer.extensions)


def sent(server: ServerCodec) -> tuple[list[Frame], bool]:
    """The frames the codec wrote, and whether it asked to close TCP (its b"" marker)."""
    chunks = server.data_to_send()
    eof = b"" in chunks
    return FrameParser().feed(b"".join(chunks)), eof


def close_code(frames: list[Frame]) -> int | None:
    closes = [frame for frame in frames if frame.opcode == CLOSE]
    assert len(closes) == 1, frames
    return parse_close(closes[0].payload)[0]


# --- the test client's framing -----------------------------------------------------------------


def test_rfc_6455_examples() -> None:
    """§5.7: "Hello" unmasked and masked with 37 fa 21 3d; a 256-byte binary head."""
    assert encode_frame(TEXT, b"Hello", mask=None) == bytes.fromhex("810548656c6c6f")
    assert encode_frame(TEXT, b"Hello") == bytes.fromhex("818537fa213d7f9f4d5158")
    assert encode_frame(BINARY, bytes(256), mask=None)[:4] == bytes.fromhex("827e0100")
    assert encode_frame(BINARY, bytes(65536), mask=None)[:10] == bytes.fromhex(
        "827f0000000000010000"
    )
    assert encode_frame(PING, b"Hello", mask=None) == bytes.fromhex("890548656c6c6f")


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_mask_is_a_repeated_xor(data: bytes, key: bytes) -> None:
    assert apply_mask(data, key) == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert apply_mask(apply_mask(data, key), key) == data


frames = st.builds(
    Frame,
    opcode=st.integers(0, 15),
    payload=st.binary(max_size=200)
    | st.builds(  # each length encoding's edges (§5.2)
        lambda size, byte: bytes([byte]) * size,
        st.sampled_from([125, 126, 127, 65535, 65536, 65537]),
        st.integers(0, 255),
    ),
    fin=st.booleans(),
    rsv=st.integers(0, 7),
    masked=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(frames, min_size=1, max_size=4), st.integers(1, 5000))
def test_client_frames_round_trip_in_any_chops(sent_frames: list[Frame], chop: int) -> None:
    wire = b"".join(
        encode_frame(
            f.opcode, f.payload, fin=f.fin, rsv=f.rsv, mask=os.urandom(4) if f.masked else None
        )
        for f in sent_frames
    )
    parser = FrameParser()
    got = [frame for i in range(0, len(wire), chop) for frame in parser.feed(wire[i : i + chop])]
    assert got == sent_frames


@given(st.one_of(st.none(), st.integers(0, 65535)), st.binary(max_size=123))
def test_close_payload_round_trip(code: int | None, reason: bytes) -> None:
    parsed = parse_close(close_payload(code, reason))
    assert parsed == ((code, reason) if code is not None else (None, b""))


# --- the server codec --------------------------------------------------------------------------

messages = st.lists(st.text(max_size=300) | st.binary(max_size=300), min_size=1, max_size=5)


def fragments(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)] or [b""]


def client_wire(message: str | bytes, cuts: list[int]) -> bytes:
    """``message`` as a client sends it: masked, fragmented at ``cuts`` (any byte, so
    inside UTF-8 sequences too), a ping between the fragments."""
    data = message.encode() if isinstance(message, str) else message
    opcode = TEXT if isinstance(message, str) else BINARY
    pieces = fragments(data, cuts)
    out = b""
    for i, piece in enumerate(pieces):
        out += encode_frame(opcode if i == 0 else CONT, piece, fin=i == len(pieces) - 1)
        if i == 0 and len(pieces) > 1:
            out += encode_frame(PING, b"amid")
    return out


@settings(deadline=None)
@given(messages, st.lists(st.integers(0, 400), max_size=4), st.integers(1, 700))
def test_messages_round_trip_through_fragments_and_chops(
    sent_messages: list[str | bytes], cuts: list[int], chop: int
) -> None:
    server = codec()
    wire = b"".join(client_wire(m, cuts) for m in sent_messages)
    got: list[str | bytes] = []
    for i in range(0, len(wire), chop):
        got += server.feed(wire[i : i + chop])
    assert got == sent_messages
    frames, eof = sent(server)
    assert not eof
    assert all(f.opcode == PONG and f.payload == b"amid" for f in frames)


@given(messages)
def test_server_messages_round_trip(sent_messages: list[str | bytes]) -> None:
    server = codec()
    for message in sent_messages:
        server.send_message(message)
    frames, _ = sent(server)
    assert all(not f.masked and f.fin and f.rsv == 0 for f in frames)  # §5.1: never masked
    got = [f.payload.decode() if f.opcode == TEXT else f.payload for f in frames]
    assert got == sent_messages


@settings(max_examples=40, deadline=None)
@given(
    messages,
    st.sampled_from(
        [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
        ]
    ),
)
def test_deflate_round_trips_both_ways(sent_messages: list[str | bytes], offer: str) -> None:
    server = codec(deflate=offer)
    answer = read_offer(
        RequestHead(
            b"GET",
            b"/",
            b"1.1",
            (
                (b"connection", b"upgrade"),
                (b"sec-websocket-version", b"13"),
                (b"sec-websocket-key", KEY),
                (b"sec-websocket-extensions", offer.encode()),
            ),
        ),
        deflate=True,
    )
    assert isinstance(answer, Offer) and answer.extension_header is not None
    client = Deflate.from_response(answer.extension_header)
    for message in sent_messages:
        data = message.encode() if isinstance(message, str) else message
        opcode = TEXT if isinstance(message, str) else BINARY
        assert server.feed(encode_frame(opcode, client.compress(data), rsv=4)) == [message]
        server.send_message(message)
        (frame,), _ = sent(server)
        assert frame.rsv == 4
        assert client.decompress(frame.payload) == data


@given(st.binary(min_size=1, max_size=12))
def test_text_is_accepted_exactly_when_it_is_utf8(data: bytes) -> None:
    server = codec()
    got = server.feed(encode_frame(TEXT, data))
    try:
        expected = data.decode("utf-8")
    except UnicodeDecodeError:
        assert got == []
        assert close_code(sent(server)[0]) == 1007
        assert server.ending()[0] == 1007
    else:
        assert got == [expected]


def test_invalid_utf8_fails_at_the_frame_that_carries_it() -> None:
    """§8.1 fail fast: the frame with the bad byte ends it; nothing after is read."""
    server = codec()
    wire = encode_frame(TEXT, "κόσμε".encode(), fin=False)
    assert server.feed(wire) == []
    assert sent(server) == ([], False)
    assert server.feed(encode_frame(CONT, b"\xf4\x90", fin=False)) == []
    frames, eof = sent(server)
    assert close_code(frames) == 1007 and eof
    assert server.feed(encode_frame(PING, b"late")) == []
    assert sent(server) == ([], False)


def test_truncated_utf8_at_the_end_of_a_message_is_1007() -> None:
    server = codec()
    server.feed(encode_frame(TEXT, b"\xce", fin=False) + encode_frame(CONT, b""))
    assert close_code(sent(server)[0]) == 1007


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999])
def test_valid_close_codes_are_echoed(code: int) -> None:
    server = codec()
    server.feed(encode_frame(CLOSE, close_payload(code, "bye")))
    frames, eof = sent(server)
    assert close_code(frames) == code and eof
    assert server.ending() == (code, "bye")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes_are_1002(code: int) -> None:
    server = codec()
    server.feed(encode_frame(CLOSE, close_payload(code)))
    assert close_code(sent(server)[0]) == 1002


def test_close_payloads() -> None:
    empty = codec()
    empty.feed(encode_frame(CLOSE))
    frames, eof = sent(empty)
    assert [f.payload for f in frames] == [b""] and eof  # echoed as it came
    assert empty.ending() == (1005, "")  # no status received
    one = codec()
    one.feed(encode_frame(CLOSE, b"\x03"))
    assert close_code(sent(one)[0]) == 1002
    bad_reason = codec()
    bad_reason.feed(encode_frame(CLOSE, close_payload(1000, b"\xff")))
    assert close_code(sent(bad_reason)[0]) == 1007


def test_close_amid_a_fragmented_message_is_answered() -> None:
    """§5.4: control frames may come between fragments; §5.5.1: a close is answered."""
    server = codec()
    got = server.feed(
        encode_frame(TEXT, b"fragment1", fin=False)
        + encode_frame(CLOSE, close_payload(1000))
        + encode_frame(CONT, b"fragment2")
    )
    assert got == []
    frames, eof = sent(server)
    assert close_code(frames) == 1000 and eof
    assert server.ending() == (1000, "")


def test_ping_is_answered_and_pongs_counted() -> None:
    server = codec()
    server.feed(encode_frame(PING, b"x" * 125) + encode_frame(PONG, b"") + encode_frame(PONG))
    frames, _ = sent(server)
    assert frames == [Frame(PONG, b"x" * 125)]
    assert server.pongs == 2


@pytest.mark.parametrize(
    "wire",
    [
        encode_frame(TEXT, b"x", mask=None),  # §5.1: a client MUST mask
        encode_frame(TEXT, b"x", rsv=2),  # §5.2: no extension agreed
        encode_frame(TEXT, b"x", rsv=4),  # RSV1 without permessage-deflate
        encode_frame(3, b""),  # reserved opcodes
        encode_frame(11, b""),
        encode_frame(CONT, b"nothing to continue"),
        encode_frame(TEXT, b"a", fin=False) + encode_frame(TEXT, b"b"),
        encode_frame(PING, b"x", fin=False),  # §5.5: control frames are not fragmented
        encode_frame(PING, b"x" * 126),  # §5.5: at most 125 bytes
        encode_frame(CLOSE, close_payload(1000, b"x" * 124)),
    ],
)
def test_protocol_errors_are_1002(wire: bytes) -> None:
    server = codec()
    assert server.feed(wire) == []
    frames, eof = sent(server)
    assert close_code(frames) == 1002 and eof
    assert server.ending()[0] == 1002


def test_message_limit_is_1009() -> None:
    whole = codec(max_size=100)
    whole.feed(encode_frame(BINARY, bytes(101)))
    assert close_code(sent(whole)[0]) == 1009
    pieces = codec(max_size=100)
    pieces.feed(encode_frame(BINARY, bytes(60), fin=False) + encode_frame(CONT, bytes(41)))
    assert close_code(sent(pieces)[0]) == 1009
    exact = codec(max_size=100)
    assert exact.feed(
        encode_frame(BINARY, bytes(60), fin=False) + encode_frame(CONT, bytes(40))
    ) == [bytes(100)]


def test_compressed_message_limit_is_1009() -> None:
    server = codec(max_size=1000, deflate="permessage-deflate")
    bomb = zlib.compressobj(wbits=-15)
    data = bomb.compress(bytes(100_000)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    server.feed(encode_frame(BINARY, data[:-4], rsv=4))
    assert close_code(sent(server)[0]) == 1009


def deflated_frames(data: bytes, pieces: int) -> bytes:
    """``data`` compressed as one message (RFC 7692 §7.2.1), in ``pieces`` fragments."""
    coder = zlib.compressobj(wbits=-15)
    wire = (coder.compress(data) + coder.flush(zlib.Z_SYNC_FLUSH))[:-4]
    cuts = [len(wire) * i // pieces for i in range(pieces + 1)]
    out = b""
    for i in range(pieces):
        opcode, rsv = (BINARY, 4) if i == 0 else (CONT, 0)
        out += encode_frame(opcode, wire[cuts[i] : cuts[i + 1]], fin=i == pieces - 1, rsv=rsv)
    return out


@pytest.mark.parametrize("pieces", [1, 3])
def test_the_limit_is_on_the_inflated_message_not_the_wire(pieces: int) -> None:
    """Incompressible data grows under deflate: a message of exactly the limit passes, though
    its frames carry more than the limit; one byte more is a 1009, whole or in fragments."""
    data = os.urandom(4096)
    server = codec(max_size=4096, deflate="permessage-deflate")
    assert len(deflated_frames(data, 1)) > 4096 + 4
    assert server.feed(deflated_frames(data, pieces)) == [data]
    server = codec(max_size=4095, deflate="permessage-deflate")
    assert server.feed(deflated_frames(data, pieces)) == []
    assert close_code(sent(server)[0]) == 1009


def test_ending_without_a_close_is_1006() -> None:
    server = codec()
    server.receive_eof()
    assert server.ending() == (1006, "")
    assert server.closed


def test_our_close_is_what_the_app_hears_until_the_client_answers() -> None:
    server = codec()
    server.send_close(4000, "app")
    assert server.ending() == (4000, "app")
    server.feed(encode_frame(CLOSE, close_payload(4000, "app")))
    assert server.ending() == (4000, "app")


@example("x" * 124)
@example("é" * 62)  # 124 bytes: the cut falls inside a character
@given(st.text(max_size=200))
def test_any_close_reason_fits_a_close_frame(reason: str) -> None:
    """An application's reason is cut to 123 bytes at a character boundary (§5.5)."""
    server = codec()
    server.send_close(1000, reason)
    (frame,), _ = sent(server)
    code, raw = parse_close(frame.payload)
    assert code == 1000 and len(frame.payload) <= 125
    text = raw.decode()  # still UTF-8
    if len(reason.encode("utf-8", "replace")) <= 123:
        assert text == reason.encode("utf-8", "replace").decode()
    else:
        assert reason.encode("utf-8", "replace").startswith(raw)


# --- hold_close: the client's close answered once the application has had its messages ------


def held() -> ServerCodec:
    server = ServerCodec(max_size=1 << 20, hold_close=True)
    got = server.feed(
        encode_frame(TEXT, b"Hello World")
        + encode_frame(CLOSE, close_payload(1000, "bye"))
        + encode_frame(PING, b"after the close")
    )
    assert got == ["Hello World"]
    return server


def test_held_close_waits_for_answer_close() -> None:
    server = held()
    assert sent(server) == ([], False)  # nothing yet: not even the ping's pong (§1.4)
    assert server.open and server.held_close is not None
    assert server.ending() == (1000, "bye")
    server.send_message("Hello World")  # the reply to the message before the close
    server.answer_close()
    frames, eof = sent(server)
    assert [f.opcode for f in frames] == [TEXT, CLOSE] and eof
    assert frames[1].payload == close_payload(1000, "bye")  # echoed as it came
    assert not server.open and server.held_close is None
    server.answer_close()  # once only
    assert sent(server) == ([], False)


def test_application_close_answers_the_held_close() -> None:
    server = held()
    server.send_close(4000, "app")
    frames, eof = sent(server)
    assert close_code(frames) == 1000 and eof
    assert server.ending() == (1000, "bye")


def test_held_close_then_client_leaves() -> None:
    server = held()
    server.feed(encode_frame(TEXT, b"discarded"))
    server.receive_eof()
    assert server.closed
    server.answer_close()
    assert sent(server) == ([], False)
    assert server.ending() == (1000, "bye")


def test_fail_while_holding_sends_its_own_code() -> None:
    server = held()
    server.fail(1011, "keepalive")
    frames, eof = sent(server)
    assert close_code(frames) == 1011 and eof
    assert server.held_close is None


@pytest.mark.parametrize(("payload", "code"), [(close_payload(999), 1002), (b"\x03", 1002)])
def test_bad_close_is_failed_not_held(payload: bytes, code: int) -> None:
    server = ServerCodec(max_size=None, hold_close=True)
    server.feed(encode_frame(CLOSE, payload))
    assert close_code(sent(server)[0]) == code
    assert server.held_close is None


@pytest.mark.parametrize(
    "answer",
    [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; client_max_window_bits",  # an answer must give the value
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; unknown",
        "permessage-deflate, permessage-deflate",
        "x-webkit-deflate-frame",
    ],
)
def test_client_refuses_answers_rfc_7692_forbids(answer: str) -> None:
    """The battery's judge of the server's answer (RFC 7692 §7.1) is strict."""
    with pytest.raises(ValueError):
        Deflate.from_response(answer)


def test_client_reads_a_full_answer() -> None:
    agreed = Deflate.from_response(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        'server_max_window_bits=10; client_max_window_bits="9"'
    )
    assert agreed.server_no_context_takeover and agreed.client_no_context_takeover
    assert (agreed.server_max_window_bits, agreed.client_max_window_bits) == (10, 9)


# --- the short cut for simple frames ----------------------------------------------------------

ANY_FRAME = st.one_of(
    st.builds(lambda d: encode_frame(TEXT, d.encode()), st.text(max_size=200)),
    st.builds(
        lambda d: encode_frame(BINARY, d),
        st.binary(max_size=70000).filter(lambda d: len(d) < 300 or len(d) > 65535)
        | st.binary(max_size=300),
    ),
    st.builds(lambda d: encode_frame(TEXT, d), st.binary(max_size=8)),  # often not UTF-8
    st.builds(lambda d: encode_frame(TEXT, d, fin=False), st.binary(max_size=8)),
    st.builds(lambda d: encode_frame(CONT, d), st.binary(max_size=8)),
    st.builds(lambda d: encode_frame(PING, d), st.binary(max_size=8)),
    st.builds(lambda d: encode_frame(PONG, d), st.binary(max_size=8)),
    st.builds(lambda d: encode_frame(TEXT, d, mask=None), st.binary(max_size=8)),
    st.builds(lambda d: encode_frame(BINARY, d, rsv=4), st.binary(max_size=8)),
    st.just(encode_frame(CLOSE, close_payload(1000, b"bye"))),
    st.builds(lambda d: encode_frame(BINARY, d), st.binary(min_size=101, max_size=140)),  # > limit
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ANY_FRAME, max_size=8), st.lists(st.integers(1, 400), max_size=6))
def test_the_short_cut_reads_exactly_what_the_parser_reads(
    frames: list[bytes], cuts: list[int]
) -> None:
    """Any stream, cut anywhere: the same messages, the same answers on the wire and the
    same ending as websockets' parser alone."""
    wire = b"".join(frames)
    chunks, position = [], 0
    for cut in cuts:
        chunks.append(wire[position : position + cut])
        position += cut
    chunks.append(wire[position:])
    fast, slow = ServerCodec(max_size=100), ServerCodec(max_size=100)
    slow_feed = super(ServerCodec, slow).receive_data
    got_fast: list[str | bytes] = []
    got_slow: list[str | bytes] = []
    for chunk in chunks:
        if chunk:
            got_fast += fast.feed(chunk)
            slow_feed(chunk)
            slow.events.clear()
            got_slow += slow.messages
            slow.messages = []
    assert got_fast == got_slow
    assert fast.data_to_send() == slow.data_to_send()
    assert fast.ending() == slow.ending() and fast.state is slow.state


def test_direct_framing_is_what_websockets_writes() -> None:
    for message in ("", "é" * 60, "x" * 126, "y" * 65536, b"", b"\x00" * 125, b"z" * 70000):
        direct, library = ServerCodec(max_size=None), ServerCodec(max_size=None)
        direct.send_message(message)
        if isinstance(message, str):
            library.send_text(message.encode())
        else:
            library.send_binary(message)
        assert direct.data_to_send() == library.data_to_send()


def test_an_idle_deflate_connection_holds_no_zlib_stream() -> None:
    """The streams are made at their first use (~43 KiB an idle WebSocket saves), and then
    kept for the context takeover."""
    server = codec(deflate="permessage-deflate")
    (extension,) = server.extensions
    assert "encoder" not in vars(extension) and "decoder" not in vars(extension)
    assert server.feed(deflated_frames(b"hello " * 20, 1)) == [b"hello " * 20]
    assert "decoder" in vars(extension) and "encoder" not in vars(extension)
    server.send_message("back")
    assert "encoder" in vars(extension)
    stream = extension.encoder
    server.send_message("again")
    assert extension.encoder is stream
