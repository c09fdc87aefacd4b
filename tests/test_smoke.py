from __future__ import annotations

import http.client

from conftest import SIZES, RunningServer


def test_every_size_is_byte_exact(server: RunningServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    for name in SIZES:
        conn.request("GET", "/" + name)
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == (server.root / name).read_bytes()
    conn.close()
