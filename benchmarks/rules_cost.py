"""Site rules' cost: a 1 KiB file from a site with 100 ``_headers`` blocks and 1,000
``_redirects`` lines against the same site without them, in one paired run.

    python3 benchmarks/rules_cost.py [--main /work/main] [--passes 10] [--seconds 5]

Builds two roots under /tmp/zh-rules-bench (``plain``: the file; ``rules``: the file and
both rules files: two blocks that match every page and 98 that do not, 900 literal and
100 dynamic redirect lines, none for the file), then runs ``ab_static.py`` (servers on
CPU 0, ``wrk -t1 -c64`` on CPU 1, alternating passes) over four servers:

- ``main``: the main checkout on ``plain`` (the hot path before site rules);
- ``no-files``: this checkout on ``plain`` (site rules on, no files: two stats a loop pass);
- ``off``: this checkout on ``rules`` with ``--no-site-rules`` (the static handler bare);
- ``rules``: this checkout on ``rules``.

The target is ``rules`` ÷ ``no-files`` >= 0.9 (the issue's "rule-less rate").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
BENCH_ROOT = Path("/tmp/zh-rules-bench")
PATH = "/kib.html"


def headers_file() -> str:
    blocks = [
        "/*\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n"
        "  Referrer-Policy: no-referrer\n",
        "/*.html\n  Content-Security-Policy: default-src 'self'\n",
    ]
    blocks += [
        f"/section-{i}/*\n  X-Section: {i}\n  Cache-Control: max-age={i}\n" for i in range(98)
    ]
    return "\n".join(blocks)


def redirects_file() -> str:
    lines = [f"/old/page-{i}.html /new/page-{i}.html 301" for i in range(900)]
    lines += [f"/legacy-{i}/* /archive/{i}/:splat 302" for i in range(50)]
    lines += [f"/blog/{i}/:slug /posts/:slug 301" for i in range(50)]
    return "\n".join(lines) + "\n"


def make_roots() -> tuple[Path, Path]:
    plain, rules = BENCH_ROOT / "plain", BENCH_ROOT / "rules"
    past = time.time() - 3600  # settled files: the open-file cache and the rules' stat
    for root in (plain, rules):
        root.mkdir(parents=True, exist_ok=True)
        (root / "kib.html").write_bytes(b"<p>" + b"x" * 1017 + b"</p>")
    (rules / "_headers").write_text(headers_file())
    (rules / "_redirects").write_text(redirects_file())
    for path in [*plain.iterdir(), *rules.iterdir()]:
        os.utime(path, (past, past))
    return plain, rules


def command(checkout: Path, root: Path, *options: str) -> str:
    python = os.environ.get("ZH_PYTHON", "/work/main/.venv/bin/python")
    extra = " ".join(options)
    return f"env PYTHONPATH={checkout} {python} -m zerohttp {root} --port {{port}} {extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--main", default="/work/main", help="the checkout to compare against")
    ap.add_argument("--passes", default="10")
    ap.add_argument("--seconds", default="5")
    args = ap.parse_args()
    plain, rules = make_roots()
    servers = {
        "main": command(Path(args.main), plain),
        "no-files": command(CHECKOUT, plain),
        "off": command(CHECKOUT, rules, "--no-site-rules"),
        "rules": command(CHECKOUT, rules),
    }
    argv = [sys.executable, str(HERE / "ab_static.py"), "--path", PATH, "--root", str(plain)]
    argv += ["--passes", args.passes, "--seconds", args.seconds]
    for name, cmd in servers.items():
        argv += ["--server", f"{name}={cmd}"]
    env = {"PEERBENCH": "/work/shared/peerbench", **os.environ}  # a worktree has no ../shared
    sys.exit(subprocess.call(argv, env=env))


if __name__ == "__main__":
    main()
