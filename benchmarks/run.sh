#!/usr/bin/env bash
# One command: zerohttp and its peers measured in the same run, each server pinned to CPU 0
# and wrk/curl to CPU 1 (../shared/peerbench does the pinning and the measuring), then
# benchmarks/RESULTS.md is rewritten with the table, the ratios against the targets, the
# µs of server CPU per request, the machine, and the profile of one small request.
#
#   bash benchmarks/run.sh                 # 2 rounds, all tests (~25 min)
#   ROUNDS=1 TESTS=small,medium bash benchmarks/run.sh
#   ASGI_ROUNDS=3 (default): rounds of the ASGI hosting step (asgi_bench.py, ~15 min)
#
# zerohttp runs with its defaults (open-file cache on, access log off, no metrics listener).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PEERBENCH="${PEERBENCH:-$REPO/../shared/peerbench}"
VENV="${ZEROHTTP_BENCH_VENV:-/tmp/zerohttp-bench-venv}"
ROUNDS="${ROUNDS:-2}"
TESTS="${TESTS:-small,medium,large,huge,close}"
PEERS="${PEERS:-nginx granian aiohttp aiohttp-uvloop starlette}"
ASGI_ROUNDS="${ASGI_ROUNDS:-3}"

[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade "$REPO" >&2
# the ASGI step runs one FastAPI app under zerohttp --app, uvicorn and Granian from this venv
"$VENV/bin/pip" install -q --upgrade fastapi starlette 'uvicorn[standard]' granian >&2
# Servers start in the caller's directory and `python -m zerohttp` puts it first on sys.path:
# from the repository root that would measure the working tree, not the installed package.
cd /tmp
(cd / && "$VENV/bin/python" -c 'import zerohttp') || {
    echo "benchmarks: the zerohttp installed in $VENV does not import (a subpackage missing" \
        "from the wheel? see [tool.setuptools] in pyproject.toml)" >&2
    exit 1
}

log="$(mktemp)"
# shellcheck disable=SC2086
bash "$PEERBENCH/run.sh" $PEERS --rounds "$ROUNDS" --tests "$TESTS" \
    --cmd "$VENV/bin/python -m zerohttp {root} --port {port} --log-level warning" --name zerohttp \
    --cmd "$VENV/bin/python -m zerohttp {root} --port {port} --log-level warning --loop asyncio" \
    --name zerohttp-asyncio \
    2> >(tee "$log" >&2) >/dev/null
results="$(grep -o '/[^ ]*/results.json' "$log" | tail -1)"
[[ -f "$results" ]] || { echo "benchmarks: no results.json found" >&2; exit 1; }

{
    "$VENV/bin/python" "$HERE/report.py" "$results" \
        --command "ROUNDS=$ROUNDS TESTS=$TESTS bash benchmarks/run.sh"
    echo
    taskset -c 0 "$VENV/bin/python" "$HERE/profile_request.py"
    echo
    "$VENV/bin/python" "$HERE/hop_count.py"
    echo
    echo "## Connection: close against the floor of this box"
    echo
    PEERBENCH="$PEERBENCH" "$VENV/bin/python" "$HERE/conn_floor.py" --rounds 3 --seconds 4 \
        --python "$VENV/bin/python" --zerohttp "zerohttp="
    echo
    python3 "$HERE/idle_connections.py" --python "$VENV/bin/python"
    echo
    python3 "$HERE/streaming_rss.py" --python "$VENV/bin/python"
    echo
    python3 "$HERE/stalled_bodies.py" --python "$VENV/bin/python"
    echo
    echo "## 1 GiB download: CPU per GB over many transfers (peerbench's huge test runs 3)"
    echo
    echo '```'
    echo "python3 benchmarks/huge_cpu.py --python $VENV/bin/python --reps 15 --turns 2,4"
    echo '```'
    echo
    python3 "$HERE/huge_cpu.py" --python "$VENV/bin/python" --reps 15 --turns 2,4
    echo
    python3 "$HERE/asgi_bench.py" --python "$VENV/bin/python" --rounds "$ASGI_ROUNDS" \
        --command "python3 benchmarks/asgi_bench.py --python $VENV/bin/python --rounds $ASGI_ROUNDS"
    echo
    python3 "$HERE/ops_bench.py" --python "$VENV/bin/python" --rounds 3
    echo
    cat "$HERE/NOTES.md"
} > "$HERE/RESULTS.md"
echo "benchmarks: wrote $HERE/RESULTS.md (raw: $results)" >&2
