"""Listening other than host:port: ``--uds`` (mode, stale files, removal on exit, with
workers), ``--fd``, systemd socket activation (``LISTEN_FDS``), and IPv6 — each serving
real requests in a ``python -m zerohttp`` process."""

from __future__ import annotations

import http.client
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverprocs import Zerohttp as Served

from zerohttp.errors import ConfigError
from zerohttp.listeners import adopt_fd, bind_unix, parse_mode, systemd_listen_fd


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.path)
        self.sock = sock


def fetch(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for one in started:
        if one.proc.poll() is None:
            one.proc.kill()
            one.proc.wait()


# --- sans-IO and the small I/O steps -------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "pid", "expected"),
    [
        ({"LISTEN_PID": "42", "LISTEN_FDS": "1"}, 42, 3),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "2"}, 42, 3),
        ({"LISTEN_PID": "43", "LISTEN_FDS": "1"}, 42, None),  # meant for another process
        ({"LISTEN_PID": "42", "LISTEN_FDS": "0"}, 42, None),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "x"}, 42, None),
        ({"LISTEN_FDS": "1"}, 42, None),
        ({}, 42, None),
    ],
)
def test_systemd_listen_fd(environ: dict[str, str], pid: int, expected: int | None) -> None:
    assert systemd_listen_fd(environ, pid) == expected


@pytest.mark.parametrize(("text", "mode"), [("660", 0o660), ("0600", 0o600), ("777", 0o777)])
def test_parse_mode(text: str, mode: int) -> None:
    assert parse_mode(text) == mode


@pytest.mark.parametrize("text", ["rw", "999", "1777", "-1", ""])
def test_bad_modes(text: str) -> None:
    with pytest.raises(ConfigError, match="--uds-mode"):
        parse_mode(text)


def test_a_stale_socket_file_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a crash leftover
    live = bind_unix(path, 0o600, 16)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(ConfigError, match="another server is listening"):
        bind_unix(path, 0o600, 16)
    live.close()
    regular = tmp_path / "file"
    regular.write_text("not a socket")
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        bind_unix(str(regular), 0o600, 16)
    assert regular.read_text() == "not a socket"


def test_adopt_refuses_what_is_not_a_listening_socket(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as file, pytest.raises(ConfigError, match="not an open socket"):
        adopt_fd(file.fileno())
    with socket.socket() as unbound:
        with pytest.raises(ConfigError, match="not listening"):
            adopt_fd(unbound.fileno())
        assert unbound.fileno() >= 0  # not closed by the refusal


# --- serving ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unix_socket(site: Path, tmp_path: Path, served: list[Served], workers: str) -> None:
    path = str(tmp_path / "zerohttp.sock")
    server = Served([str(site), "--uds", path, "--workers", workers])
    served.append(server)
    assert f"on unix:{path} " in server.banner, server.banner
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    for _ in range(4):
        connection = UnixHTTPConnection(path)
        assert fetch(connection, "/kib.bin") == (200, (site / "kib.bin").read_bytes())
        assert fetch(connection, "/ten-mib.bin")[1] == (site / "ten-mib.bin").read_bytes()
        connection.close()
    assert server.stop() == 0
    assert not os.path.exists(path), "the socket file is removed on a clean exit"


def test_unix_socket_mode(site: Path, tmp_path: Path, served: list[Served]) -> None:
    path = str(tmp_path / "zerohttp.sock")
    server = Served([str(site), "--uds", path, "--uds-mode", "600"])
    served.append(server)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert server.stop() == 0


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@pytest.mark.parametrize("workers", ["1", "2"])
def test_inherited_fd(site: Path, served: list[Served], workers: str) -> None:
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        fd = sock.fileno()
        server = Served([str(site), "--fd", str(fd), "--workers", workers], pass_fds=(fd,))
        served.append(server)
    assert f"on http://127.0.0.1:{port}/ " in server.banner, server.banner
    for _ in range(4):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert fetch(connection, "/kib.bin") == (200, (site / "kib.bin").read_bytes())
        connection.close()
    assert server.stop() == 0


def test_systemd_socket_activation(site: Path, served: list[Served]) -> None:
    """systemd passes the socket as fd 3 with LISTEN_PID/LISTEN_FDS: no --port given."""
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        fd = sock.fileno()

        def as_systemd_does() -> None:
            os.dup2(fd, 3)
            os.environ["LISTEN_PID"] = str(os.getpid())
            os.environ["LISTEN_FDS"] = "1"

        server = Served([str(site)], pass_fds=(fd, 3), preexec_fn=as_systemd_does)
        served.append(server)
    assert f"on http://127.0.0.1:{port}/ " in server.banner, server.banner
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert fetch(connection, "/one.bin") == (200, (site / "one.bin").read_bytes())
    connection.close()
    assert server.stop() == 0


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ipv6(site: Path, served: list[Served], workers: str) -> None:
    server = Served([str(site), "--host", "::1", "--port", "0", "--workers", workers])
    served.append(server)
    assert "on http://[::1]:" in server.banner, server.banner
    port = int(server.banner.split("http://[::1]:")[1].split("/")[0])
    connection = http.client.HTTPConnection("::1", port, timeout=10)
    assert fetch(connection, "/kib.bin") == (200, (site / "kib.bin").read_bytes())
    connection.close()
    assert server.stop() == 0


def test_asgi_scope_server_on_a_unix_socket(tmp_path: Path, served: list[Served]) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "scopeapp.py").write_text(
        "import json\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    body = json.dumps([scope['server'], scope['client']]).encode()\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': body})\n"
    )
    path = str(tmp_path / "app.sock")
    server = Served(["--app", "scopeapp:app", "--uds", path, "--lifespan", "off"], cwd=app_dir)
    served.append(server)
    status, body = fetch(UnixHTTPConnection(path), "/")
    assert status == 200
    assert body == f'[["{path}", null], null]'.encode()
    assert server.stop() == 0
