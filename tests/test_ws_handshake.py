"""The opening handshake over plain data (``zerohttp.websocket.handshake``, RFC 6455 §4.2,
RFC 7692 §5 and §7.1): refusals, the accept value, and hypothesis properties for the three
parsed fields (Sec-WebSocket-Key, Sec-WebSocket-Protocol, Sec-WebSocket-Extensions)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsframes import Deflate

from zerohttp.message.response import RequestHead, Response
from zerohttp.websocket.handshake import (
    Offer,
    accept_value,
    accepted,
    is_upgrade,
    read_offer,
    wants_websocket,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
BASE = [
    (b"host", b"example.com"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-version", b"13"),
]


def head(
    *extra: tuple[bytes, bytes], method: bytes = b"GET", version: bytes = b"1.1"
) -> RequestHead:
    return RequestHead(method, b"/chat", version, (*BASE, *extra))


def offer(*extra: tuple[bytes, bytes], deflate: bool = True) -> Offer | Response:
    return read_offer(head((b"sec-websocket-key", KEY), *extra), deflate=deflate)


def status(result: Offer | Response) -> int:
    return result.status if isinstance(result, Response) else 101


def fields(response: Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.fields}


# --- examples ----------------------------------------------------------------------------------


def test_accept_value_is_rfc_6455_example() -> None:
    assert accept_value(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # §1.3


def test_valid_handshake() -> None:
    result = offer()
    assert isinstance(result, Offer)
    assert result.key == KEY
    assert result.subprotocols == ()
    assert result.extension_header is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"upgrade", b"websocket")], True),
        ([(b"upgrade", b"WebSocket")], True),
        ([(b"upgrade", b"h2c, websocket")], True),
        ([(b"upgrade", b"h2c")], False),
        ([(b"upgrade", b"websocketx")], False),
        ([(b"connection", b"websocket")], False),
        ([], False),
    ],
)
def test_is_upgrade(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert is_upgrade(headers) is expected


def test_http_1_0_upgrade_is_plain_http() -> None:
    """RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request."""
    assert wants_websocket(head())
    assert not wants_websocket(head(version=b"1.0"))
    assert not wants_websocket(RequestHead(b"GET", b"/", b"1.1", (BASE[0],)))


def test_refusals() -> None:
    key = (b"sec-websocket-key", KEY)
    assert status(read_offer(head(key, method=b"POST"), deflate=True)) == 405
    assert status(read_offer(head(key, version=b"1.0"), deflate=True)) == 400
    no_connection = RequestHead(b"GET", b"/", b"1.1", (BASE[0], BASE[1], BASE[3], key))
    assert status(read_offer(no_connection, deflate=True)) == 400
    assert status(read_offer(head(), deflate=True)) == 400  # no key
    assert status(offer((b"sec-websocket-key", KEY))) == 400  # two keys


@pytest.mark.parametrize("version", [b"8", b"14", b"13, 8", b""])
def test_other_versions_get_426_naming_13(version: bytes) -> None:
    headers = [BASE[0], BASE[1], BASE[2], (b"sec-websocket-version", version)]
    request = RequestHead(b"GET", b"/", b"1.1", (*headers, (b"sec-websocket-key", KEY)))
    result = read_offer(request, deflate=True)
    assert isinstance(result, Response)
    assert result.status == 426
    assert fields(result)["sec-websocket-version"] == "13"  # §4.2.2: MUST name the versions


def test_connection_tokens() -> None:
    request = RequestHead(
        b"GET",
        b"/",
        b"1.1",
        (
            BASE[0],
            BASE[1],
            (b"connection", b"keep-alive, UPGRADE"),
            BASE[3],
            (b"sec-websocket-key", KEY),
        ),
    )
    assert isinstance(read_offer(request, deflate=True), Offer)


def test_refusal_is_a_complete_response() -> None:
    result = read_offer(head(), deflate=True)
    assert isinstance(result, Response)
    assert result.close
    assert int(fields(result)["content-length"]) == len(result.body)  # type: ignore[arg-type]


def test_accepted_renders_the_101() -> None:
    result = offer((b"sec-websocket-protocol", b"chat, superchat"))
    assert isinstance(result, Offer)
    response = accepted(result, "chat", [(b"X-App", b"1"), (b"Upgrade", b"h2c"), (b"Date", b"x")])
    assert response.status == 101
    got = [(name.lower(), value) for name, value in response.fields]
    assert ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") in got
    assert ("sec-websocket-protocol", "chat") in got
    assert ("x-app", "1") in got
    assert [v for n, v in got if n == "upgrade"] == ["websocket"]  # the app cannot change it
    assert "date" not in dict(got)


def test_app_cannot_add_a_second_subprotocol() -> None:
    result = offer()
    assert isinstance(result, Offer)
    response = accepted(result, None, [(b"Sec-WebSocket-Protocol", b"sneaky")])
    assert "sec-websocket-protocol" not in fields(response)


def test_deflate_off_declines_every_offer() -> None:
    result = offer((b"sec-websocket-extensions", b"permessage-deflate"), deflate=False)
    assert isinstance(result, Offer)
    assert result.extension_header is None
    assert result.extensions == ()


def test_first_acceptable_deflate_offer_wins() -> None:
    value = (
        b"permessage-deflate; server_max_window_bits=8, "
        b"permessage-deflate; server_no_context_takeover"
    )
    result = offer((b"sec-websocket-extensions", value))
    assert isinstance(result, Offer)
    assert result.extension_header is not None
    assert "server_no_context_takeover" in result.extension_header


@pytest.mark.parametrize(
    "value",
    [
        b"permessage-deflate; unknown",  # RFC 7692 §5: unknown parameter: decline
        b"permessage-deflate; server_max_window_bits=16",  # out of range
        b"permessage-deflate; server_max_window_bits",  # needs a value
        b"permessage-deflate; server_no_context_takeover=1",  # takes none
        b"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        b"x-webkit-deflate-frame",
    ],
)
def test_bad_deflate_offers_are_declined(value: bytes) -> None:
    result = offer((b"sec-websocket-extensions", value))
    assert isinstance(result, Offer)
    assert result.extension_header is None


# --- properties --------------------------------------------------------------------------------


@given(st.binary(min_size=16, max_size=16))
def test_any_16_byte_key_is_accepted(raw: bytes) -> None:
    key = base64.b64encode(raw)
    result = read_offer(head((b"sec-websocket-key", key)), deflate=True)
    assert isinstance(result, Offer)
    assert result.key == key
    assert base64.b64decode(accept_value(key)) != b""


@given(st.binary(max_size=40).filter(lambda raw: len(raw) != 16))
def test_keys_of_other_lengths_are_refused(raw: bytes) -> None:
    result = read_offer(head((b"sec-websocket-key", base64.b64encode(raw))), deflate=True)
    assert status(result) == 400


@given(st.binary(max_size=40))
def test_any_key_value_is_an_offer_or_a_400(value: bytes) -> None:
    result = read_offer(head((b"sec-websocket-key", value)), deflate=True)
    assert status(result) in (101, 400)


TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHAR, min_size=1, max_size=12)
ows = st.sampled_from(["", " ", "  ", "\t"])


@given(st.lists(st.lists(tokens, min_size=1, max_size=4), min_size=1, max_size=3), ows, ows)
def test_subprotocols_parse_in_order(groups: list[list[str]], before: str, after: str) -> None:
    """RFC 6455 §4.1/§11.3.4: a comma list of tokens, possibly over several fields."""
    headers = [
        (b"sec-websocket-protocol", f"{before},{after}".join(group).encode()) for group in groups
    ]
    result = offer(*headers)
    assert isinstance(result, Offer)
    assert result.subprotocols == tuple(token for group in groups for token in group)


@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=30))
def test_any_subprotocol_value_is_an_offer_or_a_400(value: str) -> None:
    result = offer((b"sec-websocket-protocol", value.encode("latin-1")))
    assert status(result) in (101, 400)
    if isinstance(result, Offer):
        assert all(p and all(c in TCHAR for c in p) for p in result.subprotocols)


PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "server_no_context_takeover": st.none(),
        "client_no_context_takeover": st.none(),
        "server_max_window_bits": st.integers(8, 15),
        "client_max_window_bits": st.none() | st.integers(8, 15),
    },
)


def render(params: dict[str, int | None]) -> str:
    return "; ".join(
        ["permessage-deflate"]
        + [name if value is None else f"{name}={value}" for name, value in params.items()]
    )


@given(st.lists(PARAMS, min_size=1, max_size=3))
def test_deflate_answer_honours_the_offer(offers: list[dict[str, int | None]]) -> None:
    """RFC 7692 §7.1: the answer accepts one offer and stays within what it allowed."""
    result = offer((b"sec-websocket-extensions", ", ".join(map(render, offers)).encode()))
    assert isinstance(result, Offer)
    if result.extension_header is None:
        # declined: only an offer zlib cannot serve (server window of 8 bits) may be
        assert all(o.get("server_max_window_bits") == 8 for o in offers)
        return
    agreed = Deflate.from_response(result.extension_header)
    chosen = next(o for o in offers if o.get("server_max_window_bits") != 8)
    assert len(result.extensions) == 1
    if "server_no_context_takeover" in chosen:  # §7.1.1.1: MUST be in the answer
        assert agreed.server_no_context_takeover
    if "server_max_window_bits" in chosen:  # §7.1.2.1: at most the offered value
        assert agreed.server_max_window_bits <= int(chosen["server_max_window_bits"] or 15)
    if "client_max_window_bits" not in chosen:  # §7.1.2.2: MUST NOT answer it unasked
        assert "client_max_window_bits" not in result.extension_header
    elif chosen["client_max_window_bits"] is not None:
        assert agreed.client_max_window_bits <= chosen["client_max_window_bits"]


@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=60))
def test_any_extensions_value_is_an_offer_or_a_400(value: str) -> None:
    result = offer((b"sec-websocket-extensions", value.encode("latin-1")))
    assert status(result) in (101, 400)
    if isinstance(result, Offer) and result.extension_header is not None:
        Deflate.from_response(result.extension_header)  # a well-formed answer
