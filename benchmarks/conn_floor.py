"""The floor of this box for new connections: a bare asyncio.Protocol beside zerohttp and Granian.

    PEERBENCH=../shared/peerbench python3 benchmarks/conn_floor.py --asyncio --rounds 3
    python3 benchmarks/conn_floor.py --zerohttp before=/tmp/zh-src-A --zerohttp after=/tmp/zh-src-B
    python3 benchmarks/conn_floor.py --floor linger=linger --floor all=extra,limits,set,linger

Every request is ``GET /small.html`` with ``Connection: close`` (peerbench's close test:
`wrk -t1 -c32`, pinned to CPU 1), so every request is a new TCP connection and the figure
is the cost of a connection: accept, setup, one request, one response, teardown. The
servers, each one process pinned to CPU 0, all up at once:

- ``floor`` (``--serve``, this file): an ``asyncio.Protocol`` that answers every request
  head with a constant 1 KiB ``200`` (Content-Length, ``Connection: close``) and calls
  ``transport.close()``, under uvloop; ``floor-asyncio`` is the same under stock asyncio
  (``--asyncio``). No Python server can do a connection for less on this box.
- ``--floor NAME=STEPS``: the floor plus some of zerohttp's per-connection steps (see
  STEPS), to attribute zerohttp's cost stage by stage.
- ``zerohttp`` (``--zerohttp NAME=PYTHONPATH``, repeatable; an empty path: the installed
  package): ``python -m zerohttp ROOT`` with its defaults, run from /tmp.
- ``granian``: peerbench's configuration (``bench.py: builtin_servers``), URL prefix /static.

Rounds interleave the servers (the order rotates every round); each test measures req/s
(wrk) and the server's CPU (utime+stime of its process tree from /proc, peerbench's Probe),
divided by the requests: µs per connection. Medians over rounds; ratios to Granian per
round, then their median. Every server's body is compared with the file before any load.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERBENCH = Path(os.environ.get("PEERBENCH", Path(__file__).resolve().parents[2] / "shared" / "peerbench"))
if not PEERBENCH.is_dir():
    PEERBENCH = REPO.parent / "shared" / "peerbench"

FILE = "small.html"
BODY = b"x" * 1024
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/html\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY)
) + BODY

# Steps of zerohttp's per-connection work that a floor variant can add (--floor NAME=a,b).
STEPS = {
    "attrs": "a 29-attribute protocol object, as HTTPConnection.__init__ builds",
    "extra": "connection_made: get_extra_info('sslcontext') and get_extra_info('socket')",
    "limits": "connection_made: set_write_buffer_limits(high=0, low=0)",
    "set": "the connection in a set: add in connection_made, discard in connection_lost",
    "sock": "socket.socket(fileno=...) over the transport's fd, detached at close (send(MSG_MORE))",
    "linger": "write_eof() after the response, transport.close() at the client's EOF",
    "defer": "TCP_DEFER_ACCEPT on the listening socket (accept once the request is in)",
}


# --------------------------------------------------------------------------- the floor
def serve(port: int, loop_name: str, steps: set[str], backlog: int) -> None:
    unknown = steps - set(STEPS)
    if unknown:
        sys.exit(f"conn_floor: unknown steps {sorted(unknown)}; known: {sorted(STEPS)}")
    if loop_name == "uvloop":
        import uvloop

        uvloop.install()
    attrs, extra, limits = "attrs" in steps, "extra" in steps, "limits" in steps
    in_set, sock_step, linger = "set" in steps, "sock" in steps, "linger" in steps
    connections: set[asyncio.Protocol] = set()

    class Floor(asyncio.Protocol):
        def __init__(self) -> None:
            self.transport: Any = None
            self.buffer = b""
            self.sock: socket.socket | None = None
            if attrs:
                for i in range(26):
                    setattr(self, f"a{i}", None)

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            if extra:
                transport.get_extra_info("sslcontext")
                transport.get_extra_info("socket")
            if limits:
                transport.set_write_buffer_limits(high=0, low=0)
            if in_set:
                connections.add(self)

        def data_received(self, data: bytes) -> None:
            buffer = self.buffer + data if self.buffer else data
            if b"\r\n\r\n" not in buffer:
                self.buffer = buffer
                return
            self.buffer = b""
            transport = self.transport
            if sock_step:
                raw = transport.get_extra_info("socket")
                self.sock = socket.socket(raw.family, raw.type, raw.proto, fileno=raw.fileno())
            transport.write(RESPONSE)
            if self.sock is not None:
                self.sock.detach()
                self.sock = None
            if linger:
                transport.write_eof()
            else:
                transport.close()

        def eof_received(self) -> bool:
            return False  # the transport closes

        def connection_lost(self, exc: Exception | None) -> None:
            if in_set:
                connections.discard(self)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            Floor, "127.0.0.1", port, backlog=backlog, reuse_address=True
        )
        if "defer" in steps:
            server.sockets[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------- the runner
def fetch(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        return body if response.status == 200 else b""
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"],
                    help=argparse.SUPPRESS)  # fmt: skip
    ap.add_argument("--steps", default="", help=argparse.SUPPRESS)
    ap.add_argument("--backlog", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--asyncio", action="store_true", help="also the floor under stock asyncio")
    ap.add_argument("--floor", action="append", default=[], metavar="NAME=STEP,...",
                    help="a floor variant with zerohttp's steps: " + "; ".join(
                        f"{k}: {v}" for k, v in STEPS.items()))  # fmt: skip
    ap.add_argument("--zerohttp", action="append", default=[], metavar="NAME=PYTHONPATH",
                    help="zerohttp from this source tree (empty: the installed package); "
                    "default: zerohttp=this script's tree")  # fmt: skip
    ap.add_argument("--zerohttp-args", default="", help="extra zerohttp options")
    ap.add_argument("--server", action="append", default=[], metavar="NAME=CMD",
                    help="any other server: a command with {root} {port} {python}")  # fmt: skip
    ap.add_argument("--no-granian", action="store_true")
    ap.add_argument("--only-floor", action="store_true", help="no zerohttp, no Granian")
    ap.add_argument("--python", default=sys.executable, help="runs the floor and zerohttp")
    ap.add_argument("--venv", default="/tmp/peerbench-venv", help="peerbench's (granian)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--quiet-wait", type=float, default=5.0)
    ap.add_argument("--root", default=os.environ.get("PEERBENCH_ROOT", "/tmp/peerbench-root"))
    ap.add_argument("--json", metavar="FILE", help="every figure, as JSON")
    args = ap.parse_args()
    if args.serve is not None:
        steps = {s for s in args.steps.split(",") if s}
        serve(args.serve, args.loop, steps, args.backlog)
        return

    sys.path.insert(0, str(PEERBENCH))
    import bench as pb  # peerbench's measuring code: wrk, Probe, wait_quiet, stop

    me = shlex.quote(str(Path(__file__).resolve()))
    py = args.python
    floor_cmd = f"{py} {me} --serve {{port}}"
    # name -> (argv, env additions, URL prefix)
    servers: dict[str, tuple[list[str], dict[str, str], str]] = {}
    servers["floor"] = (shlex.split(floor_cmd), {}, "")
    if args.asyncio:
        servers["floor-asyncio"] = (shlex.split(f"{floor_cmd} --loop asyncio"), {}, "")
    for spec in args.floor:
        name, _, steps = spec.partition("=")
        servers[name] = (shlex.split(f"{floor_cmd} --steps {steps}"), {}, "")
    if not args.only_floor:
        for spec in args.zerohttp or [f"zerohttp={REPO}"]:
            name, _, path = spec.partition("=")
            argv = shlex.split(
                f"{py} -m zerohttp {{root}} --host 127.0.0.1 --port {{port}} "
                f"--log-level warning {args.zerohttp_args}"
            )
            servers[name] = (argv, {"PYTHONPATH": path} if path else {}, "")
        if not args.no_granian:
            g = pb.builtin_servers(args.venv)["granian"]
            servers["granian"] = (list(g["argv"]), {}, g["prefix"])
    for spec in args.server:
        name, _, cmd = spec.partition("=")
        servers[name] = (shlex.split(cmd), {}, "")

    expected = (Path(args.root) / FILE).read_bytes()
    names = list(servers)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    commands: dict[str, str] = {}
    try:
        for i, name in enumerate(names):
            argv, env_add, prefix = servers[name]
            port = pb.free_port(18700 + 10 * i)
            ctx = dict(root=args.root, port=port, host=pb.HOST, python=py, venv=args.venv)
            argv = [a.format(**ctx) for a in argv]
            env = dict(os.environ, **env_add)
            env.pop("PYTHONPATH", None) if not env_add.get("PYTHONPATH") else None
            commands[name] = " ".join(
                [*(f"{k}={v}" for k, v in env_add.items()), "taskset -c 0", shlex.join(argv)]
            )
            procs[name] = subprocess.Popen(
                ["taskset", "-c", pb.SERVER_CPU, *argv], cwd="/tmp", env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            ports[name] = port
            url = f"http://{pb.HOST}:{port}{prefix}/{FILE}"
            deadline = time.monotonic() + 20
            while not pb.http_ok(url):
                if procs[name].poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"conn_floor: {name} did not answer 200 on {url}")
                time.sleep(0.2)
            body = fetch(port, f"{prefix}/{FILE}")
            if name.startswith("floor") or name in {s.partition("=")[0] for s in args.floor}:
                ok = body == BODY
            else:
                ok = body == expected
            if not ok:
                sys.exit(f"conn_floor: {name} answered {len(body)} wrong bytes")
            pb.wrk(url, args.conns, 2, ["Connection: close"])  # warm-up
        for k in range(args.rounds):
            order = names[k % len(names) :] + names[: k % len(names)]
            if k % 2:
                order.reverse()
            for name in order:
                prefix = servers[name][2]
                url = f"http://{pb.HOST}:{ports[name]}{prefix}/{FILE}"
                pb.wait_quiet(args.quiet_wait, pb.tree(procs[name].pid))
                with pb.Probe(procs[name].pid) as pr:
                    r = pb.wrk(url, args.conns, args.seconds, ["Connection: close"])
                n = r["requests"]
                bad = r["non2xx"] + sum(r["socket_errors"].values())
                short = r["bytes_per_resp"] < len(BODY)
                runs[name].append(dict(
                    rps=r["rps"], us=pr.cpu / n * 1e6 if n else float("nan"),
                    util=pr.cpu / pr.wall, others=pr.foreign / pr.wall, bad=bad, short=short,
                    client=pr.client_cpu / pr.wall, p99_ms=r["p99_ms"],
                ))  # fmt: skip
                x = runs[name][-1]
                print(f"round {k + 1} {name}: {x['rps']:,.0f} req/s {x['us']:.1f} µs/conn "
                      f"srv {x['util']:.2f} wrk {x['client']:.2f} others {x['others']:.2f}"
                      + (f" ERRORS {bad}" if bad else ""), file=sys.stderr)  # fmt: skip
    finally:
        for p in procs.values():
            pb.stop(p)

    print(f"```\n{shlex.join(['python3', 'benchmarks/conn_floor.py', *sys.argv[1:]])}\n```\n")
    print(f"GET /{FILE} with `Connection: close` (a new connection per request), "
          f"`wrk -t1 -c{args.conns} -d{args.seconds}s` on CPU 1, servers on CPU 0, "
          f"{args.rounds} interleaved rounds; medians.\n")  # fmt: skip
    ref = "granian" if "granian" in runs else names[0]
    floor = "floor"
    print(
        f"| server | req/s | CPU µs/conn | req/s ÷ {ref} | µs ÷ {ref} | req/s ÷ floor "
        "| srv CPU | wrk CPU | others | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        xs = runs[n]

        def ratio(key: str, other: str, xs: list[dict[str, Any]] = xs) -> float:
            return statistics.median(a[key] / b[key] for a, b in zip(xs, runs[other], strict=True))

        med = {key: statistics.median(x[key] for x in xs) for key in xs[0] if key != "short"}
        print(f"| {n} | {med['rps']:,.0f} | {med['us']:.1f} | {ratio('rps', ref):.3f} | "
              f"{ratio('us', ref):.3f} | {ratio('rps', floor):.3f} | {med['util']:.2f} | "
              f"{med['client']:.2f} | {med['others']:.2f} | {sum(x['bad'] for x in xs)}"
              f"{' SHORT' if any(x['short'] for x in xs) else ''} |")  # fmt: skip
    print()
    for n in names:
        print(f"- {n}: `{commands[n]}`")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(runs=runs, commands=commands), indent=1))


if __name__ == "__main__":
    main()
