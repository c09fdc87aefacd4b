"""Turn a peerbench results.json into the RESULTS.md tables: medians over rounds, the
issue's targets as ratios against peers measured in the same run, and CPU per request."""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from typing import Any

TESTS = ["small", "medium", "large", "huge", "close"]
UNIT = {"small": "req/s", "medium": "req/s", "large": "MB/s", "huge": "GB/s", "close": "req/s"}
ZEROHTTP = "zerohttp"


def value(test: str, sample: dict[str, Any]) -> float:
    if test == "huge":
        return float(sample["gbps_median"])
    return float(sample["mbps"] if test == "large" else sample["rps"])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def collect(data: dict[str, Any]) -> tuple[list[str], dict[tuple[str, str], list[dict[str, Any]]]]:
    order: list[str] = []
    samples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for round_ in data["rounds"]:
        for server in round_:
            name = server["server"]
            if name not in order:
                order.append(name)
            for test, sample in server.get("tests", {}).items():
                samples[(name, test)].append(sample)
    return order, samples


def med(
    samples: dict[tuple[str, str], list[dict[str, Any]]],
    server: str,
    test: str,
    key: str | None = None,
) -> float:
    rows = samples.get((server, test), [])
    if key is None:
        return median([value(test, r) for r in rows])
    return median([float(r[key]) for r in rows if r.get(key) is not None])


def fmt(number: float, test: str = "") -> str:
    if number != number:  # NaN
        return "–"
    return f"{number:.2f}" if test == "huge" or number < 10 else f"{number:,.0f}"


def target_rows(
    s: dict[tuple[str, str], list[dict[str, Any]]],
) -> list[tuple[str, str, str, bool | None]]:
    z = ZEROHTTP

    def ratio(test: str, peer: str, key: str | None = None) -> float:
        return med(s, z, test, key) / med(s, peer, test, key)

    rows: list[tuple[str, str, str, bool | None]] = []

    def add(label: str, target: str, got: float, ok: bool) -> None:
        rows.append(
            (label, target, "–" if got != got else f"{got:.2f}×", None if got != got else ok)
        )

    r = ratio("small", "granian")
    add("small vs Granian", "≥ 1.2×", r, r >= 1.2)
    r = ratio("small", "aiohttp-uvloop")
    add("small vs aiohttp (uvloop)", "≥ 5×", r, r >= 5)
    r = ratio("medium", "granian")
    add("medium vs Granian", "≥ 1.2×", r, r >= 1.2)
    r = ratio("large", "nginx")
    add("large MB/s vs nginx", "≥ 1.0×", r, r >= 1.0)
    cpu = med(s, z, "huge", "total_cpu_s_per_gb") / med(s, "nginx", "huge", "total_cpu_s_per_gb")
    add("huge CPU s/GB (srv+client) vs nginx", "≤ 1.0×", cpu, cpu <= 1.0)
    r = ratio("huge", "nginx")
    add("huge GB/s vs nginx", "≥ 0.9×", r, r >= 0.9)
    r = ratio("close", "aiohttp")
    add("close vs aiohttp", "≥ 2.5×", r, r >= 2.5)
    rows.append(("10,000 idle keep-alive conns", "≤ 64 MiB RSS", "see Idle section", None))
    rows.append(("8 clients streaming 4 GiB", "RSS flat ± 5 MiB", "see Streaming section", None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--command", default="bash benchmarks/run.sh")
    args = parser.parse_args()
    with open(args.results) as f:
        data = json.load(f)
    order, s = collect(data)
    meta = data["meta"]
    rounds = len(data["rounds"])
    print("# zerohttp benchmark results\n")
    print(f"Command: `{args.command}` (drives `../shared/peerbench`; raw: `{args.results}`).  ")
    print(
        f"Run started {meta.get('started')}, {rounds} round(s), host {meta.get('host')}, "
        f"{meta.get('cpus')} CPUs; server pinned to CPU 0, wrk/curl to CPU 1, loopback.  "
    )
    versions = meta.get("versions", {})
    print(
        "Versions: "
        + ", ".join(
            f"{k} {str(v).split()[0]}"
            for k, v in versions.items()
            if k in ("python", "uvloop", "h11", "granian", "aiohttp", "starlette", "nginx")
        )
        + ".\n"
    )
    print(
        "Medians over rounds. This box is shared and noisy: read ratios between rows of "
        "the same run, not absolute figures.\n"
    )

    print("## Targets (issue: Performance)\n")
    print("| target | wanted | measured | met |")
    print("|---|---|---|---|")
    for label, wanted, got, ok in target_rows(s):
        mark = "–" if ok is None else ("yes" if ok else "**no**")
        print(f"| {label} | {wanted} | {got} | {mark} |")

    print("\n## All servers\n")
    header = "| server | " + " | ".join(f"{t} {UNIT[t]}" for t in TESTS)
    print(header + " | small srv CPU µs/req | close srv CPU µs/req | huge CPU s/GB (srv+client) |")
    print("|---|" + "---:|" * (len(TESTS) + 3))
    for server in order:
        cells = [fmt(med(s, server, t), t) for t in TESTS]
        cells.append(fmt(med(s, server, "small", "cpu_us_per_req")))
        cells.append(fmt(med(s, server, "close", "cpu_us_per_req")))
        cells.append(fmt(med(s, server, "huge", "total_cpu_s_per_gb"), "huge"))
        print(f"| {server} | " + " | ".join(cells) + " |")
    correct = {r["server"]: r.get("correct") for rnd in data["rounds"] for r in rnd}
    bad = [name for name, ok in correct.items() if not ok]
    print(
        f"\nCorrectness check (peerbench: size + sha256 of every file): "
        f"{'all servers correct' if not bad else 'FAILED for ' + ', '.join(bad)}."
    )


if __name__ == "__main__":
    main()
