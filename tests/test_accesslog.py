"""The access log: each format rendered and parsed back (unit and property tests), and end
to end over TCP: lines per response with the right bytes and body path, flushed within a
second and at shutdown, and a log that cannot be written never stops the server."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import start_server
from hypothesis import example, given
from hypothesis import strategies as st

from zerohttp.http import accesslog
from zerohttp.http.accesslog import AccessRecord, json_line
from zerohttp.http.proxy import ProxyHeaders
from zerohttp.http.responselog import ResponseLog
from zerohttp.http.stats import Stats
from zerohttp.message.response import RequestHead


def format_common(rec: AccessRecord) -> str:
    return accesslog.common_line(rec).decode("ascii")  # ASCII by construction


def format_combined(rec: AccessRecord) -> str:
    return accesslog.combined_line(rec).decode("ascii")


def clf_time(when: float) -> str:
    return accesslog.clf_time(when).decode("ascii")


CLF = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+|-)(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?$'
)


def record(**changes: Any) -> AccessRecord:
    base = AccessRecord(
        "127.0.0.1",
        1767225600.25,  # 2026-01-01T00:00:00.250Z
        b"GET",
        b"/a%20b?x=1",
        b"1.1",
        200,
        1024,
        0.0125,
        b"http://example.test/",
        b"curl/8.0",
        "sendfile",
    )
    return base._replace(**changes)


def test_common_and_combined() -> None:
    when = clf_time(1767225600.25)
    assert format_common(record()) == (f'127.0.0.1 - - {when} "GET /a%20b?x=1 HTTP/1.1" 200 1024')
    assert format_combined(record(bytes_sent=0, referer=None, protocol=b"1.0")) == (
        f'127.0.0.1 - - {when} "GET /a%20b?x=1 HTTP/1.0" 200 - "-" "curl/8.0"'
    )
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", when)


def test_a_request_that_never_parsed_is_a_dash() -> None:
    line = format_common(record(method=b"", target=b"", protocol=b"", status=400))
    assert '"-" 400' in line


def test_quotes_backslashes_and_control_bytes_are_escaped() -> None:
    line = format_combined(record(target=b'/"x"\\\r\n', user_agent=b"a\xffb"))
    assert '"GET /\\x22x\\x22\\x5C\\x0D\\x0A HTTP/1.1"' in line
    assert line.endswith('"a\\xFFb"')


def test_json_fields() -> None:
    fields = json.loads(json_line(record(referer=None)))
    assert fields == {
        "remote_addr": "127.0.0.1",
        "time": "2026-01-01T00:00:00.250Z",
        "method": "GET",
        "path": "/a%20b?x=1",
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes_sent": 1024,
        "duration_ms": 12.5,
        "referer": None,
        "user_agent": "curl/8.0",
        "body_path": "sendfile",
    }


@given(
    target=st.binary(max_size=200),
    agent=st.one_of(st.none(), st.binary(max_size=100)),
    referer=st.one_of(st.none(), st.binary(max_size=100)),
    status=st.integers(100, 599),
    size=st.integers(0, 2**40),
)
def test_any_request_is_one_parseable_line(
    target: bytes, agent: bytes | None, referer: bytes | None, status: int, size: int
) -> None:
    rec = record(target=target, user_agent=agent, referer=referer, status=status, bytes_sent=size)
    line = format_combined(rec)
    assert "\n" not in line and line.isprintable() and line.isascii()
    match = CLF.match(line)
    assert match, line
    assert int(match["status"]) == status
    assert match["bytes"] == (str(size) if size else "-")
    unescaped = re.sub(r"\\x([0-9A-F]{2})", lambda m: chr(int(m[1], 16)), match["request"])
    assert unescaped.encode("latin-1") == b"GET " + target + b" HTTP/1.1"
    parsed = json.loads(json_line(rec))
    assert parsed["path"].encode("latin-1") == target
    assert (parsed["status"], parsed["bytes_sent"]) == (status, size)
    for key, value in (("user_agent", agent), ("referer", referer)):
        assert parsed[key] == (value.decode("latin-1") if value else None)


WHEN = 1767225600.25
PLAIN = RequestHead(  # what record() describes
    b"GET", b"/a%20b?x=1", b"1.1",
    ((b"referer", b"http://example.test/"), (b"user-agent", b"curl/8.0")),
)  # fmt: skip


def buffered(log: accesslog.AccessLog) -> bytes:
    """What the log holds for its next write (pending lines formatted first)."""
    log._format()
    return bytes(log._buffer)


CLIENTS = ("127.0.0.1", "10.0.0.7")


def fixed_clock(mp: pytest.MonkeyPatch, perf: float = 5.0) -> None:
    """``time.time()`` is WHEN and ``time.perf_counter()`` is ``perf``, for the log only."""
    clock = SimpleNamespace(
        time=lambda: WHEN, perf_counter=lambda: perf, strftime=time.strftime,
        localtime=time.localtime, gmtime=time.gmtime,
    )  # fmt: skip
    mp.setattr(accesslog, "time", clock)


PRINTABLE = st.from_regex(rb"[ -~]{0,40}", fullmatch=True)  # mostly needs no escaping


@given(
    target=st.one_of(st.binary(max_size=100), PRINTABLE),
    agent=st.one_of(st.none(), st.binary(max_size=60), PRINTABLE),
    referer=st.one_of(st.none(), st.binary(max_size=60), PRINTABLE),
    status=st.integers(100, 599),
    size=st.integers(0, 2**40),
    clients=st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=6),
)
@example(target=b"/x", agent=b"ok", referer=b'a"b', status=200, size=1, clients=["::1"])
@example(target=b"/x", agent=b"\\", referer=b"", status=304, size=0, clients=["::1", "::1"])
def test_respond_buffers_what_the_line_functions_write(
    target: bytes,
    agent: bytes | None,
    referer: bytes | None,
    status: int,
    size: int,
    clients: list[str],
) -> None:
    """The per-response path (fields kept, lines formatted in batches, a cached client
    and stamp) against the line functions over an AccessRecord: the same bytes, in
    order, client after client, the generated request between plain ones."""
    headers = [(b"host", b"a.test")]
    if agent is not None:
        headers.append((b"user-agent", agent))
    if referer is not None:
        headers.append((b"referer", referer))
    request = RequestHead(b"GET", target, b"1.1", tuple(headers))
    with pytest.MonkeyPatch.context() as mp:
        fixed_clock(mp, perf=5.0)
        for form in ("common", "combined", "json"):
            log = accesslog.AccessLog(form)  # type: ignore[arg-type]
            expected = []
            for i, client in enumerate(clients):
                if i % 2:  # a plain request between the generated ones
                    log.respond(client, PLAIN, 200, "sendfile", 1024, 5.0 - 0.0125)
                    expected.append(log.line(record(remote_addr=client, time=WHEN)))
                log.respond(client, request, status, "fallback", size, 5.0 - 0.0125)
                rec = record(
                    remote_addr=client, time=WHEN, target=target, status=status,
                    bytes_sent=size, referer=referer, user_agent=agent, body_path="fallback",
                )  # fmt: skip
                expected.append(log.line(rec))
            log.respond(clients[0], None, 400, "memory", 0, 5.0 - 0.0125)  # refused unparsed
            refused = record(
                remote_addr=clients[0], time=WHEN, method=b"", target=b"", protocol=b"",
                status=400, bytes_sent=0, referer=None, user_agent=None, body_path="memory",
            )  # fmt: skip
            expected.append(log.line(refused))
            assert buffered(log) == b"".join(line + b"\n" for line in expected), form


def test_the_stamp_follows_the_clock() -> None:
    log = accesslog.AccessLog("common")
    request = RequestHead(b"GET", b"/", b"1.1", ())
    with pytest.MonkeyPatch.context() as mp:
        for when in (WHEN, WHEN + 0.5, WHEN + 1.0, WHEN + 3600.2):
            clock = SimpleNamespace(time=lambda when=when: when, strftime=time.strftime,
                                    localtime=time.localtime)  # fmt: skip
            mp.setattr(accesslog, "time", clock)
            log.respond("127.0.0.1", request, 200, "memory", 1, 0.0)
    stamps = [line.split(b" ")[3] for line in buffered(log).splitlines()]
    assert [s.decode() for s in stamps] == [
        clf_time(when).split(" ")[0] for when in (WHEN, WHEN + 0.5, WHEN + 1.0, WHEN + 3600.2)
    ]
    assert stamps[0] == stamps[1] != stamps[2] != stamps[3]


def test_a_stuck_writer_drops_lines_beyond_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accesslog, "MAX_BUFFERED_BYTES", 1000)
    monkeypatch.setattr(accesslog, "BATCH", 4)
    for form in ("combined", "json"):
        log = accesslog.AccessLog(form)  # type: ignore[arg-type]
        request = RequestHead(b"GET", b"/x", b"1.1", ())
        for _ in range(100):
            log.respond("127.0.0.1", request, 200, "memory", 1, 0.0)
        held = buffered(log)
        line = len(held.splitlines(keepends=True)[0])
        assert held.count(b"\n") * line == len(held)  # whole lines
        assert 1000 <= len(held) < 1000 + 4 * line  # up to the limit (a batch past it)


def test_report_is_the_log_itself_only_when_nothing_else_reports() -> None:
    log = accesslog.AccessLog("json")
    alone = ResponseLog(log, None)
    assert alone.report == log.respond
    with_stats = ResponseLog(log, Stats())
    assert with_stats.report == with_stats.response
    behind_proxy = ResponseLog(log, None, ProxyHeaders(["*"]))
    assert behind_proxy.report == behind_proxy.response
    request = RequestHead(b"GET", b"/a", b"1.1", ((b"user-agent", b"x"),))
    with pytest.MonkeyPatch.context() as mp:
        fixed_clock(mp)
        alone.report("127.0.0.1", request, 200, "sendfile", 7, 4.5)
        first = buffered(log)
        log._buffer.clear()
        with_stats.report("127.0.0.1", request, 200, "sendfile", 7, 4.5)
    assert buffered(log) == first
    assert json.loads(first)["duration_ms"] == 500.0


def fetch(port: int, requests: list[tuple[str, str, dict[str, str]]]) -> list[tuple[int, int]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seen = []
    for method, path, headers in requests:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        seen.append((response.status, len(response.read())))
    connection.close()
    return seen


def refused(port: int) -> tuple[int, int]:
    """``BROKEN``, refused by h11 with 400 before any request is parsed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"BROKEN\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), len(body)


REQUESTS = [
    ("GET", "/kib.bin", {"Referer": "http://ref.test/", "User-Agent": "tester/1"}),
    ("HEAD", "/kib.bin", {}),
    ("GET", "/missing", {}),
    ("GET", "/ten-mib.bin", {"Range": "bytes=0-99"}),
    ("GET", "/ten-mib.bin", {}),
]


@pytest.mark.parametrize("body_path", ["sendfile", "fallback"])
@pytest.mark.parametrize("form", ["common", "combined", "json"])
def test_lines_match_the_traffic(site: Path, tmp_path: Path, form: str, body_path: str) -> None:
    log = tmp_path / "access.log"
    with start_server(
        site, "uvloop", body_path, access_log=form, access_log_file=str(log)
    ) as server:
        began = time.perf_counter()
        seen = fetch(server.port, REQUESTS)
        seen.append(refused(server.port))  # a head h11 refuses: it has no parsed request
        elapsed_ms = (time.perf_counter() - began) * 1000
    lines = log.read_text().splitlines()
    assert len(lines) == len(REQUESTS) + 1
    requests = [*REQUESTS, ("", "", {})]
    for (method, path, headers), (status, length), line in zip(requests, seen, lines, strict=True):
        if form == "json":
            fields = json.loads(line)
            assert (fields["method"], fields["path"], fields["protocol"]) == (
                method,
                path,
                "HTTP/1.1" if method else "",
            )
            assert fields["status"] == status
            assert fields["bytes_sent"] == length
            assert fields["remote_addr"] == "127.0.0.1"
            # each request's own time, never time since the process (or the machine) began
            assert 0 <= fields["duration_ms"] <= elapsed_ms
            assert fields["user_agent"] == headers.get("User-Agent")  # http.client sends none
            expected_path = "memory" if status >= 400 or method == "HEAD" else body_path
            assert fields["body_path"] == expected_path
        else:
            match = CLF.match(line)
            assert match, line
            assert match["request"] == (f"{method} {path} HTTP/1.1" if method else "-")
            assert int(match["status"]) == status
            assert match["bytes"] == (str(length) if length else "-")
            if form == "combined":
                assert match["referer"] == headers.get("Referer", "-")


def test_asgi_responses_are_logged(tmp_path: Path) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"de"})

    log = tmp_path / "access.log"
    with start_server(
        tmp_path, app=app, lifespan="off", access_log="json", access_log_file=str(log)
    ) as server:
        assert fetch(server.port, [("POST", "/api?x", {})]) == [(201, 5)]
    fields = json.loads(log.read_text())
    assert (fields["method"], fields["path"], fields["status"]) == ("POST", "/api?x", 201)
    assert fields["bytes_sent"] == 5 and fields["body_path"] == "memory"


def test_lines_are_flushed_within_a_second(site: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with start_server(site, access_log="common", access_log_file=str(log)) as server:
        fetch(server.port, [("GET", "/one.bin", {})])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not log.read_text():
            time.sleep(0.1)
        assert '"GET /one.bin HTTP/1.1" 200 1' in log.read_text()


class FlushAttempts:
    """Counts the flusher's writes (failed ones too), so a test waits for the next one
    instead of sleeping through the flush interval, which it shortens to 50 ms."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.changed = threading.Condition()
        write_all = accesslog._write_all

        def counted(fd: int, data: bytes) -> None:
            try:
                write_all(fd, data)
            finally:
                with self.changed:
                    self.count += 1
                    self.changed.notify_all()

        monkeypatch.setattr(accesslog, "_write_all", counted)
        monkeypatch.setattr(accesslog, "FLUSH_SECONDS", 0.05)

    def wait(self, count: int, timeout: float = 10) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= count, timeout), self.count


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_disk_is_one_error_and_the_server_keeps_serving(
    site: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes = FlushAttempts(monkeypatch)
    with (
        caplog.at_level(logging.ERROR, logger="zerohttp"),
        start_server(site, access_log="combined", access_log_file="/dev/full") as server,
    ):
        for attempt in range(1, 4):
            assert fetch(server.port, [("GET", "/one.bin", {})]) == [(200, 1)]
            flushes.wait(attempt)  # the flusher has tried (and failed) each time
    errors = [r for r in caplog.records if "access log" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "No space left" in errors[0].getMessage()
    assert errors[0].exc_info is None


def test_a_closed_pipe_is_one_error_and_the_server_keeps_serving(
    site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes = FlushAttempts(monkeypatch)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    with (
        caplog.at_level(logging.ERROR, logger="zerohttp"),
        start_server(site, access_log="common", access_log_file=str(fifo)) as server,
    ):
        os.close(reader)  # nobody reads any more: writes fail with EPIPE
        for attempt in range(1, 4):
            assert fetch(server.port, [("GET", "/one.bin", {})]) == [(200, 1)]
            flushes.wait(attempt)
    errors = [r for r in caplog.records if "access log" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "Broken pipe" in errors[0].getMessage()
