"""zerohttp: a static-file HTTP/1.1 server for asyncio that sends file bodies zero-copy."""

__version__ = "0.1.0"

from .config import Config
from .server import Server, run, serve
from .static import StaticFiles

__all__ = ["Config", "Server", "StaticFiles", "__version__", "run", "serve"]
