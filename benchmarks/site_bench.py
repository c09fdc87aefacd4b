"""Compressed text against nginx and Caddy: req/s and bytes on the wire (issue 18).

    python3 benchmarks/site_bench.py                          # this checkout's zerohttp
    python3 benchmarks/site_bench.py --zerohttp main=/work/main --zerohttp new=/work/wt/compress
    python3 benchmarks/site_bench.py --siblings --identity    # + precompressed / uncompressed refs

Two files of a real site, each requested with Chrome's ``Accept-Encoding: gzip, deflate, br,
zstd``: a ~100 KiB JavaScript file (Debian's libjs-jquery, jquery.min.js) and a ~20 KiB HTML
page (Debian's python3-doc), copied into one temporary site directory that every server
serves. Install them with ``apt-get install python3-doc libjs-jquery`` (``--js``/``--html``
take other files). The servers, each one process pinned to CPU 0, all up at once:

- ``nginx``: ``gzip on; gzip_comp_level 6; gzip_vary on`` with gzip_types covering JS and
  HTML, sendfile on, one worker, no access log (apps/nginx_gzip.conf.tmpl). It compresses
  every response again.
- ``caddy``: ``file_server`` with ``encode zstd gzip``, ``GOMAXPROCS=1``, no access log
  (apps/caddy_encode.Caddyfile.tmpl). It compresses every response again.
- ``--zerohttp NAME=DIR`` (repeatable; default: this checkout): ``python -m zerohttp ROOT``
  with ``PYTHONPATH=DIR`` from /tmp, its default settings (compression on) and
  ``--access-log off``. Before any load each file is requested with the encoding until a
  response carries ``Content-Encoding`` (``--warm-timeout``), so its compressed copy is made.
- ``--identity``: the first tree with ``--compress none --precompressed none`` (reference).
- ``--siblings``: the first tree on a second root that also holds ``.zst``/``.br``/``.gz``
  siblings made by this script (zstd 19, brotli 11, gzip 9), served by zerohttp's default
  ``--precompressed`` (reference; it exercises the harness where compression is missing).

First, for every server and file, one request on a raw socket gives the Content-Encoding it
chose, the head, the body as sent and the total on the wire (head + body with any chunk
framing); ``curl --compressed`` with the same header must decode to the file's bytes. Then
rounds (the server order rotates every round): per server and file ``wrk -t1 -cCONNS`` on
CPU 1, keep-alive, with the same header. Reported: median req/s, server CPU µs per request
and wrk's bytes per response; zerohttp's ratio to nginx and to Caddy taken per round then the
median, with each peer's absolute rate beside it; PASS/FAIL for the issue's targets (req/s >=
3x nginx gzip 6 and >= 3x Caddy, both files; bytes on the wire <= each peer's).

The whole run holds ``flock -x /tmp/zh-bench.lock`` (taken here; when this script is started
under ``flock -x`` on the same file the parent's lock is seen and used).
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
PEERBENCH = Path(os.environ.get("PEERBENCH", REPO.parent.parent / "shared" / "peerbench"))
if not PEERBENCH.is_dir():
    PEERBENCH = REPO.parent / "shared" / "peerbench"
sys.path.insert(0, str(PEERBENCH))
import bench as pb  # noqa: E402  (peerbench's measuring code: wrk, Probe, wait_quiet, stop)

CHROME_AE = "gzip, deflate, br, zstd"
LOCK = "/tmp/zh-bench.lock"
TARGET_RATIO = 3.0
MEDIAN_KEYS = ("rps", "us", "bytes_per_resp", "p99_ms", "others")
JS_CANDIDATES = ["/usr/share/javascript/jquery/jquery.min.js"]
HTML_CANDIDATES = [
    f"/usr/share/doc/{pkg}/html/library/copy.html"
    for pkg in ("python3-doc", "python3", "python3.11-doc", "python3.11", "python3.12-doc")
]
# The siblings, made as a build step would (its most: zstd 19, brotli 11, gzip 9).
SIBLINGS_SCRIPT = """
import sys, brotli
from backports import zstd
data = open(sys.argv[1], "rb").read()
open(sys.argv[1] + ".br", "wb").write(brotli.compress(data, quality=11))
open(sys.argv[1] + ".zst", "wb").write(zstd.compress(data, level=19))
"""


@dataclass
class Server:
    name: str
    kind: str  # nginx, caddy, zerohttp
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/tmp"
    reference: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://{pb.HOST}:{self.port}{path}"


@dataclass
class Wire:
    """One response as it crossed the socket."""

    status: int
    coding: str
    head: int
    body: int  # the body as sent (chunk framing removed), i.e. the encoded bytes
    total: int  # everything read: head + body + any chunk framing
    framing: str


# --------------------------------------------------------------------------- lock
def parent_holds_lock() -> bool:
    """True when we run as ``flock -x LOCK python3 site_bench.py``: the lock is ours already."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return bool(argv) and os.path.basename(argv[0]) == b"flock" and LOCK.encode() in argv


def take_lock() -> Any:
    handle = open(LOCK, "a")  # noqa: SIM115  (held until exit)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"site_bench: waiting for {LOCK} (another run or test holds it)", file=sys.stderr)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


# --------------------------------------------------------------------------- the site
def pick(given: str | None, candidates: list[str], what: str) -> Path:
    for p in [given] if given else candidates:
        if p and Path(p).is_file():
            return Path(p).resolve()
    sys.exit(
        f"site_bench: no {what} file ({given or ', '.join(candidates)}); "
        "apt-get install python3-doc libjs-jquery, or pass --js/--html"
    )


def build_site(root: Path, sources: list[Path]) -> dict[str, bytes]:
    """Copy the sources into root under their own names: URL path -> expected bytes."""
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for src in sources:
        data = src.read_bytes()
        (root / src.name).write_bytes(data)
        files["/" + src.name] = data
    return files


def make_siblings(root: Path, names: list[str], python: str) -> None:
    for name in names:
        path = root / name
        path.with_name(name + ".gz").write_bytes(gzip.compress(path.read_bytes(), 9, mtime=0))
        subprocess.run([python, "-c", SIBLINGS_SCRIPT, str(path)], check=True)


# --------------------------------------------------------------------------- servers
def server_list(args: argparse.Namespace, root: Path, sib_root: Path) -> list[Server]:
    servers = [
        Server(
            "nginx",
            "nginx",
            [
                "/usr/sbin/nginx",
                "-e",
                "{run}/nginx-error.log",
                "-p",
                "{run}",
                "-c",
                "{run}/nginx.conf",
            ],
        ),
        Server(
            "caddy",
            "caddy",
            ["/usr/bin/caddy", "run", "--config", "{run}/Caddyfile", "--adapter", "caddyfile"],
            env={
                "GOMAXPROCS": "1",
                "HOME": "{run}",
                "XDG_CONFIG_HOME": "{run}",
                "XDG_DATA_HOME": "{run}",
            },
        ),
    ]
    trees = [t.partition("=")[::2] for t in args.zerohttp] or [("zerohttp", str(REPO))]
    extra = shlex.split(args.zerohttp_args)

    def zerohttp(name: str, tree: str, site: Path, options: list[str], ref: bool) -> Server:
        argv = [
            args.python,
            "-m",
            "zerohttp",
            str(site),
            "--host",
            pb.HOST,
            "--port",
            "{port}",
            "--log-level",
            "warning",
            "--access-log",
            "off",
            *extra,
            *options,
        ]
        return Server(name, "zerohttp", argv, {"PYTHONPATH": tree} if tree else {}, reference=ref)

    for name, tree in trees:
        servers.append(zerohttp(name, tree, root, [], False))
    first_name, first_tree = trees[0]
    if args.identity:
        off = ["--compress", "none", "--precompressed", "none"]
        servers.append(zerohttp(f"{first_name}-identity", first_tree, root, off, True))
    if args.siblings:  # zerohttp's default --precompressed serves them
        servers.append(zerohttp(f"{first_name}-siblings", first_tree, sib_root, [], True))
    return servers


def start(server: Server, port: int, root: Path, run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    ctx = {"port": str(port), "root": str(root), "run": str(run)}
    if server.kind == "nginx":
        conf = (APPS / "nginx_gzip.conf.tmpl").read_text().format(**ctx)
        (run / "nginx.conf").write_text(conf)
    elif server.kind == "caddy":
        conf = (APPS / "caddy_encode.Caddyfile.tmpl").read_text().format(**ctx)
        (run / "Caddyfile").write_text(conf)
    server.port = port
    server.argv = [a.format(**ctx) for a in server.argv]
    server.env = {k: v.format(**ctx) for k, v in server.env.items()}
    env = dict(os.environ, **server.env)
    if server.kind == "zerohttp" and "PYTHONPATH" not in server.env:
        env.pop("PYTHONPATH", None)  # the interpreter's installed zerohttp
    log = open(run / f"{server.name}.log", "wb")  # noqa: SIM115  (the child keeps it)
    server.proc = subprocess.Popen(
        ["taskset", "-c", pb.SERVER_CPU, *server.argv],
        cwd=server.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_up(server: Server, path: str, run: Path) -> None:
    deadline = time.monotonic() + 30
    assert server.proc is not None
    while not pb.http_ok(server.url(path)):
        if server.proc.poll() is not None or time.monotonic() > deadline:
            log = (run / f"{server.name}.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"site_bench: {server.name} did not answer 200 on {path}\n{log}")
        time.sleep(0.2)


def command_line(server: Server) -> str:
    env = " ".join(f"{k}={v}" for k, v in server.env.items())
    return " ".join(filter(None, [env, "taskset -c 0", shlex.join(server.argv)]))


# --------------------------------------------------------------------------- one response
def recv_until(sock: socket.socket, buf: bytearray, marker: bytes) -> int:
    while (i := buf.find(marker)) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before " + repr(marker))
        buf += chunk
    return i


def recv_exactly(sock: socket.socket, buf: bytearray, n: int) -> None:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk


def wire_get(port: int, path: str) -> Wire:
    """GET path with Chrome's Accept-Encoding over a keep-alive socket; count what arrives."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {pb.HOST}:{port}\r\nAccept-Encoding: {CHROME_AE}\r\n"
        "User-Agent: site_bench\r\nAccept: */*\r\n\r\n"
    ).encode()
    with socket.create_connection((pb.HOST, port), timeout=10) as sock:
        sock.sendall(request)
        buf = bytearray()
        end = recv_until(sock, buf, b"\r\n\r\n") + 4
        head = bytes(buf[:end]).decode("latin-1")
        del buf[:end]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                fields[name.strip().lower()] = value.strip()
        if "chunked" in fields.get("transfer-encoding", "").lower():
            framing, body, raw = "chunked", 0, 0
            while True:
                i = recv_until(sock, buf, b"\r\n")
                size = int(bytes(buf[:i]).split(b";")[0], 16)
                recv_exactly(sock, buf, i + 2 + size + 2)
                raw += i + 2 + size + 2
                body += size
                del buf[: i + 2 + size + 2]
                if size == 0:  # no trailers from any of these servers: the CRLF was the end
                    break
        else:
            framing = "content-length"
            body = raw = int(fields.get("content-length", "0"))
            recv_exactly(sock, buf, body)
    coding = fields.get("content-encoding", "identity")
    return Wire(status, coding, end, body, end + raw, framing)


def decodes_to(url: str, expected: bytes) -> bool:
    """curl --compressed with the same header gives back the file's bytes."""
    p = subprocess.run(
        [
            "curl",
            "-s",
            "--compressed",
            "--max-time",
            "20",
            "-H",
            f"Accept-Encoding: {CHROME_AE}",
            "-o",
            "-",
            url,
        ],
        capture_output=True,
        timeout=30,
    )
    return (
        p.returncode == 0 and hashlib.sha256(p.stdout).digest() == hashlib.sha256(expected).digest()
    )


def warm(server: Server, path: str, timeout: float) -> str:
    """Ask until the compressed copy is served (zerohttp makes it in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        coding = wire_get(server.port, path).coding
        if coding != "identity" or time.monotonic() > deadline:
            return coding
        time.sleep(0.1)


# --------------------------------------------------------------------------- report
def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--zerohttp",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="zerohttp from this source tree, run with PYTHONPATH=DIR (empty DIR: "
        "the interpreter's installed package); repeatable; default: "
        "zerohttp=this checkout",
    )
    ap.add_argument(
        "--zerohttp-args",
        default="",
        metavar="ARGS",
        help="extra options for every zerohttp, e.g. '--compress br,gzip'",
    )
    ap.add_argument(
        "--identity",
        action="store_true",
        help="also the first tree with --compress none --precompressed none",
    )
    ap.add_argument(
        "--siblings",
        action="store_true",
        help="also the first tree serving .zst/.br/.gz siblings made here",
    )
    ap.add_argument("--no-peers", action="store_true", help="no nginx, no Caddy")
    ap.add_argument(
        "--python",
        default="/work/main/.venv/bin/python",
        help="runs zerohttp (needs its dependencies: h11, brotli, backports.zstd...)",
    )
    ap.add_argument("--js", help=f"the JavaScript file (default {JS_CANDIDATES[0]})")
    ap.add_argument("--html", help=f"the HTML page (default {HTML_CANDIDATES[0]})")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10, help="per wrk point")
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=5.0,
        help="before each point, wait up to this long for the box to be idle",
    )
    ap.add_argument(
        "--warm-timeout",
        type=float,
        default=30.0,
        help="how long zerohttp may take to serve a file compressed",
    )
    ap.add_argument("--no-lock", action="store_true", help=f"do not take {LOCK}")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", metavar="FILE", help="every figure, as JSON")
    args = ap.parse_args()
    for tool in ("wrk", "curl", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"site_bench: {tool} is not installed")

    sources = [pick(args.js, JS_CANDIDATES, "JavaScript"), pick(args.html, HTML_CANDIDATES, "HTML")]
    lock = None if args.no_lock or parent_holds_lock() else take_lock()
    work = Path(tempfile.mkdtemp(prefix="zh-site-bench-"))
    root, sib_root = work / "site", work / "site-siblings"
    files = build_site(root, sources)
    for src, path in zip(sources, files, strict=True):
        print(
            f"file {path}: {len(files[path]):,} bytes ({len(files[path]) / 1024:.1f} KiB) "
            f"from {src}",
            file=sys.stderr,
        )
    if args.siblings:
        build_site(sib_root, sources)
        make_siblings(sib_root, [p.lstrip("/") for p in files], args.python)
    servers = server_list(args, root, sib_root)
    if args.no_peers:
        servers = [s for s in servers if s.kind == "zerohttp"]
    first = next(iter(files))
    wire: dict[str, dict[str, Wire]] = {}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        s.name: {p: [] for p in files} for s in servers
    }
    try:
        for i, s in enumerate(servers):
            site = sib_root if s.name.endswith("-siblings") else root
            start(s, pb.free_port(18900 + 10 * i), site, work / f"run-{s.name}")
            wait_up(s, first, work / f"run-{s.name}")
            wire[s.name] = {}
            for path, data in files.items():
                coding = warm(s, path, args.warm_timeout if s.kind == "zerohttp" else 0)
                if coding == "identity" and not s.name.endswith("-identity"):
                    print(
                        f"  !! {s.name} {path}: no Content-Encoding (after "
                        f"{args.warm_timeout if s.kind == 'zerohttp' else 0:g} s): "
                        "measuring the identity response",
                        file=sys.stderr,
                    )
                if not decodes_to(s.url(path), data):
                    raise SystemExit(
                        f"site_bench: {s.name} {path}: curl --compressed "
                        "did not decode to the file's bytes"
                    )
                w = wire_get(s.port, path)
                if w.status != 200 or w.coding != coding:
                    raise SystemExit(f"site_bench: {s.name} {path}: {w}")
                wire[s.name][path] = w
                print(
                    f"{s.name} {path}: {w.coding}, {w.total:,} bytes on the wire", file=sys.stderr
                )
                pb.wrk(s.url(path), args.conns, 2, [f"Accept-Encoding: {CHROME_AE}"])  # warm-up
        names = [s.name for s in servers]
        by_name = {s.name: s for s in servers}
        for k in range(args.rounds):
            order = names[k % len(names) :] + names[: k % len(names)]
            if k % 2:
                order.reverse()
            for name in order:
                s = by_name[name]
                assert s.proc is not None
                for path in files:
                    pb.wait_quiet(args.quiet_wait, pb.tree(s.proc.pid))
                    with pb.Probe(s.proc.pid) as pr:
                        r = pb.wrk(
                            s.url(path), args.conns, args.seconds, [f"Accept-Encoding: {CHROME_AE}"]
                        )
                    n = r["requests"]
                    x = dict(
                        rps=r["rps"],
                        us=pr.cpu / n * 1e6 if n else float("nan"),
                        bytes_per_resp=r["bytes_per_resp"],
                        others=pr.foreign / pr.wall,
                        p99_ms=r["p99_ms"],
                        bad=r["non2xx"] + sum(r["socket_errors"].values()),
                    )
                    runs[name][path].append(x)
                    print(
                        f"round {k + 1} {name} {path}: {x['rps']:,.0f} req/s "
                        f"{x['us']:.1f} µs/req {x['bytes_per_resp']:,.0f} B/resp "
                        f"others {x['others']:.2f}"
                        + (f" ERRORS {x['bad']:.0f}" if x["bad"] else ""),
                        file=sys.stderr,
                    )
    finally:
        for s in servers:
            if s.proc is not None:
                pb.stop(s.proc)
        if lock is not None:
            lock.close()
    report(args, servers, files, sources, wire, runs)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                dict(
                    files={p: len(d) for p, d in files.items()},
                    sources=[str(s) for s in sources],
                    commands={s.name: command_line(s) for s in servers},
                    wire={n: {p: vars(w) for p, w in ws.items()} for n, ws in wire.items()},
                    runs=runs,
                ),
                indent=1,
            )
        )
    if args.keep:
        print(f"kept {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


def report(
    args: argparse.Namespace,
    servers: list[Server],
    files: dict[str, bytes],
    sources: list[Path],
    wire: dict[str, dict[str, Wire]],
    runs: dict[str, dict[str, list[dict[str, float]]]],
) -> None:
    names = [s.name for s in servers]
    peers = [s.name for s in servers if s.kind != "zerohttp"]
    ours = [s.name for s in servers if s.kind == "zerohttp"]
    print(f"```\n{shlex.join(['python3', 'benchmarks/site_bench.py', *sys.argv[1:]])}\n```\n")
    print(
        ", ".join(
            f"`{p}` {len(d):,} B ({src})"
            for (p, d), src in zip(files.items(), sources, strict=True)
        )
        + "."
    )
    print(
        f"Every request: `Accept-Encoding: {CHROME_AE}` (Chrome's). `wrk -t1 -c{args.conns} "
        f"-d{args.seconds}s` keep-alive on CPU 1, each server one process on CPU 0, "
        f"{args.rounds} interleaved rounds; medians.\n"
    )

    print("### Requests per second\n")
    print("| server | file | coding | req/s | CPU µs/req | wrk B/resp | p99 ms | others | errors |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for n in names:
        for p in files:
            xs = runs[n][p]
            m = {key: med([x[key] for x in xs]) for key in MEDIAN_KEYS}
            print(
                f"| {n} | {p} | {wire[n][p].coding} | {m['rps']:,.0f} | {m['us']:.1f} | "
                f"{m['bytes_per_resp']:,.0f} | {m['p99_ms']:.2f} | {m['others']:.2f} | "
                f"{sum(x['bad'] for x in xs):.0f} |"
            )

    print("\n### Bytes on the wire (one response, raw socket)\n")
    print("| server | file | coding | framing | head B | body B | total B | body ÷ file |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for n in names:
        for p, data in files.items():
            w = wire[n][p]
            print(
                f"| {n} | {p} | {w.coding} | {w.framing} | {w.head:,} | {w.body:,} | "
                f"{w.total:,} | {w.body / len(data):.3f} |"
            )

    results: list[tuple[str, bool]] = []
    print("\n### Targets (issue 18)\n")
    print(
        "| zerohttp | file | against | peer req/s | zerohttp req/s | ratio (per-round median) "
        "| wanted | met |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|")
    for z in ours:
        for p in files:
            for peer in peers:
                ratios = [
                    a["rps"] / b["rps"]
                    for a, b in zip(runs[z][p], runs[peer][p], strict=True)
                    if b["rps"]
                ]
                ratio = med(ratios)
                ok = ratio >= TARGET_RATIO
                results.append((z, ok))
                print(
                    f"| {z} | {p} | {peer} | {med([x['rps'] for x in runs[peer][p]]):,.0f} | "
                    f"{med([x['rps'] for x in runs[z][p]]):,.0f} | {ratio:.2f}x | "
                    f">= {TARGET_RATIO:.0f}x | {'PASS' if ok else '**FAIL**'} |"
                )
    print("\n| zerohttp | file | against | peer total B | zerohttp total B | met |")
    print("|---|---|---|---:|---:|---|")
    for z in ours:
        for p in files:
            for peer in peers:
                ok = wire[z][p].total <= wire[peer][p].total
                results.append((z, ok))
                print(
                    f"| {z} | {p} | {peer} | {wire[peer][p].total:,} | {wire[z][p].total:,} | "
                    f"{'PASS' if ok else '**FAIL**'} |"
                )
    print()
    for z in ours:
        ref = " (reference)" if next(s for s in servers if s.name == z).reference else ""
        verdict = all(ok for name, ok in results if name == z)
        print(f"- {z}{ref}: {'PASS' if verdict else 'FAIL'}")
    print()
    for s in servers:
        print(f"- {s.name}: `{command_line(s)}`")


if __name__ == "__main__":
    main()
