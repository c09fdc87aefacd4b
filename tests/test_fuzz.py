"""Fuzzing: random bytes and mutated requests against a live server over real sockets.

A server per event loop (uvloop with sendfile, asyncio with the read fallback; autoindex
on, ``--max-header-bytes 2048``, an access log, combined or JSON, and metrics counting)
serves a small site whose directory has a sibling with the same prefix (``www`` and
``www-private``), symlinks into it, and a parent, all holding files with a unique token.
Requests are built from parts (method, target, version, headers,
body), pipelined two or three to a write, mutated at the byte level (flips, insertions,
deletions, duplicated spans, truncation, traversal and line-end fragments) and written in
pieces with small delays. Every example then checks:

- **no traceback**: nothing at ERROR or with exc_info reaches the ``zerohttp`` or
  ``asyncio`` loggers (a protocol callback that raises is logged by ``asyncio``);
- **no dead server**: a fresh ``GET /probe.txt`` gets 200 and the exact bytes;
- **no byte from outside ROOT**: the outside token, the outside file name and the
  dotfiles' content never appear in a response; a 200 or 206 body is a file under ROOT
  (or a range of one) or a directory listing; a ``Location`` is a local path;
- **well-formed HTTP/1.1**: every response parses (status line, field lines, Date,
  Server, one Content-Length except on 204/304), its status is in ``ALLOWED``, an error
  body is the standard page, the bytes end exactly after the last response, nothing
  follows a ``Connection: close`` response, 431/501/505 close the connection. The
  client half-closes after its last byte, so the server's EOF marks the end. Closing
  **without a byte** is accepted only when the client sent nothing, or when the server's
  kernel reset the connection (bytes that arrive after the server closed): a reset
  discards what the server had not sent yet, so then the last response may also be cut
  short (what the fixed bug tested at the end, with a request sent behind a closing
  response, could cause);
- **no hang**: every socket operation has a timeout and the whole exchange must end
  within ``EXAMPLE_SECONDS``.

After each loop's battery, ``test_no_descriptor_leaked`` compares the test process's
``/proc/self/fd`` count (the server runs in a thread of it) with the count taken after a
warm-up, both with the server's connections gone (lingering closes expired) and its
open-file cache emptied; ``test_access_log_lines`` checks that every access log line is
one well-formed record (no CR, LF or quote from a request gets through) with nothing from
outside ROOT.

The pure properties at the end check ``read_simple_head`` against h11 with mutation
strategies that ``test_simple_head.py`` does not use: span duplications and deletions of
browser-shaped heads, header-name case changes, whitespace variants, obs-fold, bare CR
and LF, and heads within a few bytes of the size limit.

Bugs the fuzzer found are fixed; each is kept at the end as a regression test.

CI runs a fixed number of examples with ``derandomize=True`` (the same inputs every run)
and a wall-time guard per test. ``ZEROHTTP_FUZZ=N`` multiplies the example counts by N,
draws fresh random inputs and lifts the guard, for longer runs by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import socket
import struct
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server
from helpers import open_fds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_simple_head import BROWSER, assert_agrees

from zerohttp.http.reader import head_of
from zerohttp.http.simple_head import read_simple_head

SCALE = int(os.environ.get("ZEROHTTP_FUZZ", "1") or "1")
DEEP = SCALE > 1

FUZZ = settings(
    deadline=None,
    derandomize=not DEEP,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def examples(count: int) -> settings:
    return settings(FUZZ, max_examples=count * SCALE)


# --- the site, and what must never leave it ------------------------------------------------

TOKEN = b"outside-token-" + secrets.token_hex(16).encode()
NAME_MARKER = b"zz-outside-name-marker"  # a file name outside ROOT: a listing must not show it
DOT_MARKER = b"dotfile-content-" + secrets.token_hex(8).encode()
PASSWD_MARKER = b"root:x:0:0:"
FOREIGN = (TOKEN, NAME_MARKER, DOT_MARKER, PASSWD_MARKER)
PROBE = b"probe " + secrets.token_hex(16).encode() + b"\n"

ALLOWED = frozenset({200, 204, 206, 304, 308, 400, 404, 405, 412, 416, 431, 501, 505})
BODILESS = frozenset({204, 304})

ROOT_FILES: dict[str, bytes] = {
    "probe.txt": PROBE,
    "index.html": b"<!doctype html><title>home</title>\n",
    "a.txt": b"alpha beta gamma delta\n" * 4,
    "a.txt.gz": b"\x1f\x8b\x08\x00pretend-gzip-bytes\n",
    "empty.txt": b"",
    "big.bin": bytes(range(256)) * 1024,  # 256 KiB: may not fit the socket at once
    "100%.txt": b"percent\n",
    "sp ace.txt": b"space\n",
    "\u00e9.txt": b"e acute\n",
    "sub/index.html": b"<p>sub index</p>\n",
    "sub/page.txt": b"nested page\n",
    "noindex/file.txt": b"no index here\n",
}


def make_fuzz_site(base: Path) -> Path:
    """``base/www`` is ROOT; ``base/www-private`` (same prefix) and ``base`` hold secrets."""
    root = base / "www"
    for name, data in ROOT_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / ".hidden").write_bytes(DOT_MARKER)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_bytes(DOT_MARKER)
    private = base / "www-private"
    private.mkdir()
    (private / "secret.txt").write_bytes(TOKEN)
    (private / "index.html").write_bytes(TOKEN)
    (private / NAME_MARKER.decode()).write_bytes(TOKEN)
    (base / "secret.txt").write_bytes(TOKEN)
    (base / "index.html").write_bytes(TOKEN)
    (root / "link-out.txt").symlink_to(private / "secret.txt")
    (root / "linkdir").symlink_to(private)
    (root / "link-hidden").symlink_to(root / ".hidden")
    return root


# --- the server under fuzz -----------------------------------------------------------------


class Records(logging.Handler):
    """Every record at WARNING or above, or with exc_info, from the watched loggers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._taken_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or record.exc_info:
            with self._taken_lock:
                self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        with self._taken_lock:
            taken, self.records = self.records, []
        return taken


def assert_no_traceback(records: Records) -> None:
    bad = [r for r in records.take() if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, "server logged: " + "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()}"
        + (f"\n{logging.Formatter().formatException(r.exc_info)}" if r.exc_info else "")
        for r in bad
    )


@dataclass
class Fuzzed:
    running: RunningServer
    records: Records
    baseline_fds: int
    access_log: Path
    examples: int = 0


def expire_lingering(state: Any) -> None:
    """On the loop thread: end every lingering close now, as its deadline would. Every
    client has closed by then, so a lingering close ends as soon as its EOF is read
    (``test_a_refused_connection_is_released_once_the_client_has_closed``); this only
    spares waiting for the ones whose EOF is still in flight."""
    for connection in list(state.connections):
        if connection.lingering:
            connection.on_deadline()


def settle(running: RunningServer) -> int:
    """Wait until the server holds no connection; empty its file cache; the fd count.

    Lingering closes are expired first; any other connection still open is a leak.
    """
    state = running.server.state
    running.call(expire_lingering, state)
    deadline = time.monotonic() + 5
    while running.call(lambda: len(state.connections)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.call(lambda: len(state.connections)) == 0, "connections left open"
    for handler in running.server.static_handlers:  # under whatever stack.py wraps them in
        if handler.cache is not None:
            running.call(handler.cache.clear)
    return open_fds()


# loop, body path, access log format (written to a file, checked by test_access_log_lines)
SERVERS = [("uvloop", "sendfile", "combined"), ("asyncio", "fallback", "json")]
MAX_HEADER_BYTES = 2048  # low enough for a few long fields to reach 431


@pytest.fixture(scope="module", params=SERVERS, ids=[f"{lp}-{bp}" for lp, bp, _ in SERVERS])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count descriptors")
    loop, body_path, access_log = request.param
    base = tmp_path_factory.mktemp("fuzz")
    root = make_fuzz_site(base)
    records = Records()
    watched = [logging.getLogger("zerohttp"), logging.getLogger("asyncio")]
    saved = [(lg.level, lg.propagate) for lg in watched]
    for lg in watched:
        lg.addHandler(records)
        lg.propagate = False
    watched[0].setLevel(logging.DEBUG)  # before start: the per-response log line runs too
    try:
        with start_server(
            root,
            loop,
            body_path,
            autoindex=True,
            max_header_bytes=MAX_HEADER_BYTES,
            access_log=access_log,
            access_log_file=str(base / "access.log"),
            metrics_port=0,  # counts every response in the stats
        ) as running:
            for target in ("/probe.txt", "/a.txt", "/", "/sub/", "/noindex/", "/nope"):
                send_and_read(running, [request_bytes(b"GET", target.encode())])
            assert_alive(running)
            fuzz = Fuzzed(running, records, settle(running), base / "access.log")
            yield fuzz
    finally:
        for lg, (level, propagate) in zip(watched, saved, strict=True):
            lg.removeHandler(records)
            lg.setLevel(level)
            lg.propagate = propagate


# --- a client that writes exact bytes and reads until the server closes ---------------------

IO_TIMEOUT = 3.0
EXAMPLE_SECONDS = 5.0


@dataclass
class Exchange:
    sent: bytes  # what the server received (as far as the client knows)
    received: bytes
    aborted: bool  # the client reset the connection itself, reading nothing
    reset: bool  # the server reset it: received may lack bytes the server wrote
    send_failed: bool  # a write failed: the server had closed before the client finished


def send_and_read(
    running: RunningServer,
    pieces: list[bytes],
    delays: list[float] | None = None,
    *,
    abort: bool = False,
) -> Exchange:
    """Write ``pieces`` (sleeping ``delays`` before each), half-close, read to EOF."""
    deadline = time.monotonic() + EXAMPLE_SECONDS
    sent = bytearray()
    received = bytearray()
    reset = send_failed = False
    with socket.create_connection((running.host, running.port), timeout=IO_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index, piece in enumerate(pieces):
            if delays and delays[index]:
                time.sleep(delays[index])
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                send_failed = True
                break
            sent += piece
        if abort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return Exchange(bytes(sent), b"", True, False, send_failed)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no EOF within {EXAMPLE_SECONDS}s; got {bytes(received[:300])!r}"
            sock.settimeout(min(left, IO_TIMEOUT))
            try:
                chunk = sock.recv(1 << 18)
            except ConnectionResetError:
                reset = True
                break
            except TimeoutError:
                raise AssertionError(
                    f"server hung: nothing for {IO_TIMEOUT}s after {bytes(received[:300])!r}"
                ) from None
            if not chunk:
                break
            received += chunk
    return Exchange(bytes(sent), bytes(received), False, reset, send_failed)


def request_bytes(
    method: bytes = b"GET",
    target: bytes = b"/probe.txt",
    version: bytes = b"HTTP/1.1",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> bytes:
    fields = [(b"Host", b"127.0.0.1")] if headers is None else headers
    head = method + b" " + target + b" " + version + b"\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    return head + b"\r\n"


def assert_alive(running: RunningServer) -> None:
    """A fresh, well-formed GET gets 200 and the exact bytes."""
    wire = request_bytes(headers=[(b"Host", b"x"), (b"Connection", b"close")])
    exchange = send_and_read(running, [wire])
    replies = parse_replies(exchange.received, may_be_head=False)
    assert [r.status for r in replies] == [200], exchange.received[:300]
    assert replies[0].body == PROBE


# --- reading the responses strictly ---------------------------------------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ([\x20-\x7e]*)")
_FIELD_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+): ([\x20-\x7e]*)")
_CONTENT_RANGE = re.compile(rb"bytes (\d+)-(\d+)/(\d+)")


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    cut: bool = False  # the server's reset destroyed the rest (see parse_replies)


def error_body(status: int) -> bytes:
    return f"{status} {HTTPStatus(status).phrase}\n".encode("ascii")


def parse_replies(data: bytes, *, may_be_head: bool, reset: bool = False) -> list[Reply]:
    """Split ``data`` into responses, asserting each is well-formed HTTP/1.1.

    A response to HEAD has the Content-Length of the GET but no body; when the request
    bytes contain ``HEAD``, a response followed by the end of the data or by another
    status line is taken as one.

    With ``reset`` (the server's kernel reset the connection, which discards whatever it
    had not sent yet), the last response may be cut short; ``Reply.cut`` says so. That
    happens when a response closes the connection and the client's next bytes arrive
    after the close (the fixed bug ``test_a_closing_response_survives_a_request_sent_behind_it``
    guards against, when the server closes without a lingering close).
    """
    replies: list[Reply] = []
    position = 0
    while position < len(data):
        assert not replies or replies[-1].headers.get(b"connection") != b"close", (
            f"bytes after a Connection: close response: {data[position : position + 200]!r}"
        )
        end = data.find(b"\r\n\r\n", position)
        if end < 0 and reset:
            break
        assert end >= 0, f"incomplete response head: {data[position : position + 300]!r}"
        lines = data[position:end].split(b"\r\n")
        if lines == [b"HTTP/1.1 100 Continue"]:  # interim, to Expect: 100-continue
            position = end + 4
            assert position < len(data), "100 Continue and no final response"
            continue
        status_line = _STATUS_LINE.fullmatch(lines[0])
        assert status_line, f"bad status line {lines[0]!r}"
        status = int(status_line.group(1))
        assert status in ALLOWED, f"status {status}: {data[position:end]!r}"
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            field_line = _FIELD_LINE.fullmatch(line)
            assert field_line, f"bad field line {line!r}"
            name = field_line.group(1).lower()
            assert name not in headers, f"{name!r} sent twice"
            headers[name] = field_line.group(2)
        assert b"date" in headers
        assert headers.get(b"server") == b"zerohttp"
        assert b"transfer-encoding" not in headers
        if status in (431, 501, 505):  # refused before reading: never kept open
            assert headers.get(b"connection") == b"close", headers
        position = end + 4
        if status in BODILESS:
            assert b"content-length" not in headers or status == 304
            replies.append(Reply(status, headers, b""))
            continue
        assert re.fullmatch(rb"\d+", headers.get(b"content-length", b"")), headers
        length = int(headers[b"content-length"])
        rest = data[position:]
        if may_be_head and length and (not rest or rest.startswith(b"HTTP/1.1 ")):
            body = b""
        else:
            if reset and len(rest) < length:
                replies.append(Reply(status, headers, rest, cut=True))
                break
            assert len(rest) >= length, f"body cut short: {len(rest)} of {length} bytes"
            body = rest[:length]
        position += len(body)
        replies.append(Reply(status, headers, body))
    return replies


def assert_from_root(reply: Reply) -> None:
    """What a response carries comes from ROOT, and a redirect stays on this server."""
    status, headers, body = reply.status, reply.headers, reply.body
    location = headers.get(b"location")
    if status == 308:
        assert location is not None and location.startswith(b"/"), headers
        assert not location.startswith((b"//", b"/\\")), f"open redirect: {location!r}"
    else:
        assert location is None
    if not body:
        return
    if status == 200:
        listing = (
            headers.get(b"content-type", b"").startswith(b"text/html")
            and headers.get(b"cache-control") == b"no-cache"
        )
        assert listing or any(same(data, reply) for data in ROOT_CONTENTS), (
            f"200 body from nowhere: {body[:200]!r}"
        )
    elif status == 206:
        if headers.get(b"content-type", b"").startswith(b"multipart/byteranges"):
            return
        match = _CONTENT_RANGE.fullmatch(headers.get(b"content-range", b""))
        assert match, headers
        first, last, size = (int(g) for g in match.groups())
        assert any(
            len(data) == size and same(data[first : last + 1], reply) for data in ROOT_CONTENTS
        ), f"206 body from nowhere: {body[:200]!r}"
    else:
        assert same(error_body(status), reply), f"{status} with body {body[:200]!r}"


def same(expected: bytes, reply: Reply) -> bool:
    """The reply's body is ``expected``, or its start when the rest was cut off."""
    return reply.body == expected or (reply.cut and expected.startswith(reply.body))


ROOT_CONTENTS = frozenset(ROOT_FILES.values())


def check_exchange(exchange: Exchange) -> list[Reply]:
    """The per-exchange properties: framing, statuses, provenance, no foreign bytes."""
    for marker in FOREIGN:
        assert marker not in exchange.received, f"{marker!r} leaked: {exchange.received[:500]!r}"
    if exchange.aborted:
        return []
    replies = parse_replies(
        exchange.received, may_be_head=b"HEAD" in exchange.sent, reset=exchange.reset
    )
    for reply in replies:
        assert_from_root(reply)
    if exchange.sent and not replies:
        # Only a server-side reset while the client was still writing may lose the answer.
        assert exchange.reset or exchange.send_failed, (
            f"closed without a response to {exchange.sent[:300]!r}"
        )
    return replies


class Budget:
    """A wall-time guard: once spent, further examples return at once (unless a failure
    is being shrunk, or ``ZEROHTTP_FUZZ`` asked for a long run)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.failing = False
        self.skipped = 0

    def spent(self) -> bool:
        if DEEP or self.failing or time.monotonic() < self.end:
            return False
        self.skipped += 1
        return True

    def report(self, what: str) -> None:
        if self.skipped:
            warnings.warn(f"{what}: time guard skipped {self.skipped} examples", stacklevel=2)


def run_example(fuzz: Fuzzed, budget: Budget, body: Callable[[], Any]) -> None:
    """One example: the exchange, then the server is alive and logged no traceback."""
    if budget.spent():
        return
    try:
        body()
        assert_alive(fuzz.running)
        assert_no_traceback(fuzz.records)
    except BaseException:
        budget.failing = True
        raise
    fuzz.examples += 1


# --- strategies: requests from parts, then mutations ----------------------------------------

GOOD_METHODS = [b"GET"] * 4 + [b"HEAD"] * 2 + [b"OPTIONS", b"POST"]
ODD_METHODS = [b"PUT", b"get", b"BREW", b"CONNECT", b"G\x00T", b""]
GOOD_VERSIONS = [b"HTTP/1.1"] * 3 + [b"HTTP/1.0"]
ODD_VERSIONS = [b"HTTP/0.9", b"HTTP/2.0", b"http/1.1", b"HTTP/1.10", b""]
KNOWN_TARGETS = [
    b"/probe.txt",
    b"/",
    b"/a.txt",
    b"/empty.txt",
    b"/big.bin",
    b"/sub",
    b"/sub/",
    b"/sub/page.txt",
    b"/noindex/",
    b"/missing",
    b"/100%25.txt",
    b"/sp%20ace.txt",
    b"/%C3%A9.txt",
    b"/.hidden",
    b"/.git/config",
    b"/link-out.txt",
    b"/linkdir/",
    b"/linkdir/secret.txt",
    b"/link-hidden",
    b"/a.txt?x=1",
    b"*",
    b"http://127.0.0.1/a.txt",
]
TRAVERSAL_PREFIXES = [
    b"/",
    b"",
    b"//",
    b"///",
    b"http://h",
    b"http://h/",
    b"HTTP://127.0.0.1:1",
    b"https://x",
    b"http://h?",
    b"http:/",
    b"http:",
    b"file:///",
    b"\\",
    b"/\\",
    b"/%5c",
    b"*",
    b"/sub/",
    b"/linkdir/",
]
TRAVERSAL_SEGMENTS = [
    b"..",
    b"..",
    b"..",
    b".",
    b"%2e%2e",
    b"%2E%2E",
    b".%2e",
    b"%2e.",
    b"%252e%252e",
    b"%c0%ae%c0%ae",
    b"%e0%80%ae%e0%80%ae",
    b"%c0%2e%c0%2e",
    b"\xc0\xae\xc0\xae",
    b"..\\..",
    b"...",
    b"..;",
    b"..%00",
    b"%00",
    b"\x00",
    b"",
    b"www-private",
    b"www",
    b"secret.txt",
    b"secret.txt%00.html",
    b"index.html",
    b"etc",
    b"passwd",
    b"sub",
    b"a.txt",
    b"linkdir",
    b"link-out.txt",
    b".git",
    b".hidden",
    b"config",
]
TRAVERSAL_SEPARATORS = [
    b"/",
    b"/",
    b"/",
    b"%2f",
    b"%2F",
    b"%5c",
    b"%5C",
    b"\\",
    b"//",
    b"/./",
    b"%c0%af",
    b"%e0%80%af",
    b"\xc0\xaf",
    b";/",
    b"%252f",
]
TRAVERSAL_SUFFIXES = [b"", b"", b"/", b"?", b"?x=../..", b"#frag", b"%", b"%2", b"%00", b";x"]


# The clean alphabet reaches files and directories (and 404s); the rest is rejected early.
CLEAN_PREFIXES = [b"/", b"/sub/", b"/linkdir/", b"//", b"http://h/", b"/noindex/"]
CLEAN_SEGMENTS = [
    b"..",
    b"..",
    b".",
    b"%2e%2e",
    b"%2E%2e",
    b".%2e",
    b"www-private",
    b"secret.txt",
    b"index.html",
    b"sub",
    b"a.txt",
    b"probe.txt",
    b"linkdir",
    b"link-out.txt",
    b"etc",
    b"passwd",
    b"www",
    b"",
]
CLEAN_SEPARATORS = [b"/", b"/", b"%2f", b"//", b"/./"]
CLEAN_SUFFIXES = [b"", b"/", b"?x=../..", b"?"]


@st.composite
def traversal_targets(draw: st.DrawFn) -> bytes:
    clean = draw(st.booleans())
    segments = draw(
        st.lists(
            st.sampled_from(CLEAN_SEGMENTS if clean else TRAVERSAL_SEGMENTS),
            min_size=1,
            max_size=7,
        )
    )
    target = draw(st.sampled_from(CLEAN_PREFIXES if clean else TRAVERSAL_PREFIXES))
    separators = st.sampled_from(CLEAN_SEPARATORS if clean else TRAVERSAL_SEPARATORS)
    for index, segment in enumerate(segments):
        if index:
            target += draw(separators)
        target += segment
    return target + draw(st.sampled_from(CLEAN_SUFFIXES if clean else TRAVERSAL_SUFFIXES))


GOOD_FIELDS = [
    (b"Range", b"bytes=0-0"),
    (b"Range", b"bytes=-5"),
    (b"Range", b"bytes=3-"),
    (b"Range", b"bytes=0-1,4-5"),
    (b"Range", b"bytes=99999999-"),
    (b"Range", b"bytes=5-1"),
    (b"Range", b"items=0-1"),
    (b"Range", b"bytes=" + b"0-0," * 40 + b"1-1"),
    (b"If-None-Match", b"*"),
    (b"If-None-Match", b'"x", W/"y"'),
    (b"If-Match", b'"nope"'),
    (b"If-Match", b"*"),
    (b"If-Modified-Since", b"Sun, 06 Nov 2094 08:49:37 GMT"),
    (b"If-Modified-Since", b"garbage"),
    (b"If-Unmodified-Since", b"Sun, 06 Nov 1994 08:49:37 GMT"),
    (b"If-Range", b'"x"'),
    (b"Accept-Encoding", b"gzip"),
    (b"Accept-Encoding", b"br;q=1, gzip;q=0.5, *;q=0"),
    (b"Accept-Encoding", b"gzip;q=nan, identity;q=0"),
    (b"Connection", b"close"),
    (b"Connection", b"keep-alive"),
    (b"Connection", b"Upgrade, HTTP2-Settings"),
    (b"Upgrade", b"h2c"),
    (b"Content-Length", b"0"),
    (b"Content-Length", b"5"),
    (b"Transfer-Encoding", b"chunked"),
    (b"Expect", b"100-continue"),
    (b"User-Agent", b"fuzz/1.0 (\xc3\xa9)"),
]
ODD_FIELDS = [
    (b"Content-Length", b"-1"),
    (b"Content-Length", b"99999999999999999999"),
    (b"Content-Length", b"1, 1"),
    (b"Transfer-Encoding", b"gzip"),
    (b"Transfer-Encoding", b"chunked, chunked"),
    (b"Host", b"other.example"),
    (b"Host", b""),
    (b"X Space", b"v"),
]


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws, and False when shrunk (hypothesis favours the first
    element of a sampled_from and the bounds of st.integers)."""
    return st.sampled_from([False] * (n - 1) + [True])


any_fields = st.tuples(st.binary(min_size=1, max_size=8), st.binary(max_size=16))


def body_for(fields: list[tuple[bytes, bytes]]) -> bytes:
    """The body the framing fields announce (the last of each, as a server would read it)."""
    framing = {name.lower(): value for name, value in fields}
    if framing.get(b"transfer-encoding") == b"chunked":
        return b"5\r\nhello\r\n0\r\n\r\n"
    length = framing.get(b"content-length", b"0")
    return b"x" * int(length) if length.isdigit() and int(length) < 100 else b""


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """One request from parts. Two in three are well-formed; the odd third draws from
    odd methods, versions and fields too, may lack Host, repeat a field or carry stray
    bytes."""
    odd = draw(one_in(3))

    def part(good: list[Any], bad: list[Any]) -> Any:
        return draw(st.sampled_from(good + bad if odd else good))

    fields = [
        draw(any_fields) if odd and draw(one_in(4)) else part(GOOD_FIELDS, ODD_FIELDS)
        for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3])))
    ]
    if draw(one_in(8)):  # a head around MAX_HEADER_BYTES: read, or 431
        filler = draw(st.sampled_from(range(MAX_HEADER_BYTES - 150, MAX_HEADER_BYTES + 50, 5)))
        fields.append((b"X-Fill", b"f" * filler))
    if not (odd and draw(one_in(3))):
        fields.insert(draw(st.integers(0, len(fields))), (b"Host", b"127.0.0.1"))
    if odd and draw(one_in(2)):
        fields.append(fields[draw(st.integers(0, len(fields) - 1))] if fields else (b"", b""))
    version = part(GOOD_VERSIONS, ODD_VERSIONS)
    target = draw(traversal_targets() if draw(one_in(4)) else st.sampled_from(KNOWN_TARGETS))
    line = part(GOOD_METHODS, ODD_METHODS) + b" " + target + (b" " + version if version else b"")
    head = line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in fields) + b"\r\n"
    stray = draw(st.sampled_from([b"hello", b"0\r\n\r\n", b"\r\n", b"zz\r\n"]))
    return head + body_for(fields) + (stray if odd and draw(one_in(3)) else b"")


FRAGMENTS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b"\x00",
    b" ",
    b"\t",
    b"\r\n ",
    b":",
    b"..",
    b"../",
    b"%2e",
    b"%2f",
    b"%5c",
    b"\\",
    b"%00",
    b"\xc0\xae",
    b"\xff",
    b"HTTP/1.1",
    b"Host: x\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
]


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with up to three byte-level mutations."""
    buffer = bytearray(data)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["flip", "insert", "fragment", "delete", "duplicate", "cut"]))
        at = draw(st.integers(0, len(buffer)))
        if kind == "flip" and buffer:
            buffer[min(at, len(buffer) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif kind == "fragment":
            buffer[at:at] = draw(st.sampled_from(FRAGMENTS))
        elif kind == "delete":
            del buffer[at : at + draw(st.integers(1, 8))]
        elif kind == "duplicate":
            start = draw(st.integers(0, len(buffer)))
            buffer[at:at] = buffer[start : start + draw(st.integers(1, 24))]
        elif kind == "cut" and draw(one_in(4)):
            del buffer[at:]
    return bytes(buffer)


@st.composite
def deliveries(draw: st.DrawFn, data: bytes) -> tuple[list[bytes], list[float]]:
    """``data`` split into up to five writes, each after a delay of up to 20 ms."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    bounds = [0, *cuts, len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds) if b > a] or [b""]
    delays = [draw(st.sampled_from([0.0, 0.0, 0.001, 0.005, 0.02])) for _ in pieces]
    delays[0] = 0.0
    return pieces, delays


@st.composite
def fuzz_inputs(draw: st.DrawFn) -> tuple[list[bytes], list[float], bool]:
    """1-3 requests pipelined, mutated, delivered in pieces; rarely reset by the client."""
    batch = b"".join(draw(st.lists(requests(), min_size=1, max_size=3)))
    data = draw(mutations(batch))
    pieces, delays = draw(deliveries(data))
    return pieces, delays, draw(one_in(16))


# --- the socket properties ------------------------------------------------------------------


def test_mutated_requests(fuzzed: Fuzzed) -> None:
    budget = Budget(8)

    seen: Counter[str] = Counter()

    @examples(220)
    @given(fuzz_inputs())
    def run(case: tuple[list[bytes], list[float], bool]) -> None:
        pieces, delays, abort = case

        def body() -> None:
            exchange = send_and_read(fuzzed.running, pieces, delays, abort=abort)
            replies = check_exchange(exchange)
            seen.update(str(reply.status) for reply in replies)
            seen["aborted" if abort else "silent" if not replies else "answered"] += 1
            seen.update(["reset"] * exchange.reset + ["send failed"] * exchange.send_failed)

        run_example(fuzzed, budget, body)

    run()
    budget.report("mutated requests")
    print(f"mutated requests, {fuzzed.running.loop_name}: {sorted(seen.items())}")
    statuses = {key for key in seen if key.isdigit()}
    assert {"200", "400", "404"} <= statuses and len(statuses) >= 7, seen  # reached


def test_traversal_targets(fuzzed: Fuzzed) -> None:
    """Single well-framed requests whose target tries to climb out of ROOT."""
    budget = Budget(4)
    answered: list[int] = []

    @examples(120)
    @given(traversal_targets(), st.sampled_from([b"GET", b"HEAD"]), st.booleans())
    def run(target: bytes, method: bytes, whole: bool) -> None:
        wire = request_bytes(method, target, headers=[(b"Host", b"x"), (b"Connection", b"close")])
        pieces = [wire] if whole else [wire[:7], wire[7:]]

        def body() -> None:
            replies = check_exchange(send_and_read(fuzzed.running, pieces, [0.0, 0.002]))
            assert len(replies) == 1, replies
            answered.append(replies[0].status)

        run_example(fuzzed, budget, body)

    run()
    budget.report("traversal targets")
    assert answered.count(400) > 10 and answered.count(404) > 5, answered  # both reached


def test_random_bytes(fuzzed: Fuzzed) -> None:
    """Bytes with no HTTP shape at all, alone or in front of or behind a valid request."""
    budget = Budget(2)
    valid = request_bytes()

    @examples(60)
    @given(st.binary(max_size=300), st.sampled_from(["alone", "before", "after"]))
    def run(noise: bytes, where: str) -> None:
        data = {"alone": noise, "before": noise + valid, "after": valid + noise}[where]
        run_example(fuzzed, budget, lambda: check_exchange(send_and_read(fuzzed.running, [data])))

    run()
    budget.report("random bytes")


def test_no_descriptor_leaked(fuzzed: Fuzzed) -> None:
    """After the battery (the tests above, for this server), the fd count is back."""
    assert_alive(fuzzed.running)
    deadline = time.monotonic() + 3
    while (count := settle(fuzzed.running)) != fuzzed.baseline_fds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count == fuzzed.baseline_fds, (
        f"{count} descriptors open after {fuzzed.examples} examples, {fuzzed.baseline_fds} before"
    )
    assert_no_traceback(fuzzed.records)


_ESCAPED = rb'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\x[0-9A-F]{2})*"'  # no bare " or \\
# The remote address is "-" for a client that reset the connection before it was made
# (getpeername() then fails, and uvloop reports no peer): nothing else knows it.
_COMBINED = re.compile(
    rb"(?:[0-9.]+|-) - - \[[^\]]+\] %s \d{3} (?:\d+|-) %s %s" % (_ESCAPED, _ESCAPED, _ESCAPED)
)


def test_access_log_lines(fuzzed: Fuzzed) -> None:
    """Whatever the requests held, the access log has one well-formed line per response
    (no CR, LF or quote injected) and nothing from outside ROOT."""
    access_log = fuzzed.running.server.access_log
    assert access_log is not None
    asyncio.run_coroutine_threadsafe(access_log.flush(), fuzzed.running.loop).result(5)
    lines = fuzzed.access_log.read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert len(lines) >= fuzzed.examples  # a liveness probe at least, per example
    for line in lines:
        assert not any(marker in line for marker in FOREIGN), line
        if fuzzed.running.loop_name == "uvloop":  # combined
            assert _COMBINED.fullmatch(line), line
        else:
            record = json.loads(line)
            assert record["status"] in ALLOWED | {100}, record
    assert_no_traceback(fuzzed.records)


# --- pure: read_simple_head declines or agrees with h11, under other mutations --------------

CHROME = (
    b"GET /assets/app.css HTTP/1.1\r\n"
    b"Host: localhost:8000\r\n"
    b"Connection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="120", "Not?A_Brand";v="8"\r\n'
    b"sec-ch-ua-mobile: ?0\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36\r\n"
    b"Accept: text/css,*/*;q=0.1\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Referer: http://localhost:8000/\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"If-Modified-Since: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
    b"\r\n"
)
CURL = b"HEAD /a.txt HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
HEADS = [BROWSER, CHROME, CURL]
heads = st.sampled_from(HEADS)


def lines_of(head: bytes) -> list[bytes]:
    """The request line and field lines of a well-formed head, without line ends."""
    assert head.endswith(b"\r\n\r\n")
    return head[:-4].split(b"\r\n")


def join_lines(lines: list[bytes], tail: bytes = b"") -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + tail


class Reach:
    """Counts how often read_simple_head accepted, so a strategy cannot silently only
    exercise the declining branch."""

    def __init__(self) -> None:
        self.accepted = self.total = 0

    def check(self, buffer: bytes, limit: int = 16384) -> bool:
        self.total += 1
        if assert_agrees(buffer, limit) is None:
            return False
        self.accepted += 1
        return True


@st.composite
def span_mutations(draw: st.DrawFn) -> bytes:
    """Whole spans duplicated, deleted, moved or swapped, and lines repeated or dropped."""
    buffer = bytearray(draw(heads))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["duplicate", "delete", "move", "swap", "line"]))
        a = draw(st.integers(0, len(buffer)))
        b = draw(st.integers(0, len(buffer)))
        span = buffer[a : a + draw(st.integers(1, 40))]
        if kind == "duplicate":
            buffer[b:b] = span
        elif kind == "delete":
            del buffer[a : a + len(span)]
        elif kind == "move":
            del buffer[a : a + len(span)]
            b = min(b, len(buffer))
            buffer[b:b] = span
        elif kind == "swap" and a + len(span) <= b:
            other = buffer[b : b + len(span)]
            buffer[b : b + len(other)] = span
            buffer[a : a + len(span)] = other
        elif kind == "line":
            lines = lines_of(bytes(buffer)) if bytes(buffer).endswith(b"\r\n\r\n") else None
            if lines and len(lines) > 1:
                index = draw(st.integers(1, len(lines) - 1))
                if draw(st.booleans()):
                    lines.insert(draw(st.integers(1, len(lines))), lines[index])
                else:
                    del lines[index]
                buffer = bytearray(join_lines(lines))
    return bytes(buffer)


def test_span_mutations_are_declined_or_agree() -> None:
    reach = Reach()

    @examples(800)
    @given(span_mutations())
    def run(buffer: bytes) -> None:
        reach.check(buffer)

    run()
    assert reach.accepted > 50, (reach.accepted, reach.total)


@st.composite
def case_changes(draw: st.DrawFn) -> bytes:
    """Every field name in random case, with Host or a framing field sometimes added."""
    lines = lines_of(draw(heads))
    extra = draw(
        st.sampled_from([b""] * 5 + [b"host: again", b"content-length: 0", b"expect: 100-continue"])
    )
    if extra:
        lines.insert(draw(st.integers(1, len(lines))), extra)
    changed = [lines[0]]
    for line in lines[1:]:
        name, colon, rest = line.partition(b":")
        flips = draw(st.integers(0, (1 << len(name)) - 1))
        name = bytes(
            c ^ 0x20 if flips >> i & 1 and chr(c).isalpha() else c for i, c in enumerate(name)
        )
        changed.append(name + colon + rest)
    return join_lines(changed)


def test_field_name_case_is_declined_or_agrees() -> None:
    reach = Reach()

    @examples(300)
    @given(case_changes())
    def run(buffer: bytes) -> None:
        reach.check(buffer)

    run()
    assert reach.accepted > 100, (reach.accepted, reach.total)


WHITESPACE = [b" ", b"\t", b"  ", b" \t", b"", b"\x0b", b"\x0c", b"\xa0", b"\x00", b"\r", b"\n"]


@st.composite
def whitespace_variants(draw: st.DrawFn) -> bytes:
    """Other whitespace where the head has (or could have) some: between the request-line
    parts, around the colon, at either end of a value, at the start of a line."""
    lines = lines_of(draw(heads))
    ws = st.sampled_from(WHITESPACE)
    method, target, version = lines[0].split(b" ")
    lines[0] = draw(ws) * draw(st.integers(0, 1)) + method
    lines[0] += (draw(ws) or b" ") if draw(st.booleans()) else b" "
    lines[0] += target + ((draw(ws) or b" ") if draw(st.booleans()) else b" ") + version
    if draw(one_in(4)):
        lines[0] += draw(ws)
    for index in draw(st.lists(st.integers(1, len(lines) - 1), max_size=3)):
        name, _, value = lines[index].partition(b":")
        value = value.strip(b" \t")
        where = draw(st.sampled_from(["before-colon", "after-colon", "end", "start", "inside"]))
        space = draw(ws)
        if where == "before-colon":
            lines[index] = name + space + b":" + b" " + value
        elif where == "after-colon":
            lines[index] = name + b":" + space + value
        elif where == "end":
            lines[index] = name + b": " + value + space
        elif where == "start":
            lines[index] = space + name + b": " + value
        else:
            middle = len(value) // 2
            lines[index] = name + b": " + value[:middle] + space + value[middle:]
    return join_lines(lines)


def test_whitespace_variants_are_declined_or_agree() -> None:
    reach = Reach()

    @examples(500)
    @given(whitespace_variants())
    def run(buffer: bytes) -> None:
        reach.check(buffer)

    run()
    assert reach.accepted > 10, (reach.accepted, reach.total)


@st.composite
def obs_folds(draw: st.DrawFn) -> bytes:
    """A continuation line (obs-fold, RFC 9112 §5.2) after one or more field lines."""
    lines = lines_of(draw(heads))
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(1, len(lines)))
        fold = draw(st.sampled_from([b" ", b"\t", b"  ", b" \t"]))
        lines.insert(at, fold + draw(st.sampled_from([b"more", b"", b"x: y", b"Host: z"])))
    return join_lines(lines)


def test_obs_fold_is_declined() -> None:
    @examples(200)
    @given(obs_folds())
    def run(buffer: bytes) -> None:
        assert_agrees(buffer)
        if not buffer.startswith(b" ") and b"\r\n \r\n" not in buffer:
            assert read_simple_head(buffer, 16384) is None, buffer

    run()


@st.composite
def bare_line_ends(draw: st.DrawFn) -> bytes:
    """Some CRLFs replaced by a bare CR, a bare LF, LF CR or CR CR LF; or one inserted."""
    head = draw(heads)
    parts = head.split(b"\r\n")
    ends = st.sampled_from([b"\r\n"] * 12 + [b"\r", b"\n", b"\n\r", b"\r\r\n"])
    out = parts[0]
    for part in parts[1:]:
        out += draw(ends) + part
    if draw(one_in(3)):
        at = draw(st.integers(0, len(out)))
        out = out[:at] + draw(st.sampled_from([b"\r", b"\n"])) + out[at:]
    return out


def test_bare_cr_and_lf_are_declined_or_agree() -> None:
    reach = Reach()

    @examples(400)
    @given(bare_line_ends())
    def run(buffer: bytes) -> None:
        reach.check(buffer)
        if read_simple_head(buffer, 16384) is not None:
            end = buffer.index(b"\r\n\r\n")
            assert b"\n" not in buffer[:end].replace(b"\r\n", b"")
            assert b"\r" not in buffer[:end].replace(b"\r\n", b"")

    run()
    assert reach.accepted > 10, (reach.accepted, reach.total)


@st.composite
def heads_near_the_limit(draw: st.DrawFn) -> tuple[bytes, int]:
    """A well-formed head within a few bytes of ``limit``: one long value, a long target,
    or many short fields; written with or without the space after each colon."""
    limit = draw(st.integers(1024, 16384))
    size = limit + draw(st.integers(-6, 6))
    separator = draw(st.sampled_from([b": ", b":"]))
    shape = draw(st.sampled_from(["value", "target", "fields"]))
    line = b"GET /" + (b"t" * 4096 if shape == "target" else b"") + b" HTTP/1.1"
    fields = [b"Host" + separator + b"x"]
    if shape == "fields":
        used = len(line) + len(fields[0]) + 6
        while used + 40 < size:
            fields.append(b"f%d" % len(fields) + separator + b"v")
            used += len(fields[-1]) + 2
    head = join_lines([line, *fields])
    if shape == "target":
        line = b"GET /" + b"t" * max(0, size - len(head) + 4096) + b" HTTP/1.1"
        head = join_lines([line, *fields])
    else:
        fields.append(b"X-Fill" + separator + b"v" * max(0, size - len(head) - 8 - len(separator)))
        head = join_lines([line, *fields])
    return head + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n"])), limit


def test_heads_near_the_limit_are_declined_or_agree() -> None:
    """Read if and only if the whole head (final CRLF included) fits the limit."""

    @examples(300)
    @given(heads_near_the_limit())
    def run(case: tuple[bytes, int]) -> None:
        buffer, limit = case
        head_length = buffer.index(b"\r\n\r\n") + 4
        assert (assert_agrees(buffer, limit) is not None) == (head_length <= limit)

    run()


# --- bugs the fuzzer found (fixed; kept as regression tests) ---------------------------


def exact_size_head(limit: int) -> bytes:
    """A head of exactly ``limit`` bytes whose one field has no space after the colon."""
    head = b"GET / HTTP/1.1\r\nHost:" + b"\r\n\r\n"
    return head[:-4] + b"x" * (limit - len(head)) + b"\r\n\r\n"


def test_a_head_that_fits_max_header_bytes_is_not_431(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_bytes(PROBE)
    head = exact_size_head(1024)
    assert len(head) == 1024
    parsed = read_simple_head(head, 1024)
    assert parsed is not None  # the reader took it: it fits
    request = parsed[0]
    with start_server(tmp_path, max_header_bytes=1024) as running:
        replies = parse_replies(send_and_read(running, [head]).received, may_be_head=False)
    assert [r.status for r in replies] == [200]
    assert head_of(b"GET", b"/", b"1.1", request.headers, 1024).refusal is None


def test_a_refused_connection_is_released_once_the_client_has_closed(tmp_path: Path) -> None:
    (tmp_path / "probe.txt").write_bytes(PROBE)
    with start_server(tmp_path, "uvloop") as running:
        exchange = send_and_read(running, [b"GET /probe.txt HTTP/1.1\r\nHost: x"])
        assert [r.status for r in parse_replies(exchange.received, may_be_head=False)] == [400]
        state = running.server.state
        deadline = time.monotonic() + 1.0
        while running.call(lambda: len(state.connections)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.call(lambda: len(state.connections)) == 0, "still lingering after 1 s"


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_closing_response_survives_a_request_sent_behind_it(tmp_path: Path, loop: str) -> None:
    big = bytes(range(256)) * 1024  # more than the client's receive window holds
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "probe.txt").write_bytes(PROBE)
    pieces = [
        b"GET /big.bin HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET /probe.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    with start_server(tmp_path, loop) as running:
        exchange = send_and_read(running, pieces, [0.0, 0.01])
    assert not exchange.reset, f"reset after {len(exchange.received)} bytes"
    replies = parse_replies(exchange.received, may_be_head=False)
    assert [(r.status, r.body == big) for r in replies] == [(200, True)]


def test_h11_reads_what_the_exact_size_head_says() -> None:
    """Guards the fixed case above: h11 and the reader agree on it; only the size differs."""
    head = exact_size_head(1024)
    assert assert_agrees(head, 1024) is not None
