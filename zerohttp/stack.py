"""What stands around the handlers a server runs: one place decides the order.

From the outside in: CORS preflights (a browser sends them without credentials), the
site's redirects and header rules, basic auth, then the files or the application. The
health path is answered before all of these, by the connection layer.
"""

from __future__ import annotations

from .asgi.host import FileHandler
from .config import Config
from .http.server_state import Handler
from .static.handler import StaticHandler
from .static.rules.site import SiteRules, wanted


def static_stack(config: Config, static: StaticHandler) -> FileHandler:
    """The static handler for ROOT (or a ``--mount``) with the site's rules around it
    (``_headers``, ``_redirects``, ``--header``); bare when there can be none."""
    if not wanted(config):
        return static
    return SiteRules(static, config.root, config)


def server_stack(config: Config, inner: Handler) -> Handler:
    """The server's whole handler (files or application) with access control around it."""
    return inner
