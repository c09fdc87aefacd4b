"""Serve examples/site from a Python script with zerohttp's API instead of the CLI.

    python examples/embed_api.py [PORT]     # or PORT=8080 python examples/embed_api.py

``zerohttp.Config`` takes the CLI's options as keywords (``root``, ``port``, ``index``,
``precompressed``...) and ``zerohttp.run`` serves until SIGINT/SIGTERM, just as the
``zerohttp`` command does. Port 0 picks a free port; the line printed once the socket is
listening says which.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import zerohttp

SITE = Path(__file__).resolve().parent / "site"


def main() -> None:
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8000"))
    config = zerohttp.Config(root=str(SITE), port=port, cache_control="max-age=60")

    def started(server: zerohttp.Server) -> None:
        print(f"serving {SITE} on http://127.0.0.1:{server.port}/", flush=True)

    zerohttp.run(config, on_started=started)


if __name__ == "__main__":
    main()
