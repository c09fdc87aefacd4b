"""``reader.head_of``: the one pass over a parsed head's fields (size, version, framing,
conflicts, keep-alive, Expect), over plain data."""

from __future__ import annotations

import pytest

from zerohttp.http.reader import head_of

Headers = list[tuple[bytes, bytes]]

HOST: Headers = [(b"host", b"example.com")]


# --- refusals: version, size, framing -------------------------------------------------------


@pytest.mark.parametrize("version", [b"2.0", b"0.9", b"1.2", b"1", b"", b"1.10", b"11"])
def test_unsupported_version_is_505(version: bytes) -> None:
    assert head_of(b"GET", b"/", version, HOST, 16384).refusal == 505


@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
def test_supported_version_small_head_is_fine(version: bytes) -> None:
    assert head_of(b"GET", b"/", version, HOST, 16384).refusal is None


@pytest.mark.parametrize(
    ("target", "headers", "wire"),
    [
        (
            b"/index.html",
            [(b"host", b"example.com"), (b"accept", b"*/*")],
            b"GET /index.html HTTP/1.1\r\nhost:example.com\r\naccept:*/*\r\n\r\n",
        ),
        (b"/", [], b"GET / HTTP/1.1\r\n\r\n"),
        (b"/", HOST, b"GET / HTTP/1.1\r\nhost:example.com\r\n\r\n"),
    ],
)
def test_the_size_counted_is_the_shortest_wire_size(
    target: bytes, headers: Headers, wire: bytes
) -> None:
    """``Name:value`` without the optional space: a head that fits is never refused, and
    one byte less of limit refuses it (431)."""
    assert head_of(b"GET", target, b"1.1", headers, len(wire)).refusal is None
    assert head_of(b"GET", target, b"1.1", headers, len(wire) - 1).refusal == 431


def test_long_target_or_many_headers_is_431() -> None:
    assert head_of(b"GET", b"/" + b"a" * 20000, b"1.1", HOST, 16384).refusal == 431
    many = HOST + [(b"x-filler", b"v" * 100)] * 200
    assert head_of(b"GET", b"/", b"1.1", many, 16384).refusal == 431
    assert head_of(b"GET", b"/", b"1.1", many[:100], 16384).refusal is None


def test_version_checked_before_size() -> None:
    assert head_of(b"GET", b"/" + b"a" * 20000, b"2.0", HOST, 16384).refusal == 505


def test_content_length_beside_transfer_encoding_is_400() -> None:
    """The request-smuggling shape, refused whichever field comes first (after size)."""
    both: Headers = [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]
    assert head_of(b"POST", b"/", b"1.1", both, 16384).refusal == 400
    assert head_of(b"POST", b"/", b"1.1", both[::-1], 16384).refusal == 400
    assert head_of(b"POST", b"/", b"1.1", both[:1], 16384).refusal is None
    assert head_of(b"POST", b"/", b"1.1", both[1:], 16384).refusal is None
    assert head_of(b"POST", b"/", b"1.1", both, 10).refusal == 431


# --- keep-alive -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Close", False),
        (b"1.1", b"CLOSE", False),
        (b"1.1", b"keep-alive", True),
        (b"1.1", b"keep-alive, close", False),
        (b"1.1", b"Upgrade, close", False),
        (b"1.1", b"Upgrade", True),
        (b"1.1", b"closed", True),
        (b"1.1", b"  close  ", False),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"KEEP-ALIVE", True),
        (b"1.0", b"keep-alive, Upgrade", True),
        (b"1.0", b"Upgrade,keep-alive", True),
        (b"1.0", b"keep-alive, close", False),
        (b"1.0", b"close", False),
        (b"1.0", b"Upgrade", False),
        (b"1.0", b"keep-alive-ish", False),
    ],
)
def test_keep_alive_requested(version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    headers: Headers = list(HOST)
    if connection is not None:
        headers.append((b"connection", connection))
    assert head_of(b"GET", b"/", version, headers, 16384).keep_alive is keep_alive


def test_keep_alive_tokens_from_several_connection_fields() -> None:
    headers: Headers = [(b"connection", b"keep-alive"), (b"connection", b"close")]
    assert head_of(b"GET", b"/", b"1.0", headers, 16384).keep_alive is False
    assert head_of(b"GET", b"/", b"1.1", headers, 16384).keep_alive is False
    headers = [(b"connection", b"upgrade"), (b"connection", b"keep-alive")]
    assert head_of(b"GET", b"/", b"1.0", headers, 16384).keep_alive is True


def test_close_in_other_field_is_ignored() -> None:
    assert head_of(b"GET", b"/", b"1.1", [(b"x-connection", b"close")], 16384).keep_alive is True
    assert (
        head_of(b"GET", b"/", b"1.0", [(b"x-connection", b"keep-alive")], 16384).keep_alive is False
    )


# --- framing and Expect --------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "size"),
    [
        ([], 0),
        (HOST, 0),
        ([(b"content-length", b"0")], 0),
        ([(b"content-length", b"42")], 42),
        ([*HOST, (b"content-length", b"123456789")], 123456789),
        ([(b"transfer-encoding", b"chunked")], None),
        ([(b"transfer-encoding", b"chunked"), (b"content-length", b"5")], None),
    ],
)
def test_declared_body(headers: Headers, size: int | None) -> None:
    assert head_of(b"POST", b"/", b"1.1", headers, 16384).body == size


@pytest.mark.parametrize(
    ("version", "headers", "expected"),
    [
        (b"1.1", [(b"expect", b"100-continue")], True),
        (b"1.1", [(b"expect", b"100-Continue")], True),
        (b"1.1", [*HOST, (b"expect", b"100-CONTINUE")], True),
        (b"1.0", [(b"expect", b"100-continue")], False),
        (b"1.1", [], False),
        (b"1.1", [(b"expect", b"200-ok")], False),
        (b"1.1", [(b"x-expect", b"100-continue")], False),
    ],
)
def test_expects_continue(version: bytes, headers: Headers, expected: bool) -> None:
    assert head_of(b"POST", b"/", version, headers, 16384).expects_continue is expected
