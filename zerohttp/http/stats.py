"""What the metrics report, kept as plain integers and floats that the connection layer
bumps per response; the Prometheus exposition (``zerohttp.metrics``) reads them at scrape
time, so the hot path never touches a metrics library."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

# Request duration buckets, in seconds (prometheus_client's defaults, finer at the low end:
# a cached static response takes ~20 µs of server time).
DURATION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
KNOWN_METHODS = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE"}
)


@dataclass
class Stats:
    """Counters of one process; ``snapshot``/``merge`` carry them across workers."""

    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    body_bytes: dict[str, int] = field(default_factory=dict)
    duration_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0
    connections: int = 0  # open now (set at snapshot time)
    cache_hits: int = 0
    cache_misses: int = 0
    websockets_open: int = 0  # a gauge: a dead worker's are not counted
    websocket_messages_in: int = 0
    websocket_messages_out: int = 0

    def count(self, method: bytes, status: int, path: str, body: int, seconds: float) -> None:
        name = method.decode("ascii") if method in KNOWN_METHODS else ("other" if method else "")
        key = (name, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.body_bytes[path] = self.body_bytes.get(path, 0) + body
        if status == 101:
            return  # a WebSocket's lifetime is no response time: it would swamp the histogram
        self.duration_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready: what a worker hands to the supervisor."""
        return {
            "requests": [[m, s, n] for (m, s), n in self.requests.items()],
            "body_bytes": self.body_bytes,
            "duration_counts": self.duration_counts,
            "duration_sum": self.duration_sum,
            "connections": self.connections,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "websockets_open": self.websockets_open,
            "websocket_messages_in": self.websocket_messages_in,
            "websocket_messages_out": self.websocket_messages_out,
        }

    def merge(self, data: dict[str, Any], *, alive: bool = True) -> None:
        """Add a snapshot; a dead worker's counters still count, its connections do not."""
        for method, status, n in data["requests"]:
            key = (str(method), int(status))
            self.requests[key] = self.requests.get(key, 0) + int(n)
        for path, n in data["body_bytes"].items():
            self.body_bytes[path] = self.body_bytes.get(path, 0) + int(n)
        for i, n in enumerate(data["duration_counts"]):
            self.duration_counts[i] += int(n)
        self.duration_sum += float(data["duration_sum"])
        if alive:
            self.connections += int(data["connections"])
            self.websockets_open += int(data.get("websockets_open", 0))
        self.websocket_messages_in += int(data.get("websocket_messages_in", 0))
        self.websocket_messages_out += int(data.get("websocket_messages_out", 0))
        self.cache_hits += int(data["cache_hits"])
        self.cache_misses += int(data["cache_misses"])
