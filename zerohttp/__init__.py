"""zerohttp: a static-file HTTP/1.1 server for asyncio that sends file bodies zero-copy.

Layers, each importing only the ones below it: ``cli``/``runner``/``workers``/``server``/
``config`` at the top; ``asgi`` (the ASGI host and the ``StaticFiles`` app); ``http`` (the
connection layer and head readers); ``body`` (zero-copy and fallback body paths); ``static``
(the sans-IO decision core); ``errors`` under all of them.
"""

__version__ = "0.1.0"

from .asgi.staticfiles import StaticFiles
from .config import Config
from .runner import run
from .server import Server, serve

__all__ = ["Config", "Server", "StaticFiles", "__version__", "run", "serve"]
