"""zerohttp: a static-file HTTP/1.1 server for asyncio that sends file bodies zero-copy.

Layers, each importing only the ones below it: ``cli``/``runner``/``workers``/``server``/
``config`` at the top; ``asgi`` (the ASGI host and the ``StaticFiles`` app); ``http`` (the
connection layer and head readers); ``body`` (zero-copy and fallback body paths); ``static``
(the sans-IO decision core); ``errors`` under all of them.

The public names are imported on first use (PEP 562), so ``import zerohttp`` alone, and
``zerohttp --check`` (a health check run every few seconds), load none of the server.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

TYPE_CHECKING = False  # as typing.TYPE_CHECKING for type checkers, without importing typing
if TYPE_CHECKING:
    from typing import Any

    from .asgi.staticfiles import StaticFiles
    from .config import Config
    from .runner import run
    from .server import Server, serve

__all__ = ["Config", "Server", "StaticFiles", "__version__", "run", "serve"]

#: public name -> the module that defines it
_LAZY = {
    "Config": ".config",
    "Server": ".server",
    "StaticFiles": ".asgi.staticfiles",
    "run": ".runner",
    "serve": ".server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
