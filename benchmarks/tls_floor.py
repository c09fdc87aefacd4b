"""The floor of this box for 1 KiB keep-alive over TLS: bare SSL protocols beside zerohttp,
Granian and nginx.

    python3 benchmarks/tls_floor.py --rounds 3 --seconds 5
    python3 benchmarks/tls_floor.py --zerohttp before=/tmp/zh-src-main --zerohttp after=.

Every server answers ``GET /small.html`` over TLS 1.3 (keep-alive, `wrk -t1 -c64` pinned to
CPU 1; the servers, one process each, pinned to CPU 0, all up at once, interleaved per
round). The floors are an ``asyncio.Protocol`` that answers every request head with a
constant 1 KiB ``200`` (no parsing, no file), so what they cost is the SSL transport and
the loop, nothing of zerohttp's:

- ``floor-uvloop``: uvloop's SSL transport (its Cython port of asyncio's ``sslproto``);
- ``floor-asyncio``: stock asyncio's loop and its pure-Python ``sslproto``;
- ``floor-sslproto-on-uvloop``: stock asyncio's ``SSLProtocol`` over a plain uvloop TCP
  transport (what choosing asyncio's SSL layer while keeping uvloop would give).

No Python server on these transports can do a TLS request for less. Each test measures
req/s (wrk) and the server's CPU (utime+stime of its process tree from /proc): µs per
request. Medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ops_bench as ob  # noqa: E402  (Server, wrk, the TLS peers' configurations)

BODY = b"x" * 1024
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/html\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY
FLOORS = {
    "floor-uvloop": "uvloop",
    "floor-asyncio": "asyncio",
    "floor-sslproto-on-uvloop": "sslproto-on-uvloop",
}


def serve(port: int, kind: str, cert: str, key: str) -> None:
    """A keep-alive server answering every request head with RESPONSE, over TLS."""
    if kind != "asyncio":
        import uvloop

        uvloop.install()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class Floor(asyncio.Protocol):
        def __init__(self) -> None:
            self.transport: Any = None
            self.buffer = b""

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            buffer = self.buffer + data if self.buffer else data
            count = buffer.count(b"\r\n\r\n")
            if count:
                self.transport.write(RESPONSE * count)
                buffer = buffer[buffer.rindex(b"\r\n\r\n") + 4 :]
            self.buffer = buffer

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if kind == "sslproto-on-uvloop":
            from asyncio import sslproto

            def factory() -> asyncio.BaseProtocol:
                return sslproto.SSLProtocol(loop, Floor(), context, None, server_side=True)

            server = await loop.create_server(factory, "127.0.0.1", port, backlog=4096)
        else:
            server = await loop.create_server(Floor, "127.0.0.1", port, ssl=context, backlog=4096)
        await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="uvloop", help=argparse.SUPPRESS)
    ap.add_argument("--cert", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    ap.add_argument("--zerohttp", action="append", default=[], metavar="NAME=PYTHONPATH",
                    help="zerohttp from this source tree; default: this script's tree")  # fmt: skip
    ap.add_argument("--zerohttp-args", action="append", default=[], metavar="NAME=ARGS",
                    help="another zerohttp from the first tree, with these options")  # fmt: skip
    ap.add_argument("--floors", default=",".join(FLOORS), help="which floors to run")
    ap.add_argument("--no-peers", action="store_true", help="no Granian, no nginx")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.kind, args.cert, args.key)
        return
    work = Path(tempfile.mkdtemp(prefix="zerohttp-tls-floor-"))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    pkcs8 = work / "key8.pem"
    subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(key), "-out", str(pkcs8)],
        check=True,
    )
    me = str(Path(__file__).resolve())
    makers: list[Any] = []
    for name in [f for f in args.floors.split(",") if f]:

        def floor(name: str = name) -> ob.Server:
            port = ob.free_port()
            argv = [args.python, me, "--serve", str(port), "--kind", FLOORS[name],
                    "--cert", str(cert), "--key", str(key)]  # fmt: skip
            return ob.Server(name, argv, port, "https")

        makers.append(floor)
    trees = [spec.partition("=")[::2] for spec in args.zerohttp] or [("zerohttp", str(HERE.parent))]
    tls = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    variants = [(name, path, []) for name, path in trees]
    variants += [
        (name, trees[0][1], shlex.split(extra))
        for name, _, extra in (spec.partition("=") for spec in args.zerohttp_args)
    ]
    for name, path, extra in variants:

        def zerohttp(name: str = name, path: str = path, extra: list[str] = extra) -> ob.Server:
            port = ob.free_port()
            argv = ["env", f"PYTHONPATH={path}", args.python, "-m", "zerohttp", str(ob.CORPUS),
                    "--log-level", "warning", "--port", str(port), *tls, *extra]  # fmt: skip
            return ob.Server(name, argv, port, "https")

        makers.append(zerohttp)
    if not args.no_peers:
        makers.append(
            lambda: ob.granian_server("granian-tls", ob.granian_tls_args(cert, pkcs8), "https")
        )
        makers.append(lambda: ob.nginx_tls_server(work, cert, key))
    results: dict[str, list[tuple[float, float]]] = {}
    os.chdir("/tmp")  # the repository's zerohttp/ must not shadow a tree on PYTHONPATH
    for round_ in range(args.rounds):
        order = makers if round_ % 2 == 0 else makers[::-1]
        for make in order:
            with make() as server:
                ob.warm(server)
                results.setdefault(server.name, []).append(ob.wrk(server, args.seconds))
        print(f"tls_floor: round {round_ + 1} done", file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(f"```\npython3 benchmarks/tls_floor.py {shlex.join(sys.argv[1:])}\n```\n")
    print("| server | 1 KiB keep-alive over TLS req/s (median) | server CPU µs/req | rounds |")
    print("|---|---:|---:|---|")
    for name, values in results.items():
        rates = ", ".join(f"{v[0]:,.0f}" for v in values)
        print(
            f"| {name} | {statistics.median(v[0] for v in values):,.0f} | "
            f"{statistics.median(v[1] for v in values):.1f} | {rates} |"
        )


if __name__ == "__main__":
    main()
