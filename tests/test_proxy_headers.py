"""``--proxy-headers``: the client and scheme a trusted proxy names, in the access log and
the ASGI scope; from an untrusted peer, nothing changes.

The parsers (``zerohttp.http.proxy``) are pure: unit tables, and hypothesis properties
that they never raise and never name a client that an untrusted hop could have forged.
End to end, real sockets: the access log (trusted peer, untrusted peer, ``*``, off), the
ASGI scope through a tiny app, and a unix-socket peer in a ``python -m zerohttp`` process.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import start_server
from hypothesis import given, settings
from hypothesis import strategies as st
from serverprocs import zerohttp

from zerohttp import Config
from zerohttp.errors import ConfigError
from zerohttp.http.proxy import (
    ForwardedClient,
    Hop,
    ProxyHeaders,
    TrustedPeers,
    forwarded_client,
    forwarded_elements,
    forwarded_hop,
    parse_forwarded_element,
    parse_node,
    pick_client,
)
from zerohttp.http.responselog import client_address
from zerohttp.message.response import RequestHead

LOCAL = TrustedPeers(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


def xff(value: str, proto: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-forwarded-for", value.encode())]
    if proto is not None:
        headers.append((b"x-forwarded-proto", proto.encode()))
    return headers


# --- units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hop"),
    [
        ("192.0.2.1", Hop("192.0.2.1")),
        (" 192.0.2.1 ", Hop("192.0.2.1")),
        ("192.0.2.1:8080", Hop("192.0.2.1", 8080)),
        ("2001:db8::1", Hop("2001:db8::1")),
        ("2001:DB8:0::1", Hop("2001:db8::1")),  # as the address prints
        ("[2001:db8::1]", Hop("2001:db8::1")),
        ("[2001:db8::1]:4711", Hop("2001:db8::1", 4711)),
        ("::ffff:192.0.2.1", Hop("192.0.2.1")),  # IPv4-mapped: the IPv4 address
        ("unknown", Hop("unknown")),
        ("UNKNOWN:80", Hop("unknown", 80)),
        ("_hidden", Hop("_hidden")),
        ("_hidden:_port", Hop("_hidden")),
        ("example.com", None),
        ("192.0.2.1:99999", None),
        ("192.0.2.1:", None),
        ("[192.0.2.1]", None),  # brackets are for IPv6
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ("", None),
        ("a b", None),
    ],
)
def test_nodes(text: str, hop: Hop | None) -> None:
    assert parse_node(text) == hop


def test_forwarded_elements_and_pairs() -> None:
    # RFC 7239 §4's examples, and a comma or semicolon inside a quoted string
    value = 'for="_gazonk", For="[2001:db8:cafe::17]:4711", for=192.0.2.60;proto=http;by=x'
    elements = forwarded_elements(value)
    assert len(elements) == 3
    assert [forwarded_hop(e) for e in elements] == [
        Hop("_gazonk"),
        Hop("2001:db8:cafe::17", 4711),
        Hop("192.0.2.60", 0, "http"),
    ]
    assert forwarded_elements('for="a,b";x="c;d", for=1.2.3.4') == [
        'for="a,b";x="c;d"',
        " for=1.2.3.4",
    ]
    assert parse_forwarded_element('for="a;b";x="q\\"q"') == {"for": "a;b", "x": 'q"q'}
    assert parse_forwarded_element("for=1.2.3.4;for=5.6.7.8") is None  # a name twice
    assert parse_forwarded_element("for 1.2.3.4") is None
    assert parse_forwarded_element('for="1.2.3.4') is None  # an unclosed quote


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # the right-most address that is not a trusted proxy
        (xff("203.0.113.7"), ForwardedClient("203.0.113.7")),
        (xff("198.51.100.1, 203.0.113.7, 10.0.0.2"), ForwardedClient("203.0.113.7")),
        # every hop trusted: the left-most (uvicorn)
        (xff("10.0.0.3, 10.0.0.2"), ForwardedClient("10.0.0.3")),
        # a forged left part never wins, garbage there is never read
        (xff("garbage, 203.0.113.7"), ForwardedClient("203.0.113.7")),
        # an unreadable hop where the walk stops: nothing believable, the peer stands
        (xff("203.0.113.7, garbage"), None),
        (xff(""), None),
        # the port, when a proxy gave one
        (xff("[2001:db8::7]:5000"), ForwardedClient("2001:db8::7", 5000)),
        # proto: one value; lists that line up give the client's hop's; else the last
        (xff("203.0.113.7", "https"), ForwardedClient("203.0.113.7", 0, "https")),
        (xff("203.0.113.7, 10.0.0.2", "https, http"), ForwardedClient("203.0.113.7", 0, "https")),
        (xff("203.0.113.7, 10.0.0.2", "http"), ForwardedClient("203.0.113.7", 0, "http")),
        (xff("203.0.113.7", "WSS"), ForwardedClient("203.0.113.7", 0, "https")),
        (xff("203.0.113.7", "gopher"), ForwardedClient("203.0.113.7")),
        ([(b"x-forwarded-proto", b"https")], ForwardedClient(None, 0, "https")),
        # two X-Forwarded-For fields are one list, in order
        (
            [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-for", b"198.51.100.1")],
            ForwardedClient("198.51.100.1"),
        ),
        # Forwarded, read only without X-Forwarded-*
        (
            [(b"forwarded", b"for=203.0.113.7;proto=https, for=10.0.0.2;proto=http")],
            ForwardedClient("203.0.113.7", 0, "https"),
        ),
        (
            [(b"forwarded", b'for="[2001:db8::7]:4711"')],
            ForwardedClient("2001:db8::7", 4711),
        ),
        ([(b"forwarded", b"for=unknown")], ForwardedClient("unknown")),
        ([(b"forwarded", b"for=_hidden, for=10.0.0.2")], ForwardedClient("_hidden")),
        ([(b"forwarded", b"proto=https")], None),  # no for: nothing to believe
        (
            [(b"forwarded", b"for=198.51.100.9;proto=https"), *xff("203.0.113.7")],
            ForwardedClient("203.0.113.7"),  # X-Forwarded-* wins, and the two never mix
        ),
        ([(b"host", b"example.com")], None),
    ],
)
def test_forwarded_client(headers: list[tuple[bytes, bytes]], expected: Any) -> None:
    assert forwarded_client(headers, LOCAL) == expected


def test_trusted_peers() -> None:
    peers = TrustedPeers(["127.0.0.1", " 10.0.0.0/8", "2001:db8::/32"])
    assert "127.0.0.1" in peers and "10.1.2.3" in peers and "2001:db8::5" in peers
    assert "::ffff:10.1.2.3" in peers  # a dual-stack socket's view of an IPv4 peer
    assert "127.0.0.2" not in peers and "unknown" not in peers and "" not in peers
    assert "1.2.3.4" in TrustedPeers(["*"])
    assert "unknown" not in TrustedPeers(["*"])  # a name is never a trusted proxy
    with pytest.raises(ValueError, match=r"'example\.com' is not an IP address"):
        TrustedPeers(["example.com"])


def test_a_unix_socket_peer_is_trusted_and_others_by_the_list() -> None:
    proxy = ProxyHeaders(["10.0.0.1"])
    assert proxy.client(None, xff("203.0.113.7")) == ForwardedClient("203.0.113.7")
    assert proxy.client("10.0.0.1", xff("203.0.113.7")) == ForwardedClient("203.0.113.7")
    assert proxy.client("127.0.0.1", xff("203.0.113.7")) is None


def test_the_log_address() -> None:
    proxy = ProxyHeaders(["127.0.0.1"])
    request = RequestHead(b"GET", b"/", b"1.1", tuple(xff("203.0.113.7")))
    assert client_address(proxy, "127.0.0.1", request) == "203.0.113.7"
    assert client_address(proxy, "-", request) == "203.0.113.7"  # a unix-socket peer
    assert client_address(proxy, "192.0.2.9", request) == "192.0.2.9"  # untrusted
    plain = RequestHead(b"GET", b"/", b"1.1", ((b"host", b"x"),))
    assert client_address(proxy, "127.0.0.1", plain) == "127.0.0.1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (("bogus",), "--forwarded-allow-ips: 'bogus' is not an IP address"),
        (("10.0.0.0/8", "10.0.0.300"), "'10.0.0.300'"),
    ],
)
def test_forwarded_allow_ips_is_checked(value: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(forwarded_allow_ips=value)
    Config(forwarded_allow_ips=("*",))
    Config(forwarded_allow_ips=("10.0.0.0/8", "::1", "fd00::/8"))


# --- properties -------------------------------------------------------------------------

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str)
addresses = st.one_of(ipv4, ipv6)
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80
) | st.sampled_from(['"', '\\"', ",", ";", "for=", "[", "]", '"[::1]:80"', "unknown", "_x"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"x-forwarded-for", b"x-forwarded-proto", b"forwarded", b"host"]),
            st.lists(header_text, max_size=6).map(lambda p: "".join(p).encode("latin-1")),
        ),
        max_size=4,
    ),
    st.sampled_from([LOCAL, TrustedPeers(["*"]), TrustedPeers([])]),
)
def test_never_raises_and_names_only_a_node(
    headers: list[tuple[bytes, bytes]], trusted: TrustedPeers
) -> None:
    found = forwarded_client(headers, trusted)
    if found is not None:
        assert found.scheme in (None, "http", "https")
        assert 0 <= found.port <= 65535
        if found.host is not None:  # safe for a log line: an address or a bare name
            assert parse_node(found.host) is not None
            assert not any(c in found.host for c in ' "\\,;')


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[str], set[str]]:
    """A chain of addresses, and which of them are trusted proxies."""
    chain = draw(st.lists(addresses, min_size=1, max_size=8))
    trusted = {a for a in chain if draw(st.booleans())}
    return chain, trusted


def consistent(chain: list[str], trusted_set: set[str], host: str | None) -> None:
    """The chosen client is the right-most untrusted hop: every hop to its right is a
    trusted proxy, the hop itself is not (unless all are: then it is the left-most)."""
    normal = [str(ipaddress.ip_address(a)) for a in chain]
    if all(a in trusted_set for a in chain):
        assert host == normal[0]
        return
    index = max(i for i, a in enumerate(chain) if a not in trusted_set)
    assert host == normal[index]


@settings(max_examples=300, deadline=None)
@given(chains())
def test_x_forwarded_for_names_the_right_most_untrusted(
    drawn: tuple[list[str], set[str]],
) -> None:
    chain, trusted_set = drawn
    trusted = TrustedPeers(sorted(trusted_set))
    found = forwarded_client(xff(", ".join(chain)), trusted)
    assert found is not None
    consistent(chain, trusted_set, found.host)
    # and a forged prefix, whatever it holds, changes nothing unless every hop is trusted
    if not all(a in trusted_set for a in chain):
        forged = forwarded_client(xff("6.6.6.6, garbage, " + ", ".join(chain)), trusted)
        assert forged == found


@settings(max_examples=300, deadline=None)
@given(chains(), st.data())
def test_forwarded_names_the_right_most_untrusted(
    drawn: tuple[list[str], set[str]], data: st.DataObject
) -> None:
    chain, trusted_set = drawn
    elements = []
    for address in chain:
        node = f'"[{address}]"' if ":" in address else address
        if data.draw(st.booleans()):
            node = (
                f'"[{address}]:{data.draw(st.integers(0, 65535))}"'
                if ":" in address
                else (f'"{address}:{data.draw(st.integers(0, 65535))}"')
            )
        extra = data.draw(st.sampled_from(["", ";proto=https", ';by="_p,x"', ";host=a.b"]))
        elements.append(f"for={node}{extra}")
    value = ", ".join(elements).encode()
    found = forwarded_client([(b"forwarded", value)], TrustedPeers(sorted(trusted_set)))
    assert found is not None
    consistent(chain, trusted_set, found.host)


@settings(max_examples=200, deadline=None)
@given(st.lists(addresses, min_size=1, max_size=6), st.integers(0, 6))
def test_pick_client_reads_only_what_the_walk_reaches(chain: list[str], trusted_tail: int) -> None:
    """Entries left of the client are never parsed: a long forged chain costs nothing."""
    read: list[str] = []

    def parse(entry: str) -> Hop | None:
        read.append(entry)
        return parse_node(entry)

    tail = [f"10.0.0.{i + 1}" for i in range(trusted_tail)]
    found = pick_client([*chain, *tail], parse, LOCAL)
    assert found is not None
    if chain[-1] not in LOCAL:
        assert read == [*reversed(tail), chain[-1]]


# --- end to end -------------------------------------------------------------------------


def get(port: int, path: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def logged(site: Path, log: Path, headers: dict[str, str], **config: Any) -> str:
    """The remote_addr of one logged request with ``headers`` to a server with ``config``."""
    with start_server(
        site, "uvloop", access_log="json", access_log_file=str(log), **config
    ) as server:
        assert get(server.port, "/kib.bin", headers) == 200
    address: str = json.loads(log.read_text().splitlines()[-1])["remote_addr"]
    log.unlink()
    return address


FORWARDED = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Forwarded-Proto": "https"}


def test_the_access_log_names_the_client_of_a_trusted_proxy(site: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    # off (the default): the peer, whatever the headers say
    assert logged(site, log, FORWARDED) == "127.0.0.1"
    # on, 127.0.0.1 trusted by default: the right-most untrusted address
    assert logged(site, log, FORWARDED, proxy_headers=True) == "203.0.113.7"
    # on, every peer trusted: the left-most
    assert logged(site, log, FORWARDED, proxy_headers=True, forwarded_allow_ips=("*",)) == (
        "198.51.100.1"
    )
    # on, the peer not in the list: ignored
    untrusted = {"proxy_headers": True, "forwarded_allow_ips": ("10.0.0.0/8",)}
    assert logged(site, log, FORWARDED, **untrusted) == "127.0.0.1"
    # RFC 7239 Forwarded, from a trusted peer
    forwarded = {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}
    assert logged(site, log, forwarded, proxy_headers=True) == "2001:db8::7"
    # nothing forwarded: the peer
    assert logged(site, log, {}, proxy_headers=True) == "127.0.0.1"


async def scope_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def scope_seen(port: int, headers: dict[str, str]) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers=headers)
        seen: dict[str, Any] = json.loads(connection.getresponse().read())
        return seen
    finally:
        connection.close()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_asgi_scope_names_the_client_of_a_trusted_proxy(tmp_path: Path, loop: str) -> None:
    with start_server(tmp_path, loop, app=scope_app, lifespan="off", proxy_headers=True) as server:
        assert scope_seen(server.port, FORWARDED) == {
            "client": ["203.0.113.7", 0],
            "scheme": "https",
        }
        forwarded = {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}
        assert scope_seen(server.port, forwarded) == {
            "client": ["2001:db8::7", 4711],
            "scheme": "https",
        }
        plain = scope_seen(server.port, {})
        assert plain["client"][0] == "127.0.0.1" and plain["client"][1] > 0
        assert plain["scheme"] == "http"
    untrusted = {"proxy_headers": True, "forwarded_allow_ips": ("10.0.0.0/8",)}
    with start_server(tmp_path, loop, app=scope_app, lifespan="off", **untrusted) as server:
        seen = scope_seen(server.port, FORWARDED)
        assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"
    with start_server(tmp_path, loop, app=scope_app, lifespan="off") as server:  # off
        seen = scope_seen(server.port, FORWARDED)
        assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"


def test_a_unix_socket_peer_is_trusted(tmp_path: Path) -> None:
    """Behind a proxy on the same machine, over ``--uds``: trusted whatever the list says."""
    (tmp_path / "scopeapp.py").write_text(
        "import json\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    body = json.dumps([scope['client'], scope['scheme']]).encode()\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': body})\n"
    )
    path = str(tmp_path / "app.sock")
    log = tmp_path / "access.log"
    args = ["--app", "scopeapp:app", "--uds", path, "--lifespan", "off", "--proxy-headers"]
    args += ["--forwarded-allow-ips", "10.9.9.9", "--access-log", "common"]
    args += ["--access-log-file", str(log)]
    with zerohttp(args, cwd=tmp_path) as server:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(path)
        connection = http.client.HTTPConnection("localhost", timeout=10)
        connection.sock = sock
        connection.request("GET", "/", headers=FORWARDED)
        assert json.loads(connection.getresponse().read()) == [["203.0.113.7", 0], "https"]
        connection.close()
        assert server.stop() == 0
    deadline = time.monotonic() + 5
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.read_text().startswith("203.0.113.7 - - ")


def test_results_are_remembered_for_short_values_only() -> None:
    proxy = ProxyHeaders(["127.0.0.1"])
    headers = xff("198.51.100.1, 203.0.113.7", "https")
    first = proxy.client("127.0.0.1", headers)
    assert first == ForwardedClient("203.0.113.7", 0, "https")
    assert proxy.client("127.0.0.1", headers) is first  # the remembered result
    assert proxy.client("192.0.2.1", headers) is None  # trust is asked every time
    long_chain = xff(", ".join(["203.0.113.7"] * 100))
    assert proxy.client("127.0.0.1", long_chain) == ForwardedClient("203.0.113.7")
    assert proxy.client("127.0.0.1", long_chain) is not proxy.client("127.0.0.1", long_chain)


@settings(max_examples=200, deadline=None)
@given(chains())
def test_remembered_results_are_the_computed_ones(drawn: tuple[list[str], set[str]]) -> None:
    chain, trusted_set = drawn
    proxy = ProxyHeaders(sorted(trusted_set) or ["192.0.2.255"])
    headers = xff(", ".join(chain))
    expected = forwarded_client(headers, proxy.trusted)
    assert proxy.forwarded(headers) == expected
    assert proxy.forwarded(headers) == expected
