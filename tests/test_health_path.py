"""--health-path: the answer (sans-IO), and over TCP for a root without an index, for an
ASGI app without routes and for a mount; never a file, never the app, never in the access
log or the request metrics."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server

from zerohttp.http.health import health_check
from zerohttp.message.response import RequestHead

HEALTH = "/healthz"


# --- the answer ------------------------------------------------------------------------


def request(method: bytes, target: bytes) -> RequestHead:
    return RequestHead(method, target, b"1.1", ((b"host", b"x"),))


def test_off_by_default() -> None:
    assert health_check("") is None


@pytest.mark.parametrize("target", [b"/healthz", b"/healthz?", b"/healthz?probe=1&x"])
def test_the_path_with_any_query_is_ok(target: bytes) -> None:
    check = health_check(HEALTH)
    assert check is not None
    for method in (b"GET", b"HEAD"):
        response = check.answer(request(method, target))
        assert response is not None
        assert (response.status, response.body) == (200, b"ok\n")
        assert response.field_lines() == (
            b"Content-Type: text/plain\r\nContent-Length: 3\r\nCache-Control: no-store\r\n"
        )


@pytest.mark.parametrize(
    "target", [b"/", b"/healthz/", b"/healthzx", b"/Healthz", b"/%68ealthz", b"/a/healthz"]
)
def test_any_other_target_is_not_answered(target: bytes) -> None:
    check = health_check(HEALTH)
    assert check is not None and check.answer(request(b"GET", target)) is None


def test_another_method_is_405_allowing_get_and_head() -> None:
    check = health_check(HEALTH)
    assert check is not None
    response = check.answer(request(b"POST", b"/healthz"))
    assert response is not None and response.status == 405
    assert b"\r\nAllow: GET, HEAD\r\n" in b"\r\n" + response.field_lines()


# --- over TCP ---------------------------------------------------------------------------


def get(server: RunningServer, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(method, target)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def bare_root(tmp_path: Path) -> Path:
    """A download area: files, no index.html; and a file named like the health path."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "file.bin").write_bytes(b"x" * 100)
    (root / "healthz").write_text("a file, not the health check\n")
    return root


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_root_without_index_is_healthy(bare_root: Path, tmp_path: Path, loop: str) -> None:
    log = tmp_path / "access.log"
    with start_server(
        bare_root,
        loop,
        health_path=HEALTH,
        access_log="json",
        access_log_file=str(log),
        metrics_port=0,
    ) as server:
        assert get(server, "GET", "/")[0] == 404
        status, headers, body = get(server, "GET", "/healthz?from=kubelet")
        assert (status, body) == (200, b"ok\n")
        assert headers["Content-Type"] == "text/plain"
        assert headers["Cache-Control"] == "no-store"
        status, headers, body = get(server, "HEAD", HEALTH)
        assert (status, headers["Content-Length"], body) == (200, "3", b"")
        status, headers, _ = get(server, "POST", HEALTH)
        assert (status, headers["Allow"]) == (405, "GET, HEAD")
        assert get(server, "GET", "/healthz/")[0] == 404  # exactly the path
        # keep-alive: many probes on one connection, in between a file
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        for target in (HEALTH, "/file.bin", HEALTH):
            connection.request("GET", target)
            assert connection.getresponse().read() in (b"ok\n", b"x" * 100)
        connection.close()
        stats = server.server.state.stats
        assert stats is not None
        counted = dict(server.call(lambda: dict(stats.requests)))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["path"], line["status"]) for line in lines] == [
        ("/", 404),
        ("/healthz/", 404),
        ("/file.bin", 200),
    ]
    assert counted == {("GET", 404): 2, ("GET", 200): 1}


def test_off_the_path_is_an_ordinary_target(bare_root: Path) -> None:
    with start_server(bare_root) as server:
        assert get(server, "GET", HEALTH)[2] == b"a file, not the health check\n"


def test_a_probe_with_a_body_is_answered_and_the_connection_closed(bare_root: Path) -> None:
    with start_server(bare_root, health_path=HEALTH) as server:
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nok\n"), data
    assert b"\r\nConnection: close\r\n" in data


def test_an_app_without_routes_is_healthy(bare_root: Path, tmp_path: Path) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"no routes"})

    mounted = tmp_path / "mounted"
    mounted.mkdir()
    with start_server(
        bare_root,
        app=app,
        lifespan="off",
        health_path="/static/healthz",
        mount=[f"/static={mounted}"],
    ) as server:
        assert get(server, "GET", "/")[0] == 404
        assert get(server, "GET", "/static/healthz")[0:3:2] == (200, b"ok\n")  # not the mount
        assert get(server, "GET", "/static/other")[0] == 404
    assert calls == ["/"]  # the app never saw the probe
