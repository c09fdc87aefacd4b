"""Prometheus metrics on their own listener (``--metrics-port``), never the public port.

The connection layer counts in plain integers (``http.stats.Stats``); ``prometheus_client``
only renders the text format, through a custom collector that reads the counters at
scrape time. With ``--workers N`` every worker listens on the metrics port too
(SO_REUSEPORT) and writes a snapshot of its counters once a second into a directory the
supervisor made; whichever worker a scrape reaches adds its live counters to the others'
snapshots, so one scrape covers all workers (at most a second stale for the others).
A dead worker's counters keep counting (counters must not go down); its connections not.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from .http.stats import DURATION_BUCKETS, Stats
from .message.response import RequestHead, Response, error_response
from .static.filecache import FileCache

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SNAPSHOT_SECONDS = 1.0


def collect_families(stats: Stats) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "zerohttp_requests",
        "Responses sent, by request method and status code.",
        labels=["method", "code"],
    )
    for (method, code), count in sorted(stats.requests.items()):
        requests.add_metric([method, str(code)], count)
    yield requests
    body = CounterMetricFamily(
        "zerohttp_response_body_bytes",
        "Response body bytes sent, by body path (sendfile, fallback, memory; websocket: "
        "frames sent after a 101).",
        labels=["path"],
    )
    for path in ("sendfile", "fallback", "memory", "websocket"):
        body.add_metric([path], stats.body_bytes.get(path, 0))
    yield body
    yield GaugeMetricFamily(
        "zerohttp_connections", "Client connections open now.", value=stats.connections
    )
    cumulative, buckets = 0, []
    for bound, count in zip(
        (*map(str, DURATION_BUCKETS), "+Inf"), stats.duration_counts, strict=True
    ):
        cumulative += count
        buckets.append((bound, cumulative))
    yield HistogramMetricFamily(
        "zerohttp_request_duration_seconds",
        "Time from a complete request head to the end of its response.",
        buckets=buckets,
        sum_value=stats.duration_sum,
    )
    yield CounterMetricFamily(
        "zerohttp_open_file_cache_hits", "Open-file cache lookups served.", value=stats.cache_hits
    )
    yield CounterMetricFamily(
        "zerohttp_open_file_cache_misses",
        "Open-file cache lookups that found nothing valid.",
        value=stats.cache_misses,
    )
    yield GaugeMetricFamily(
        "zerohttp_websockets", "WebSocket connections open now.", value=stats.websockets_open
    )
    messages = CounterMetricFamily(
        "zerohttp_websocket_messages",
        "WebSocket messages, by direction (in: from clients, out: to clients).",
        labels=["direction"],
    )
    messages.add_metric(["in"], stats.websocket_messages_in)
    messages.add_metric(["out"], stats.websocket_messages_out)
    yield messages


class StatsCollector:
    """A prometheus_client collector over whatever ``source`` returns at scrape time."""

    def __init__(self, source: Callable[[], Stats]) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return list(collect_families(self.source()))


def render(source: Callable[[], Stats]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(source))
    return generate_latest(registry)


class MetricsHandler:
    """The metrics listener's handler: ``GET /metrics`` and nothing else."""

    def __init__(self, source: Callable[[], Stats]) -> None:
        self.source = source

    def handle(self, request: RequestHead) -> Response:
        if request.method not in (b"GET", b"HEAD"):
            return error_response(405, [("Allow", "GET, HEAD")])
        if request.target.partition(b"?")[0] != b"/metrics":
            return error_response(404)
        body = render(self.source)
        fields = (("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body))))
        return Response(200, fields, body)


class ProcessStats:
    """This process's counters, plus the other workers' snapshots when there are any."""

    def __init__(
        self,
        stats: Stats,
        connections: Callable[[], int],
        caches: Sequence[FileCache],
        snapshot_dir: str | None = None,
    ) -> None:
        self.stats = stats
        self.connections = connections
        self.caches = caches
        self.snapshot_dir = snapshot_dir

    def own(self) -> Stats:
        stats = self.stats
        stats.connections = self.connections()
        stats.cache_hits = sum(cache.hits for cache in self.caches)
        stats.cache_misses = sum(cache.misses for cache in self.caches)
        return stats

    def __call__(self) -> Stats:
        own = self.own()
        if self.snapshot_dir is None:
            return own
        total = Stats()
        total.merge(own.snapshot())
        for pid, data in read_snapshots(self.snapshot_dir):
            if pid != os.getpid():
                total.merge(data, alive=_alive(pid))
        return total

    def write_snapshot(self) -> None:
        if self.snapshot_dir is None:
            return
        path = os.path.join(self.snapshot_dir, f"{os.getpid()}.json")
        fd, temporary = tempfile.mkstemp(dir=self.snapshot_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(self.own().snapshot(), out)
        os.replace(temporary, path)


def read_snapshots(directory: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for name in os.listdir(directory):
        stem, _, ext = name.partition(".")
        if ext != "json" or not stem.isdigit():
            continue
        try:
            with open(os.path.join(directory, name)) as file:
                yield int(stem), json.load(file)
        except (OSError, ValueError):
            continue  # being replaced, or gone: the next scrape will see it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_snapshot_dir() -> str:
    return tempfile.mkdtemp(prefix="zerohttp-metrics-")
