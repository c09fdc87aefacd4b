"""A refused request is timed from its own refusal, never from the process's (or the
machine's) start: the metrics histogram sum stays within the time the traffic took."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from conftest import start_server

REFUSED = [
    (b"BROKEN\r\n\r\n", 400),  # refused by h11: no request was ever parsed
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),  # by h11's limit
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),  # by reader.head_of, after parsing
]


def status_of(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_refused_requests_add_their_own_time_to_the_histogram(tmp_path: Path, loop: str) -> None:
    with start_server(tmp_path, loop, metrics_port=0) as server:
        began = time.perf_counter()
        statuses = [status_of(server.port, request) for request, _ in REFUSED]
        elapsed = time.perf_counter() - began
        stats = server.server.state.stats
        assert stats is not None
        counts, total = server.call(lambda: (dict(stats.requests), stats.duration_sum))
    assert statuses == [status for _, status in REFUSED]
    assert sum(counts.values()) == len(REFUSED)
    assert 0 <= total <= elapsed
