"""``read_simple_head`` against h11: it may decline anything; what it reads, h11 reads alike."""

from __future__ import annotations

import socket
from pathlib import Path

import h11
import pytest
from conftest import start_server
from hypothesis import given, settings
from hypothesis import strategies as st

from zerohttp.http import connection as protocol
from zerohttp.http.reader import head_of, header_pairs
from zerohttp.http.simple_head import read_simple_head
from zerohttp.message.response import RequestHead

LIMIT = 16384

Parsed = tuple[bytes, bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes]


def h11_reads(buffer: bytes, limit: int = LIMIT) -> Parsed | str:
    """What h11 makes of ``buffer`` as the first request of a connection."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=limit)
    parser.receive_data(buffer)
    try:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            return "incomplete"
        if not isinstance(event, h11.Request):
            return type(event).__name__
        end = parser.next_event()
    except h11.RemoteProtocolError:
        return "error"
    if not isinstance(end, h11.EndOfMessage):
        return "has a body"
    headers = header_pairs(event)
    return (event.method, event.target, event.http_version, headers, parser.trailing_data[0])


def simple_reads(buffer: bytes, limit: int = LIMIT) -> Parsed | None:
    result = read_simple_head(buffer, limit)
    if result is None:
        return None
    request, used, keep_alive = result
    # the keep-alive it reads in the same pass is what the rule over the fields says
    assert (
        keep_alive == head_of(b"GET", b"/", request.http_version, request.headers, limit).keep_alive
    )
    return (request.method, request.target, request.http_version, request.headers, buffer[used:])


def assert_agrees(buffer: bytes, limit: int = LIMIT) -> Parsed | None:
    simple = simple_reads(buffer, limit)
    if simple is not None:
        assert h11_reads(buffer, limit) == simple, buffer
    return simple


# --- the common shapes are read, identically ----------------------------------------------

BROWSER = (
    b"GET /static/app.js?v=3 HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0  \r\n"
    b"Accept:*/*\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b'If-None-Match: "abc", W/"def"\r\n'
    b"Cookie: a=\xc3\xa9; b=\t2\r\n"
    b"Range: bytes=0-9\r\n"
    b"\r\n"
)


@pytest.mark.parametrize(
    "buffer",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD /a%20b HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET /small.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\nGET /next HTTP/1.1\r\n",
        b"GET /x HTTP/1.1\r\nhOsT:   x   \r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
        b"GET /?q=%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        BROWSER,
    ],
)
def test_common_requests_are_read_as_h11_reads_them(buffer: bytes) -> None:
    assert assert_agrees(buffer) is not None


def test_values_and_names_are_normalised_as_h11_does() -> None:
    parsed = assert_agrees(BROWSER)
    assert parsed is not None
    headers = dict(parsed[3])
    assert headers[b"user-agent"] == b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"
    assert headers[b"accept"] == b"*/*"
    assert headers[b"cookie"] == b"a=\xc3\xa9; b=\t2"


# --- every shape outside the subset is left to h11 -----------------------------------------


@pytest.mark.parametrize(
    "buffer",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.0\r\n\r\n",  # no Host: h11 accepts, we need not
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # still arriving
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_other_shapes_are_declined(buffer: bytes) -> None:
    assert read_simple_head(buffer, LIMIT) is None


def test_a_head_over_the_limit_is_declined() -> None:
    buffer = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100 + b"\r\n\r\n"
    assert read_simple_head(buffer, len(buffer)) is not None
    assert read_simple_head(buffer, len(buffer) - 1) is None


# --- properties ----------------------------------------------------------------------------


# Two alphabets for each part of a head: well-formed pieces, and anything (including them).
good_methods = st.sampled_from([b"GET", b"HEAD"])
any_methods = good_methods | st.sampled_from([b"POST", b"get", b"OPTIONS", b"G\x00T", b""])
good_versions = st.sampled_from([b"1.1", b"1.0"])
any_versions = good_versions | st.sampled_from([b"1.2", b"2.0", b"1.", b"11", b""])
good_targets = st.sampled_from([b"/", b"/a?b=c", b"/%2e%2e/x", b"/~u/!$&'()*+,;=:@"])
any_targets = good_targets | st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from([b"/", b"", b"*", b"http://h"]),
    st.binary(max_size=12),
)
crlf = st.just(b"\r\n")
any_line_ends = crlf | st.sampled_from([b"\n", b"\r", b"\r\n ", b"\n\r", b""])
good_names = st.sampled_from(
    [b"Accept-Encoding", b"Connection", b"X-!#$%&'*+.^_`|~", b"If-None-Match", b"Range"]
)
any_names = (
    good_names
    | st.sampled_from([b"Host", b"host", b"Content-Length", b"Transfer-Encoding", b"Expect"])
    | st.sampled_from([b"Bad Name", b"", b"X\x00", b"\xff", b"X\r", b"X\n"])
    | st.binary(min_size=1, max_size=6)
)
good_values = st.sampled_from([b"", b" x ", b"\tx\t", b"a  b", b"gzip, br", b"\xc3\xa9", b"0-1"])
any_values = good_values | st.binary(max_size=12)
good_separators = st.sampled_from([b": ", b":", b":\t"])
any_separators = good_separators | st.sampled_from([b" :", b"::", b""])
good_fields = st.lists(st.tuples(good_names, good_separators, good_values, crlf), max_size=4)
any_fields = st.lists(st.tuples(any_names, any_separators, any_values, any_line_ends), max_size=5)
good_hosts = st.just([(b"Host", b": ", b"h:1", b"\r\n")])
any_hosts = good_hosts | st.lists(
    st.tuples(st.sampled_from([b"Host", b"hOST"]), any_separators, any_values, any_line_ends),
    max_size=2,
)
tails = st.sampled_from([b"", b"GET / HTTP/1.1\r\n", b"\r\n", b"abc"])


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    """A head built either from well-formed parts only or from any parts at all."""
    good = draw(st.booleans())
    method = draw(good_methods if good else any_methods)
    target = draw(good_targets if good else any_targets)
    version = draw(good_versions if good else any_versions)
    line_ends = crlf if good else any_line_ends
    lead = b"" if good else draw(st.sampled_from([b"", b"\r\n"]))
    head = lead + method + b" " + target + b" HTTP/" + version + draw(line_ends)
    fields = draw(good_fields if good else any_fields)
    for position, field in enumerate(draw(good_hosts if good else any_hosts)):
        fields.insert(min(position, len(fields)), field)
    for name, separator, value, end in fields:
        head += name + separator + value + end
    return head + draw(line_ends) + draw(tails)


@settings(max_examples=2000)
@given(request_heads())
def test_reads_only_what_h11_reads_the_same(buffer: bytes) -> None:
    assert_agrees(buffer)


@settings(max_examples=1000)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_declined_or_agree(buffer: bytes) -> None:
    assert_agrees(buffer)


@settings(max_examples=2000)
@given(st.data())
def test_mutated_requests_are_declined_or_agree(data: st.DataObject) -> None:
    buffer = bytearray(BROWSER)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(buffer) - 1))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.integers(0, 255))
        if action == "replace":
            buffer[position] = byte
        elif action == "insert":
            buffer.insert(position, byte)
        else:
            del buffer[position]
    assert_agrees(bytes(buffer))


@settings(max_examples=300)
@given(request_heads(), st.integers(1, 120))
def test_limit_never_lets_a_larger_head_through(buffer: bytes, limit: int) -> None:
    result = read_simple_head(buffer, limit)
    if result is not None:
        assert result[1] <= limit
        assert assert_agrees(buffer, limit) is not None


def test_the_generator_reaches_accepted_heads() -> None:
    """Guards the properties above: they must exercise the accepting branch, not only None."""
    accepted = 0

    @settings(max_examples=500, database=None)
    @given(request_heads())
    def count(buffer: bytes) -> None:
        nonlocal accepted
        if read_simple_head(buffer, LIMIT) is not None:
            accepted += 1

    count()
    assert accepted > 100


# --- the connection uses it -----------------------------------------------------------------


def test_connections_read_common_requests_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain GET goes through the simple reader; a POST is declined and h11 answers it."""
    (tmp_path / "a.txt").write_bytes(b"hello")
    results: list[bool] = []

    def counting(buffer: bytes, limit: int) -> tuple[RequestHead, int, bool] | None:
        result = read_simple_head(buffer, limit)
        results.append(result is not None)
        return result

    monkeypatch.setattr(protocol, "read_simple_head", counting)
    with (
        start_server(tmp_path, "uvloop") as server,
        socket.create_connection((server.host, server.port), timeout=5) as sock,
    ):
        sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\nhello" in received
    assert b"HTTP/1.1 405 Method Not Allowed\r\n" in received
    assert results[:2] == [True, False]
