"""The client behind a trusted proxy: who sent a request, and over which scheme.

``--proxy-headers`` means what it means in uvicorn: when the peer of a connection is in
``--forwarded-allow-ips`` (addresses or networks; ``*`` for every peer; a unix-socket peer
always, since only a local process allowed by the socket's mode can connect), its
``X-Forwarded-For`` and ``X-Forwarded-Proto`` (or RFC 7239 ``Forwarded``) headers name the
client; from any other peer they are ignored.

Each proxy appends the address it received the request from, so the client is the
right-most address of the chain that is **not** a trusted proxy: entries to its left
could have been written by anyone. When every entry is trusted, or with ``*``, the
left-most one is the client (uvicorn's rule).

Which header wins: ``X-Forwarded-*``. When a request carries ``X-Forwarded-For`` or
``X-Forwarded-Proto``, ``Forwarded`` is not read at all, and is read only when neither is
present. Neither uvicorn nor nginx's ``real_ip_header`` default reads ``Forwarded``, and a
proxy that manages one set usually passes the other from the client unchanged (nginx's
``proxy_add_x_forwarded_for`` leaves a client's ``Forwarded`` as it came): the set most
proxies write is the one that cannot be forged through them. The two are never mixed.

Everything here is a plain function over strings and header pairs, parsed once per
request only when ``--proxy-headers`` is on.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
UNKNOWN = "unknown"
_TRUST_CACHE_SIZE = 4096

# RFC 7239 §6.3: an obfuscated node name or port ("_hidden", "_SEVKISEK")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
# one forwarded-pair (RFC 7239 §4): token "=" (token / quoted-string), OWS tolerated
_PAIR = re.compile(
    r"[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*"
    r'(?:([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)|"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*)")'
    r"[ \t]*"
)
_QUOTED_PAIR = re.compile(r"\\(.)")


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (an IPv4-mapped IPv6 address as its IPv4 one), or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedPeers:
    """``--forwarded-allow-ips`` parsed once: addresses and networks, or every peer."""

    __slots__ = ("_known", "everyone", "networks")

    def __init__(self, entries: Iterable[str]) -> None:
        """Raises ValueError naming the first entry that is neither ``*``, an address nor
        a network (``10.0.0.0/8``, ``fd00::/8``)."""
        self.everyone = False
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if entry == "*":
                self.everyone = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"{raw!r} is not an IP address, a network (10.0.0.0/8) or *"
                ) from None
        self.networks = tuple(networks)
        self._known: dict[str, bool] = {}  # address text -> trusted, for the peers seen

    def __contains__(self, host: str) -> bool:
        """Whether the proxy at address ``host`` (text) is trusted; a name is never."""
        known = self._known.get(host)
        if known is None:
            address = parse_address(host)
            known = address is not None and (
                self.everyone or any(address in network for network in self.networks)
            )
            if len(self._known) >= _TRUST_CACHE_SIZE:
                self._known.clear()
            self._known[host] = known
        return known


@dataclass(frozen=True, slots=True)
class Hop:
    """One entry of a forwarding chain: an address (or ``unknown``, or an obfuscated
    name), the port if one was given, and the scheme that hop received (Forwarded only)."""

    host: str
    port: int = 0
    scheme: str | None = None


@dataclass(frozen=True, slots=True)
class ForwardedClient:
    """What the headers say of the client: ``host`` None keeps the peer's address,
    ``scheme`` None the connection's own."""

    host: str | None
    port: int = 0
    scheme: str | None = None


@functools.lru_cache(maxsize=4096)  # a proxy's clients and its own address recur
def parse_node(text: str) -> Hop | None:
    """One node (``192.0.2.1``, ``192.0.2.1:8080``, ``2001:db8::1``, ``[2001:db8::1]:8080``,
    ``unknown``, ``_hidden``, ``_hidden:_port``), or None if it is none of these.

    The grammar is RFC 7239 §6's, read a little wider for X-Forwarded-For, whose entries
    are bare IPv6 addresses as often as bracketed ones.
    """
    text = text.strip(" \t")
    if text.startswith("["):
        close = text.find("]")
        rest = text[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            return None
        try:
            ipaddress.IPv6Address(text[1:close])
        except ValueError:
            return None
        port = _port(rest[1:]) if rest else 0
        address = parse_address(text[1:close])
        return None if port is None or address is None else Hop(str(address), port)
    address = parse_address(text)
    if address is not None:
        return Hop(str(address))
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host, port_text = text, ""
    elif ":" in host:  # a bare IPv6 address that failed to parse: nothing else has two
        return None
    port = _port(port_text) if colon else 0
    if port is None:
        return None
    if host.lower() == UNKNOWN:
        return Hop(UNKNOWN, port)
    if _OBFUSCATED.fullmatch(host):
        return Hop(host, port)
    address = parse_address(host)
    if address is None or address.version != 4:
        return None
    return Hop(str(address), port)


def _port(text: str) -> int | None:
    """A node port: a number up to 65535, or an obfuscated one (reported as 0)."""
    if text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535:
        return int(text)
    if _OBFUSCATED.fullmatch(text):
        return 0
    return None


def split_list(value: str) -> list[str]:
    """The elements of a comma-separated header list, empty ones dropped (RFC 9110 §5.6.1)."""
    return [item for item in (part.strip(" \t") for part in value.split(",")) if item]


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    """``value`` split at ``separator`` where it is not inside a quoted string.

    Split everywhere first (C speed), then pieces that leave a quote open are joined with
    the ones after them; a quote escaped as ``\\"`` does not count.
    """
    pieces = value.split(separator)
    if '"' not in value:
        return pieces
    parts: list[str] = []
    open_part: str | None = None
    for piece in pieces:
        quotes = piece.count('"') - piece.count('\\"')
        if open_part is not None:
            open_part += separator + piece
            if quotes % 2:
                parts.append(open_part)
                open_part = None
        elif quotes % 2:
            open_part = piece
        else:
            parts.append(piece)
    if open_part is not None:
        parts.append(open_part)  # an unclosed quote: malformed, and parsed as such
    return parts


def forwarded_elements(value: str) -> list[str]:
    """Forwarded's comma-separated elements, empty ones dropped."""
    return [part for part in _split_outside_quotes(value, ",") if part.strip(" \t")]


def parse_forwarded_element(element: str) -> dict[str, str] | None:
    """One element's pairs, names lower-case, quoted values unquoted; None if malformed
    (a pair that is not ``token=value``, or a name given twice: RFC 7239 §4)."""
    pairs: dict[str, str] = {}
    for part in _split_outside_quotes(element, ";"):
        if not part.strip(" \t"):
            continue
        match = _PAIR.fullmatch(part)
        if match is None:
            return None
        name = match.group(1).lower()
        if name in pairs:
            return None
        token, quoted = match.group(2), match.group(3)
        pairs[name] = token if token is not None else _QUOTED_PAIR.sub(r"\1", quoted)
    return pairs


def forwarded_hop(element: str) -> Hop | None:
    """One Forwarded element as a hop carrying its ``proto``; None for a malformed element
    or one whose ``for`` is missing or no node."""
    pairs = parse_forwarded_element(element)
    node = pairs.get("for") if pairs is not None else None
    hop = parse_node(node) if node is not None else None
    if hop is not None and pairs is not None and "proto" in pairs:
        hop = Hop(hop.host, hop.port, SCHEMES.get(pairs["proto"].lower()))
    return hop


def pick_client(
    entries: Sequence[str], parse: Callable[[str], Hop | None], trusted: TrustedPeers
) -> tuple[int, Hop] | None:
    """The client among a chain's ``entries`` (left to right), with its index: the
    right-most hop that is not a trusted proxy, or the left-most when all are (or when
    every peer is trusted). None when that hop is unreadable: then the chain says nothing
    one can believe, and the peer stands.

    Entries are parsed from the right and only as far as the walk goes, so a long chain
    costs what its trusted tail costs.
    """
    if not entries:
        return None
    if trusted.everyone:
        hop = parse(entries[0])
        return None if hop is None else (0, hop)
    found = None
    for index in range(len(entries) - 1, -1, -1):
        hop = parse(entries[index])
        if hop is None:
            return None
        if hop.host not in trusted:
            return index, hop
        found = index, hop
    return found  # every hop a trusted proxy: the left-most is the client


ProxyValues = tuple[bytes, bytes, bytes]  # X-Forwarded-For, X-Forwarded-Proto, Forwarded


def proxy_values(headers: Sequence[tuple[bytes, bytes]]) -> ProxyValues | None:
    """The three fields' values (each list's lines joined with a comma), or None if the
    request has none of them: one pass over the header names."""
    x_for = x_proto = forwarded = b""
    seen = False
    for name, value in headers:
        if name == b"x-forwarded-for":
            x_for = x_for + b"," + value if x_for else value
            seen = True
        elif name == b"x-forwarded-proto":
            x_proto = x_proto + b"," + value if x_proto else value
            seen = True
        elif name == b"forwarded":
            forwarded = forwarded + b"," + value if forwarded else value
            seen = True
    return (x_for, x_proto, forwarded) if seen else None


def forwarded_client(
    headers: Sequence[tuple[bytes, bytes]], trusted: TrustedPeers
) -> ForwardedClient | None:
    """What a trusted peer's headers say of the client, or None if they say nothing
    usable. Only call it for a trusted peer: this function does not know the peer."""
    values = proxy_values(headers)
    return None if values is None else client_of(values, trusted)


def client_of(values: ProxyValues, trusted: TrustedPeers) -> ForwardedClient | None:
    """``forwarded_client`` once the three fields are read."""
    x_for, x_proto, forwarded = values
    if x_for or x_proto:
        entries = split_list(x_for.decode("latin-1"))
        found = pick_client(entries, parse_node, trusted)
        protos = split_list(x_proto.decode("latin-1"))
        # the proto of the client's own hop where the two lists line up, else the one the
        # nearest proxy set
        proto = ""
        if found is not None and len(protos) == len(entries):
            proto = protos[found[0]]
        elif protos:
            proto = protos[-1]
        scheme = SCHEMES.get(proto.lower())
    else:
        elements = forwarded_elements(forwarded.decode("latin-1"))
        found = pick_client(elements, forwarded_hop, trusted)
        scheme = found[1].scheme if found is not None else None
    if found is None:
        return None if scheme is None else ForwardedClient(None, 0, scheme)
    return ForwardedClient(found[1].host, found[1].port, scheme)


# Results kept per header values: a proxy sends the same few values again and again.
# Only short ones are kept (a long chain is rare, and the cache stays small).
RESULT_CACHE_SIZE = 4096
_CACHED_VALUES_MAX = 256


class ProxyHeaders:
    """``--proxy-headers`` with its ``--forwarded-allow-ips``: the one object the access
    log and the ASGI host ask."""

    __slots__ = ("_results", "trusted")

    def __init__(self, allow: Iterable[str]) -> None:
        self.trusted = TrustedPeers(allow)
        self._results: dict[ProxyValues, ForwardedClient | None] = {}

    def trusts(self, peer: str | None) -> bool:
        """``peer`` is the connection's address text, None for a unix-socket peer."""
        return peer is None or peer in self.trusted

    def client(
        self, peer: str | None, headers: Sequence[tuple[bytes, bytes]]
    ) -> ForwardedClient | None:
        """The client as the headers say, if ``peer`` may say it; None: keep the peer."""
        if not self.trusts(peer):
            return None
        return self.forwarded(headers)

    def forwarded(self, headers: Sequence[tuple[bytes, bytes]]) -> ForwardedClient | None:
        """``forwarded_client`` for a peer known to be trusted, its results remembered."""
        values = proxy_values(headers)
        if values is None:
            return None
        results = self._results
        try:
            return results[values]
        except KeyError:
            pass
        found = client_of(values, self.trusted)
        if sum(map(len, values)) <= _CACHED_VALUES_MAX:
            if len(results) >= RESULT_CACHE_SIZE:
                results.clear()
            results[values] = found
        return found
