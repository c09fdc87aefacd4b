"""Production-operation costs against peers in the same run: the access log, and TLS.

    python3 benchmarks/ops_bench.py --python /tmp/zerohttp-bench-venv/bin/python --rounds 3

Each server is pinned to CPU 0, wrk/curl to CPU 1, on loopback, the servers interleaved
per round; medians are printed as a Markdown table with the ratios the issue asks for:
1 KiB keep-alive with ``--access-log combined``, ``common`` and ``json`` to a file against
the same server without a log (targets 0.9x, 0.9x, 0.85x) and combined against Granian
without a log (>= 1.3x), and over TLS: 1 KiB keep-alive req/s against Granian with TLS
(>= 1.0x) and 1 GiB GB/s and server CPU s/GB against nginx with TLS (>= 0.8x, <= 1.3x).
``--only log`` or ``--only tls`` runs half of it. Uses peerbench's corpus
(/tmp/peerbench-root) and venv (/tmp/peerbench-venv, for Granian).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

CORPUS = Path("/tmp/peerbench-root")
PEERBENCH = Path(
    os.environ.get("PEERBENCH", Path(__file__).resolve().parents[2] / "shared" / "peerbench")
)
if not PEERBENCH.is_dir():  # a worktree under /work/wt
    PEERBENCH = Path(__file__).resolve().parents[3] / "shared" / "peerbench"
GRANIAN = "/tmp/peerbench-venv/bin/granian"
HZ = os.sysconf("SC_CLK_TCK")

NGINX_TLS = """daemon off; master_process on; worker_processes 1; user root;
pid {run}/nginx.pid; error_log {run}/nginx-error.log warn;
events {{ worker_connections 4096; use epoll; }}
http {{
    include /etc/nginx/mime.types; default_type application/octet-stream;
    sendfile on; tcp_nopush on; tcp_nodelay on; access_log off;
    open_file_cache max=1000 inactive=60s; keepalive_requests 10000000;
    client_body_temp_path {run}/body; proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi; uwsgi_temp_path {run}/uwsgi; scgi_temp_path {run}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {cert}; ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {root}; location / {{ }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_cpu(pid: int) -> float:
    """utime+stime of ``pid`` and its children, in seconds."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / HZ
    return total


class Server:
    def __init__(self, name: str, argv: Sequence[str], port: int, scheme: str, prefix: str = ""):
        self.name, self.argv, self.port, self.scheme, self.prefix = name, argv, port, scheme, prefix
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.prefix}{path}"

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", *self.argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ok = subprocess.run(
                ["curl", "-ks", "-o", "/dev/null", "-w", "%{http_code}", self.url("/small.html")],
                capture_output=True,
                text=True,
            ).stdout
            if ok == "200":
                return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def wrk(server: Server, seconds: int) -> tuple[float, float]:
    """(req/s, server CPU µs per request) for 1 KiB keep-alive, 64 connections."""
    assert server.proc is not None
    before = tree_cpu(server.proc.pid)
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", server.url("/small.html")],
        capture_output=True,
        text=True,
    ).stdout
    used = tree_cpu(server.proc.pid) - before
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rate = float(match.group(1)) if match else 0.0
    return rate, (used / (rate * seconds) * 1e6) if rate else 0.0


def huge(server: Server) -> tuple[float, float, float]:
    """(GB/s, server+curl CPU s per GB, server CPU s per GB) for one 1 GiB download."""
    assert server.proc is not None
    size = (CORPUS / "huge.bin").stat().st_size
    before = tree_cpu(server.proc.pid)
    started = time.monotonic()
    usage0 = os.times()
    subprocess.run(
        ["taskset", "-c", "1", "curl", "-ks", "-o", "/dev/null", server.url("/huge.bin")],
        check=True,
    )
    elapsed = time.monotonic() - started
    usage1 = os.times()
    client = (usage1.children_user - usage0.children_user) + (
        usage1.children_system - usage0.children_system
    )
    server_cpu = tree_cpu(server.proc.pid) - before
    gb = size / 1e9
    return gb / elapsed, (server_cpu + client) / gb, server_cpu / gb


def warm(server: Server) -> None:
    """Two seconds of the load, not measured."""
    subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d2s", server.url("/small.html")],
        capture_output=True,
    )


def granian_server(name: str, extra: Sequence[str], scheme: str = "http") -> Server:
    """Granian serving the corpus on its static route (peerbench's configuration)."""
    port = free_port()
    argv = [
        GRANIAN, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--runtime-threads", "1", "--http", "1", "--no-ws",
        "--loop", "uvloop", "--log-level", "warning", "--no-access-log",
        "--static-path-route", "/static", "--static-path-mount", str(CORPUS),
        "--working-dir", str(PEERBENCH / "servers"), *extra, "granian_app:app",
    ]  # fmt: skip
    return Server(name, argv, port, scheme, prefix="/static")


def granian_tls_args(cert: Path, pkcs8: Path) -> list[str]:
    """Granian's TLS options (it reads PKCS#8 keys only)."""
    return ["--ssl-certificate", str(cert), "--ssl-keyfile", str(pkcs8),
            "--ssl-protocol-min", "tls1.2"]  # fmt: skip


def nginx_tls_server(work: Path, cert: Path, key: Path) -> Server:
    """nginx with TLS (sendfile does nothing under TLS without kTLS)."""
    port = free_port()
    run = work / f"nginx-{port}"
    run.mkdir()
    conf = NGINX_TLS.format(run=run, port=port, cert=cert, key=key, root=CORPUS)
    (run / "nginx.conf").write_text(conf)
    argv = ["nginx", "-e", str(run / "error.log"), "-p", str(run), "-c", str(run / "nginx.conf")]
    return Server("nginx-tls", argv, port, "https")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default="python3", help="python with zerohttp installed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--downloads", type=int, default=2, help="1 GiB downloads per round")
    parser.add_argument("--only", choices=("all", "log", "tls"), default="all")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zerohttp-ops-bench-"))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    pkcs8 = work / "key8.pem"  # Granian reads PKCS#8 only
    subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(key), "-out", str(pkcs8)],
        check=True,
    )
    zh = [*shlex.split(args.python), "-m", "zerohttp", str(CORPUS), "--log-level", "warning"]
    access_log = work / "access.log"

    def zerohttp(name: str, extra: Sequence[str], scheme: str = "http") -> Server:
        port = free_port()
        return Server(name, [*zh, "--port", str(port), *extra], port, scheme)

    def granian(name: str, extra: Sequence[str], scheme: str = "http") -> Server:
        return granian_server(name, extra, scheme)

    def nginx_tls() -> Server:
        return nginx_tls_server(work, cert, key)

    tls = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    granian_tls = granian_tls_args(cert, pkcs8)

    def logged(form: str) -> Server:
        extra = ["--access-log", form, "--access-log-file", str(access_log)]
        return zerohttp(f"zerohttp-log-{form}", extra)

    small_servers: dict[str, Callable[[], Server]] = {
        "zerohttp": lambda: zerohttp("zerohttp", []),
        "zerohttp-log-combined": lambda: logged("combined"),
        "zerohttp-log-common": lambda: logged("common"),
        "zerohttp-log-json": lambda: logged("json"),
        "granian": lambda: granian("granian", []),
        "zerohttp-tls": lambda: zerohttp("zerohttp-tls", tls, "https"),
        "granian-tls": lambda: granian("granian-tls", granian_tls, "https"),
        "nginx-tls": nginx_tls,
    }
    huge_servers = [lambda: zerohttp("zerohttp-tls", tls, "https"), nginx_tls]
    if args.only == "log":
        small_servers = {k: v for k, v in small_servers.items() if not k.endswith("-tls")}
        huge_servers = []
    elif args.only == "tls":
        small_servers = {k: v for k, v in small_servers.items() if k.endswith("-tls")}
    small: dict[str, list[tuple[float, float]]] = {}
    big: dict[str, list[tuple[float, float, float]]] = {}
    for round_ in range(args.rounds):
        makers = list(small_servers.values())
        for make in makers if round_ % 2 == 0 else makers[::-1]:
            with make() as server:
                warm(server)
                small.setdefault(server.name, []).append(wrk(server, args.seconds))
            access_log.unlink(missing_ok=True)
        for _ in range(args.downloads):  # interleaved: one download per server in turn
            for make in huge_servers:
                with make() as server:
                    big.setdefault(server.name, []).append(huge(server))
        print(f"ops_bench: round {round_ + 1} done", file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    report(args, small, big)


def report(
    args: argparse.Namespace,
    small: dict[str, list[tuple[float, float]]],
    big: dict[str, list[tuple[float, float, float]]],
) -> None:
    def med(values: Sequence[tuple[float, ...]], i: int) -> float:
        return statistics.median(v[i] for v in values)

    print(f"```\npython3 benchmarks/ops_bench.py {shlex.join(sys.argv[1:])}\n```\n")
    print(
        f"{args.rounds} rounds, servers interleaved (the order reversed every other round), "
        f"each pinned to CPU 0, wrk/curl to CPU 1; 1 KiB: `wrk -t1 -c64 -d{args.seconds}s` "
        f"keep-alive; 1 GiB: {args.downloads} `curl` downloads per server a round, "
        "alternating. Granian serves its static route, with and without TLS; nginx with TLS "
        "(sendfile is off under TLS without kTLS). Medians over rounds."
    )
    if small:
        print("\n| server | 1 KiB keep-alive req/s (median) | server CPU µs/req | each round |")
        print("|---|---:|---:|---|")
        for name, values in small.items():
            rounds = ", ".join(f"{v[0]:,.0f}" for v in values)
            print(f"| {name} | {med(values, 0):,.0f} | {med(values, 1):.1f} | {rounds} |")
    if big:
        print("\n| server | 1 GiB over TLS GB/s (median) | server CPU s/GB | srv+curl CPU s/GB |")
        print("|---|---:|---:|---:|")
        for name, values in big.items():
            print(
                f"| {name} | {med(values, 0):.2f} | {med(values, 2):.3f} | {med(values, 1):.2f} |"
            )
    rows = [
        ("`--access-log combined` / without", "zerohttp-log-combined", "zerohttp", 0.9),
        ("`--access-log common` / without", "zerohttp-log-common", "zerohttp", 0.9),
        ("`--access-log json` / without", "zerohttp-log-json", "zerohttp", 0.85),
        ("`--access-log combined` / Granian, no log", "zerohttp-log-combined", "granian", 1.3),
        ("TLS 1 KiB: zerohttp / Granian, both TLS", "zerohttp-tls", "granian-tls", 1.0),
    ]  # fmt: skip
    print("\n| ratio (per-round ratios, median) | target | value | the divisor's req/s |")
    print("|---|---:|---:|---:|")
    for label, mine, peer, target in rows:
        if mine in small and peer in small:
            per_round = [a[0] / b[0] for a, b in zip(small[mine], small[peer], strict=True)]
            value = statistics.median(per_round)
            print(f"| {label} | ≥ {target} | {value:.2f}x | {med(small[peer], 0):,.0f} |")
    if "zerohttp-tls" in big and "nginx-tls" in big:
        gbs = med(big["zerohttp-tls"], 0) / med(big["nginx-tls"], 0)
        cpu = med(big["zerohttp-tls"], 2) / med(big["nginx-tls"], 2)
        nginx = med(big["nginx-tls"], 0)
        print(f"| TLS 1 GiB GB/s: zerohttp / nginx | ≥ 0.8 | {gbs:.2f}x | {nginx:.2f} GB/s |")
        print(f"| TLS 1 GiB server CPU s/GB: zerohttp / nginx | ≤ 1.3 | {cpu:.2f}x | - |")


if __name__ == "__main__":
    main()
