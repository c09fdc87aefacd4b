"""Prometheus metrics: counters merged across workers (unit), the text format parsed back
with prometheus_client's parser, values matching real traffic over TCP, and one scrape
covering every worker of ``--workers 2``."""

from __future__ import annotations

import http.client
import os
import socket
import time
from pathlib import Path

import pytest
from conftest import start_server
from helpers import free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families
from serverprocs import zerohttp

from zerohttp.http.stats import DURATION_BUCKETS, Stats
from zerohttp.metrics import ProcessStats, read_snapshots, render


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} for every sample in an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counts_and_exposition() -> None:
    stats = Stats()
    stats.count(b"GET", 200, "sendfile", 1000, 0.00005)
    stats.count(b"GET", 200, "sendfile", 24, 0.003)
    stats.count(b"HEAD", 200, "memory", 0, 0.2)
    stats.count(b"BREW", 405, "memory", 10, 20.0)
    stats.connections, stats.cache_hits, stats.cache_misses = 3, 5, 7
    samples = parse(render(lambda: stats).decode())
    assert samples[("zerohttp_requests_total", (("code", "200"), ("method", "GET")))] == 2
    assert samples[("zerohttp_requests_total", (("code", "405"), ("method", "other")))] == 1
    assert samples[("zerohttp_response_body_bytes_total", (("path", "sendfile"),))] == 1024
    assert samples[("zerohttp_response_body_bytes_total", (("path", "memory"),))] == 10
    assert samples[("zerohttp_response_body_bytes_total", (("path", "fallback"),))] == 0
    assert samples[("zerohttp_connections", ())] == 3
    assert samples[("zerohttp_open_file_cache_hits_total", ())] == 5
    assert samples[("zerohttp_open_file_cache_misses_total", ())] == 7
    buckets = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "zerohttp_request_duration_seconds_bucket"
    }
    assert len(buckets) == len(DURATION_BUCKETS) + 1
    assert buckets["0.0001"] == 1
    assert buckets["0.005"] == 2
    assert buckets["0.25"] == 3
    assert buckets["10.0"] == 3
    assert buckets["+Inf"] == 4
    assert samples[("zerohttp_request_duration_seconds_count", ())] == 4
    assert samples[("zerohttp_request_duration_seconds_sum", ())] == pytest.approx(20.20305)


def test_merge_keeps_dead_workers_counters_but_not_their_connections() -> None:
    live, dead = Stats(), Stats()
    live.count(b"GET", 200, "sendfile", 5, 0.001)
    dead.count(b"GET", 200, "sendfile", 7, 0.001)
    live.connections, dead.connections = 2, 4
    total = Stats()
    total.merge(live.snapshot())
    total.merge(dead.snapshot(), alive=False)
    assert total.requests == {("GET", 200): 2}
    assert total.body_bytes == {"sendfile": 12}
    assert total.connections == 2
    assert sum(total.duration_counts) == 2


def test_snapshots_are_read_back(tmp_path: Path) -> None:
    stats = Stats()
    stats.count(b"GET", 404, "memory", 14, 0.001)
    source = ProcessStats(stats, lambda: 1, [], str(tmp_path))
    source.write_snapshot()
    other = Stats()
    other.count(b"GET", 200, "sendfile", 100, 0.001)
    (tmp_path / "999999999.json").write_text(__import__("json").dumps(other.snapshot()))
    (tmp_path / "junk.json").write_text("not json")
    (tmp_path / "12.json").write_text("{")  # half-written: skipped, not an error
    total = source()
    assert total.requests == {("GET", 404): 1, ("GET", 200): 1}
    assert total.connections == 1  # pid 999999999 is not alive


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
    text = response.read().decode()
    connection.close()
    return parse(text)


def get(port: int, path: str, method: str = "GET") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


@pytest.mark.parametrize("body_path", ["sendfile", "fallback"])
def test_values_match_the_traffic(tmp_path: Path, body_path: str) -> None:
    (tmp_path / "kib.bin").write_bytes(os.urandom(1024))
    past = time.time() - 60  # files modified in the current second are not cached
    os.utime(tmp_path / "kib.bin", (past, past))
    with start_server(tmp_path, "uvloop", body_path, metrics_port=0) as running:
        port = running.server.metrics_port
        assert port is not None and port != running.port
        for _ in range(5):
            assert get(running.port, "/kib.bin") == 200
        assert get(running.port, "/kib.bin", "HEAD") == 200
        assert get(running.port, "/missing") == 404
        assert get(running.port, "/metrics") == 404  # never on the public port
        held = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(3)]
        state = running.server.state
        assert wait_for(lambda: running.call(lambda: len(state.connections)) == 3, 10)
        samples = scrape(port)
        for sock in held:
            sock.close()
    requests = {k[1]: v for k, v in samples.items() if k[0] == "zerohttp_requests_total"}
    assert requests == {
        (("code", "200"), ("method", "GET")): 5,
        (("code", "200"), ("method", "HEAD")): 1,
        (("code", "404"), ("method", "GET")): 2,
    }
    body = {
        k[1][0][1]: v for k, v in samples.items() if k[0] == "zerohttp_response_body_bytes_total"
    }
    assert body[body_path] == 5 * 1024
    assert body["memory"] == 2 * len(b"404 Not Found\n")
    assert samples[("zerohttp_connections", ())] == 3
    assert samples[("zerohttp_request_duration_seconds_count", ())] == 8
    assert samples[("zerohttp_request_duration_seconds_sum", ())] > 0
    hits = samples[("zerohttp_open_file_cache_hits_total", ())]
    misses = samples[("zerohttp_open_file_cache_misses_total", ())]
    assert hits + misses == 8 and hits >= 4


def snapshot_requests(tmp: Path) -> int:
    """Requests counted in the worker snapshots under ``tmp`` (the servers' TMPDIR)."""
    return sum(
        n
        for directory in tmp.glob("zerohttp-metrics-*")
        for _, data in read_snapshots(str(directory))
        for _, _, n in data["requests"]
    )


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="--workers needs SO_REUSEPORT")
def test_one_scrape_covers_every_worker(site: Path, tmp_path: Path) -> None:
    metrics_port = free_port()
    args = [str(site), "--port", "0", "--workers", "2", "--metrics-port", str(metrics_port)]
    with zerohttp(args, env={**os.environ, "TMPDIR": str(tmp_path)}) as server:
        assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in server.banner
        for _ in range(40):  # new connections: the kernel spreads them over both workers
            assert get(server.port, "/one.bin") == 200
        # every worker has written its snapshot since
        assert wait_for(lambda: snapshot_requests(tmp_path) == 40, 10), snapshot_requests(tmp_path)
        for _ in range(6):  # scrapes land on either worker: each sees the total
            samples = scrape(metrics_port)
            key = ("zerohttp_requests_total", (("code", "200"), ("method", "GET")))
            assert samples[key] == 40
            body = samples[("zerohttp_response_body_bytes_total", (("path", "sendfile"),))]
            assert body == 40
        assert server.stop() == 0
        pid = server.proc.pid
    leftovers = [d for d in tmp_path.glob("zerohttp-metrics-*") if (d / f"{pid}.json").exists()]
    assert not leftovers, "the supervisor removes the snapshot directory"
    assert not list(tmp_path.glob("zerohttp-metrics-*")), "nor leaves any other"
