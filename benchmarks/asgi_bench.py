"""ASGI hosting: one FastAPI app under zerohttp --app, uvicorn and Granian, side by side.

    python3 benchmarks/asgi_bench.py --python /tmp/zerohttp-bench-venv/bin/python

The app (benchmarks/apps/bench_app.py) has /small and /medium (FastAPI FileResponse of a 1 KiB
and a 100 KiB file), /json (a small dict) and /static (zerohttp.StaticFiles mounted in FastAPI);
a second app is the same with Starlette's StaticFiles at /static; a third, raw_app, is a bare
ASGI callable answering /json with the same bytes (the server's own cost, no framework). The
same python environment
(--python) runs the app under all three servers:

    zerohttp --app --loop uvloop --log-level warning
    uvicorn --loop uvloop --http httptools --no-access-log --workers 1 --log-level warning
    granian --interface asgi --workers 1 --runtime-threads 1 --http 1 --no-ws --loop uvloop
            --log-level warning --no-access-log

Each server runs pinned to CPU 0 and `wrk -t1 -c64 -d10s` (keep-alive) to CPU 1, on
loopback, with ../shared/peerbench's own measuring code (wrk + report.lua, server CPU of the
process tree from /proc, the quiet wait, the CPU used by other processes). Before any load
every URL is fetched with curl from every server and its bytes compared with the expected
ones; a server that answers wrong is marked INVALID. Rounds interleave the servers (the order
rotates each round); the tables give medians over rounds and the ratios the targets ask for.
Markdown on stdout, JSON in --out-dir.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
PEERBENCH = Path(os.environ.get("PEERBENCH", REPO.parent / "shared" / "peerbench"))
sys.path.insert(0, str(PEERBENCH))
import bench as pb  # noqa: E402  (peerbench's measuring code: wrk, Probe, wait_quiet, stop)

SERVERS = ["zerohttp", "uvicorn", "granian"]
APP_ZH, APP_ST, APP_RAW = "app", "starlette_static_app", "raw_app"
# test -> (app attribute, URL path, expected body: a corpus file name or "json")
TESTS: dict[str, tuple[str, str, str]] = {
    "small": (APP_ZH, "/small", "small.html"),
    "medium": (APP_ZH, "/medium", "medium.js"),
    "json": (APP_ZH, "/json", "json"),
    "zh-static-medium": (APP_ZH, "/static/medium.js", "medium.js"),
    "zh-static-small": (APP_ZH, "/static/small.html", "small.html"),
    "st-static-medium": (APP_ST, "/static/medium.js", "medium.js"),
    "st-static-small": (APP_ST, "/static/small.html", "small.html"),
    "raw-json": (APP_RAW, "/json", "json"),
}
HEADINGS = {
    "small": "/small 1 KiB FileResponse",
    "medium": "/medium 100 KiB FileResponse",
    "json": "/json",
    "zh-static-medium": "zerohttp.StaticFiles 100 KiB",
    "zh-static-small": "zerohttp.StaticFiles 1 KiB",
    "st-static-medium": "Starlette StaticFiles 100 KiB",
    "st-static-small": "Starlette StaticFiles 1 KiB",
    "raw-json": "bare ASGI /json (no framework)",
}
# the body FastAPI renders for bench_app.JSON_BODY (JSONResponse: compact separators)
JSON_BYTES = b'{"message":"Hello, World!","id":42,"ok":true,"tags":["a","b"]}'
STRACE_KEYS = ["sendfile", "read", "pread64", "write", "writev", "sendto", "sendmsg", "recvfrom",
               "openat", "close", "newfstatat", "statx", "epoll_wait", "futex"]  # fmt: skip


# ----------------------------------------------------------------- setup
def build_root(root: Path) -> dict[str, bytes]:
    """small.html (1 KiB) and medium.js (100 KiB), deterministic text dated a day back (the
    open-file caches take files whose mtime is in the past)."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"small.html": _text(1024, "<p>asgi bench line {:05d}: the quick brown fox.</p>\n"),
             "medium.js": _text(102400, "export const v{0:05d} = (x) => x * {0};\n")}  # fmt: skip
    past = time.time() - 86400
    for name, data in files.items():
        path = root / name
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        os.utime(path, (past, past))
    return files


def _text(size: int, line: str) -> bytes:
    out, i = [], 0
    while sum(map(len, out)) < size:
        out.append(line.format(i))
        i += 1
    return "".join(out).encode()[:size]


def probe_env(python: str) -> dict[str, Any]:
    """Versions in the server environment, where its zerohttp comes from, whether it has
    StaticFiles, and whether its files are the repository's HEAD (run from / so that a
    zerohttp/ directory in the current directory cannot shadow the installed one)."""
    code = (
        "import importlib.metadata as m, json, sys, zerohttp\n"
        "v = {p: m.version(p) for p in ['zerohttp', 'fastapi', 'starlette', 'uvicorn', 'granian',"
        " 'uvloop', 'httptools', 'h11', 'anyio']}\n"
        "v['python'] = sys.version.split()[0]\n"
        "print(json.dumps(dict(versions=v, zerohttp_dir=zerohttp.__path__[0],"
        " static_files=hasattr(zerohttp, 'StaticFiles'))))\n"
    )
    p = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd="/")
    if p.returncode:
        sys.exit(f"asgi_bench: the server environment {python} cannot import zerohttp and the "
                 f"peers:\n{p.stderr.strip()}")  # fmt: skip
    env: dict[str, Any] = json.loads(p.stdout)
    env["repo_head"], env["stale_files"], env["installed_commit"] = installed_vs_head(
        Path(env["zerohttp_dir"])
    )
    return env


def installed_vs_head(pkg: Path) -> tuple[str, list[str], str]:
    """The repository's HEAD, the installed .py files that differ from HEAD's (or are missing
    from the install: a wheel that left a subpackage out), and the newest of the last 100
    commits whose zerohttp/*.py files the install matches exactly ("" if none)."""
    git = ["git", "-C", str(REPO)]

    def out(*a: str) -> str:
        return subprocess.run([*git, *a], capture_output=True, text=True).stdout

    head = out("rev-parse", "--short", "HEAD").strip()
    if not head:
        return "unknown", [], ""

    def blobs(commit: str) -> dict[str, str]:
        rows = (ln.split(None, 3) for ln in out("ls-tree", "-r", commit, "zerohttp").splitlines())
        return {r[3]: r[2] for r in rows if r[3].endswith(".py")}

    installed: dict[str, str] = {}
    for f in sorted(pkg.rglob("*.py")):
        name = "zerohttp/" + f.relative_to(pkg).as_posix()
        installed[name] = out("hash-object", str(f)).strip()
    at_head = blobs("HEAD")
    stale = sorted(n for n, h in at_head.items() if installed.get(n) != h)
    match = head if not stale else ""
    if stale:
        for commit in out("rev-list", "-n", "100", "HEAD").split():
            b = blobs(commit)
            if all(installed.get(n) == h for n, h in b.items()):
                match = commit[:7]
                break
    return head, stale, match


def server_argv(server: str, bin_dir: str, attr: str, port: int) -> list[str]:
    target = f"bench_app:{attr}"
    host = pb.HOST
    if server == "zerohttp":
        return [f"{bin_dir}/python", "-m", "zerohttp", "--app", target, "--host", host, "--port",
                str(port), "--loop", "uvloop", "--log-level", "warning"]  # fmt: skip
    if server == "uvicorn":
        return [f"{bin_dir}/uvicorn", target, "--app-dir", str(APPS), "--host", host, "--port",
                str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--workers", "1", "--log-level", "warning"]  # fmt: skip
    return [f"{bin_dir}/granian", "--interface", "asgi", "--host", host, "--port", str(port),
            "--workers", "1", "--runtime-threads", "1", "--http", "1", "--no-ws", "--loop",
            "uvloop", "--log-level", "warning", "--no-access-log", "--working-dir", str(APPS),
            target]  # fmt: skip


# ----------------------------------------------------------------- checks
def curl(url: str) -> dict[str, Any]:
    """GET with curl (on the client CPU): status, framing, body."""
    with tempfile.NamedTemporaryFile(prefix="asgi-bench-hdr-") as hdr:
        p = subprocess.run(["taskset", "-c", pb.CLIENT_CPU, "curl", "-s", "--max-time", "20",
                            "-D", hdr.name, "-o", "-", url], capture_output=True, timeout=60)  # fmt: skip
        head = Path(hdr.name).read_text(errors="replace")
    status, headers = 0, {}
    for line in head.splitlines():
        if line.startswith("HTTP/"):
            status, headers = int(line.split()[1]), {}
        elif ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    framing = ("content-length" if "content-length" in headers else
               "chunked" if "chunked" in headers.get("transfer-encoding", "") else "close")
    return dict(status=status, body=p.stdout, framing=framing,
                content_type=headers.get("content-type", ""), rc=p.returncode)  # fmt: skip


def verify(base: str, tests: list[str], expected: dict[str, bytes]) -> dict[str, Any]:
    out = {}
    for t in tests:
        _, path, want = TESTS[t]
        r = curl(base + path)
        body = r.pop("body")
        r.update(size=len(body), sha256=hashlib.sha256(body).hexdigest()[:16],
                 ok=r["status"] == 200 and body == expected[want])  # fmt: skip
        out[t] = r
    return out


# ----------------------------------------------------------------- one server, one app
def run_one(server: str, attr: str, tests: list[str], args: argparse.Namespace,
            expected: dict[str, bytes], log_dir: Path) -> dict[str, Any]:  # fmt: skip
    port = pb.free_port(18400)
    argv = server_argv(server, str(Path(args.python).parent), attr, port)
    env = dict(os.environ, ASGI_BENCH_ROOT=str(args.root))
    base = f"http://{pb.HOST}:{port}"
    res: dict[str, Any] = dict(server=server, app=attr, argv=argv, tests={})
    log = open(log_dir / f"{server}-{attr}.log", "a")  # noqa: SIM115
    # cwd = the apps directory: bench_app imports, and no zerohttp/ source tree shadows the
    # installed package (python -m puts the current directory first on sys.path)
    proc = subprocess.Popen(["taskset", "-c", pb.SERVER_CPU, *argv], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=APPS, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not pb.http_ok(base + "/json"):
            if proc.poll() is not None or time.monotonic() > deadline:
                res["error"] = f"no 200 on {base}/json (exit={proc.poll()}), see {log.name}"
                print(f"  !! {server} {attr}: {res['error']}", file=sys.stderr)
                return res
            time.sleep(0.2)
        res["pids"] = pb.tree(proc.pid)
        res["verify"] = verify(base, tests, expected)
        bad = [t for t, v in res["verify"].items() if not v["ok"]]
        res["correct"] = not bad
        print(f"  {server} {attr}: pids {res['pids']}, verify "
              f"{'OK' if not bad else 'FAILED ' + ','.join(bad)}", file=sys.stderr)  # fmt: skip
        pb.wrk(base + TESTS[tests[0]][1], args.conns, 2, [])  # warm-up, discarded
        for t in tests:
            quiet = pb.wait_quiet(args.quiet_wait, pb.tree(proc.pid))
            with pb.Probe(proc.pid) as pr:
                r = pb.wrk(base + TESTS[t][1], args.conns, args.duration, [])
            r.update(pr.as_dict(), **quiet)
            r["cpu_us_per_req"] = (round(r["server_cpu_s"] / r["requests"] * 1e6, 1)
                                   if r["requests"] else None)  # fmt: skip
            size = len(expected[TESTS[t][2]])
            r["short_responses"] = r["bytes_per_resp"] < size
            res["tests"][t] = r
            print(f"    {t}: {r['rps']:.0f} req/s, p99 {r['p99_ms']} ms, non2xx {r['non2xx']}, "
                  f"sockerr {sum(r['socket_errors'].values())}, srv CPU {r['server_cpu_util']:.2f}, "
                  f"{r['cpu_us_per_req']} us/req, wrk CPU {r['client_cpu_s'] / args.duration:.2f}, "
                  f"others {r['foreign_cpu_frac']:.2f} {r['foreign_top'][:1]}", file=sys.stderr)
        if args.strace and not args.straced.get((server, attr)):
            args.straced[(server, attr)] = True
            res["strace"] = {}
            for t in tests:
                if t in ("medium", "zh-static-medium", "st-static-medium"):
                    s = pb.strace_counts(proc.pid, base + TESTS[t][1], args.conns, 3)
                    res["strace"][t] = s
                    print(f"    strace {t}: {s.get('calls')}", file=sys.stderr)
    except Exception as e:  # keep going with the other servers
        res["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
        print(f"  !! {server} {attr}: {res['error']}", file=sys.stderr)
    finally:
        pb.stop(proc)
        log.close()
    return res


# ----------------------------------------------------------------- report
def fmt_rate(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def samples(rounds: list[list[dict[str, Any]]], server: str, test: str) -> list[dict[str, Any]]:
    out = []
    for rnd in rounds:
        for res in rnd:
            if res["server"] == server and test in res.get("tests", {}):
                out.append(res["tests"][test])
    return out


def median_of(rounds: list[list[dict[str, Any]]], server: str, test: str, key: str) -> float | None:
    vals = [s[key] for s in samples(rounds, server, test) if s.get(key) is not None]
    return statistics.median(vals) if vals else None


def invalid(rounds: list[list[dict[str, Any]]], server: str, test: str) -> bool:
    for rnd in rounds:
        for res in rnd:
            v = res.get("verify", {}).get(test)
            if res["server"] == server and v is not None and not v["ok"]:
                return True
    return any(s["non2xx"] or s["short_responses"] for s in samples(rounds, server, test))


def flags(rounds: list[list[dict[str, Any]]], server: str, test: str, duration: float) -> str:
    ss = samples(rounds, server, test)
    out = []
    if invalid(rounds, server, test):
        out.append("INVALID")
    if any(s["client_cpu_s"] / duration > 0.9 for s in ss):
        out.append("cb")
    if any(s["foreign_cpu_frac"] > 0.10 for s in ss):
        out.append("noisy")
    return (" " + " ".join(out)) if out else ""


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def report(data: dict[str, Any], tests: list[str], command: str) -> str:
    rounds, dur = data["rounds"], data["args"]["duration"]
    env = data["env"]
    lines = [
        "## ASGI hosting",
        "",
        "One FastAPI app under `zerohttp --app`, uvicorn and Granian, same python environment.",
        "",
        "```",
        command,
        "```",
        "",
        f"Run started {data['stamp']}, {data['args']['rounds']} round(s), servers interleaved "
        f"(order rotated each round); each server one process pinned to CPU 0, "
        f"`taskset -c 1 wrk -t1 -c{data['args']['conns']} -d{dur:g}s` keep-alive, loopback. "
        f"App: `benchmarks/apps/bench_app.py` (FastAPI: `FileResponse` for /small and "
        f"/medium, a dict for /json, a static-files app mounted at /static). "
        f"Raw: `{data['out']}`.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + "; " + installed_text(env) + ".  ",
        "Servers: `zerohttp --app bench_app:ATTR --loop uvloop --log-level warning`; "
        "`uvicorn bench_app:ATTR --loop uvloop --http httptools --no-access-log --workers 1`; "
        "`granian --interface asgi --workers 1 --runtime-threads 1 --http 1 --no-ws "
        "--loop uvloop --log-level warning --no-access-log bench_app:ATTR`.",
        "",
    ]
    if not env["static_files"]:
        lines += ["`zerohttp.StaticFiles` is not in the installed zerohttp yet: its rows are "
                  "left out.", ""]  # fmt: skip
    lines += ["Medians of req/s over rounds (flags: `cb` wrk > 90 % of its core, `noisy` other "
              "processes > 10 % of a core in a round, `INVALID` wrong bytes or non-2xx):", ""]
    lines += ["| server | " + " | ".join(HEADINGS[t] for t in tests) + " |",
              "|---|" + "---:|" * len(tests)]  # fmt: skip
    for s in SERVERS:
        cells = [fmt_rate(median_of(rounds, s, t, "rps")) + flags(rounds, s, t, dur) for t in tests]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Server CPU µs per request (utime+stime of the server's process tree, /proc), "
              "medians:", ""]  # fmt: skip
    lines += ["| server | " + " | ".join(HEADINGS[t] for t in tests) + " |",
              "|---|" + "---:|" * len(tests)]  # fmt: skip
    for s in SERVERS:
        cells = []
        for t in tests:
            v = median_of(rounds, s, t, "cpu_us_per_req")
            cells.append("–" if v is None else f"{v:.0f}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Every round (req/s), to show the noise:", ""]
    lines += ["| server | test | " + " | ".join(f"r{i + 1}" for i in range(len(rounds)))
              + " | others (cores) |", "|---|---|" + "---:|" * len(rounds) + "---|"]  # fmt: skip
    for s in SERVERS:
        for t in tests:
            ss = samples(rounds, s, t)
            if ss:
                lines.append(f"| {s} | {t} | " + " | ".join(fmt_rate(x["rps"]) for x in ss)
                             + " | " + ", ".join(f"{x['foreign_cpu_frac']:.2f}" for x in ss) + " |")  # fmt: skip
    lines += ["", "Ratios of medians (same run):", "",
              "| test | zerohttp / uvicorn | zerohttp / Granian |", "|---|---:|---:|"]  # fmt: skip
    for t in tests:
        z = median_of(rounds, "zerohttp", t, "rps")
        cells = [ratio(z, median_of(rounds, p, t, "rps")) for p in ("uvicorn", "granian")]
        lines.append(f"| {HEADINGS[t]} | " + " | ".join("–" if c is None else f"{c:.2f}×"
                                                        for c in cells) + " |")  # fmt: skip
    lines += ["", "| target | wanted | measured | met |", "|---|---|---:|---|"]
    for name, wanted, got in targets(rounds):
        met = "–" if got is None else ("yes" if got >= wanted else "**no**")
        shown = "not measured" if got is None else f"{got:.2f}×"
        lines.append(f"| {name} | ≥ {wanted:g}× | {shown} | {met} |")
    lines += ["", "Correctness (curl, every URL, every server, every round): " + correctness(rounds)]
    st = strace_lines(rounds)
    if st:
        lines += ["", *st]
    return "\n".join(lines)


def installed_text(env: dict[str, Any]) -> str:
    if not env["stale_files"]:
        return f"zerohttp installed = main's HEAD {env['repo_head']}"
    if env["installed_commit"]:
        return (f"zerohttp installed = commit {env['installed_commit']} (main's HEAD, "
                f"{env['repo_head']}, differs in {len(env['stale_files'])} files)")  # fmt: skip
    return (f"zerohttp installed matches no recent commit: **{len(env['stale_files'])} files "
            f"differ from HEAD {env['repo_head']} or are missing**")  # fmt: skip


def targets(rounds: list[list[dict[str, Any]]]) -> list[tuple[str, float, float | None]]:
    def m(s: str, t: str) -> float | None:
        return median_of(rounds, s, t, "rps")

    z_static = m("zerohttp", "zh-static-medium")
    return [
        ("/small vs uvicorn", 1.5, ratio(m("zerohttp", "small"), m("uvicorn", "small"))),
        ("/medium vs uvicorn", 2.0, ratio(m("zerohttp", "medium"), m("uvicorn", "medium"))),
        ("/json vs uvicorn", 1.0, ratio(m("zerohttp", "json"), m("uvicorn", "json"))),
        ("/medium vs Granian (ahead)", 1.0, ratio(m("zerohttp", "medium"), m("granian", "medium"))),
        ("zerohttp.StaticFiles under zerohttp vs Starlette StaticFiles under uvicorn, 100 KiB", 5.0,
         ratio(z_static, m("uvicorn", "st-static-medium"))),
    ]  # fmt: skip


def correctness(rounds: list[list[dict[str, Any]]]) -> str:
    bad, framing = [], {}
    for rnd in rounds:
        for res in rnd:
            if "error" in res:
                bad.append(f"{res['server']} {res['app']}: {res['error']}")
            for t, v in res.get("verify", {}).items():
                framing.setdefault(res["server"], {})[t] = v["framing"]
                if not v["ok"]:
                    bad.append(f"{res['server']} {t}: status {v['status']}, {v['size']} bytes")
    text = "all bytes as expected." if not bad else "**FAILED**: " + "; ".join(sorted(set(bad)))
    cl = {s: sorted({f for f in d.values()}) for s, d in framing.items()}
    return text + " Framing: " + "; ".join(f"{s} {'/'.join(v)}" for s, v in cl.items()) + "."


def strace_lines(rounds: list[list[dict[str, Any]]]) -> list[str]:
    rows = []
    for rnd in rounds:
        for res in rnd:
            for t, s in res.get("strace", {}).items():
                calls, n = s.get("calls", {}), s.get("wrk_requests_while_loaded")
                if calls:
                    rows.append(f"| {res['server']} | {t} | " + " | ".join(
                        str(calls.get(k, 0)) for k in STRACE_KEYS) + f" | {n or '–'} |")  # fmt: skip
    if not rows:
        return []
    return ["Syscalls while loaded (`strace -f -c`, 3 s, first round; strace slows the server, "
            "read the mix, not the rate):", "",
            "| server | test | " + " | ".join(STRACE_KEYS) + " | wrk requests |",
            "|---|---|" + "---:|" * (len(STRACE_KEYS) + 1), *rows]  # fmt: skip


# ----------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/tmp/zerohttp-bench-venv/bin/python",
                    help="python of the environment with zerohttp, fastapi, uvicorn, granian")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--tests", default=",".join(TESTS), help="comma-separated subset of "
                    + ",".join(TESTS))  # fmt: skip
    ap.add_argument("--root", type=Path, default=Path("/tmp/asgi-bench-root"))
    ap.add_argument("--quiet-wait", type=float, default=20,
                    help="seconds to wait before a test for the rest of the box to go idle")
    ap.add_argument("--strace", action="store_true", help="count syscalls under the 100 KiB "
                    "loads once per server (first round)")  # fmt: skip
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/asgi-bench-results"))
    ap.add_argument("--command", default=None, help="command line to print in the report")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="print the report of an earlier run's results.json and exit")
    args = ap.parse_args()
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        tests = [t for t in TESTS if any(t in res.get("tests", {})
                                         for rnd in data["rounds"] for res in rnd)]  # fmt: skip
        print(report(data, tests, args.command or data.get("command", "")))
        return
    args.straced = {}
    env = probe_env(args.python)
    expected = {**build_root(args.root), "json": JSON_BYTES}
    tests = [t for t in args.tests.split(",") if t]
    unknown = set(tests) - set(TESTS)
    if unknown:
        sys.exit(f"asgi_bench: unknown tests {sorted(unknown)}")
    if not env["static_files"]:
        tests = [t for t in tests if not t.startswith("zh-static")]
        print("asgi_bench: zerohttp.StaticFiles not installed: its tests are left out",
              file=sys.stderr)  # fmt: skip
    if env["stale_files"]:
        print(f"asgi_bench: WARNING: {installed_text(env)}: {env['stale_files']}",
              file=sys.stderr)  # fmt: skip
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out_dir / stamp
    out.mkdir(parents=True, exist_ok=True)
    by_app = {a: [t for t in tests if TESTS[t][0] == a] for a in (APP_ZH, APP_ST, APP_RAW)}
    rounds: list[list[dict[str, Any]]] = []
    t0 = time.monotonic()
    for r in range(args.rounds):
        order = SERVERS[r % len(SERVERS):] + SERVERS[:r % len(SERVERS)]
        rnd = []
        for server in order:
            for attr, ts in by_app.items():
                if ts:
                    print(f"[round {r + 1}/{args.rounds}] {server} {attr}", file=sys.stderr)
                    rnd.append(run_one(server, attr, ts, args, expected, out))
        rounds.append(rnd)
    command = args.command or "python3 benchmarks/asgi_bench.py " + shlex.join(sys.argv[1:])
    vals = {k: v for k, v in vars(args).items() if k != "straced"}
    data = dict(stamp=stamp, out=str(out / "results.json"), env=env, rounds=rounds, command=command,
                args=json.loads(json.dumps(vals, default=str)),
                wall_s=round(time.monotonic() - t0))  # fmt: skip
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str))
    md = report(data, tests, command)
    (out / "report.md").write_text(md + "\n")
    print(md)
    print(f"asgi_bench: {out / 'results.json'} ({data['wall_s']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
