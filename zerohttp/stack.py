"""What stands around the handlers a server runs: one place decides the order.

From the outside in: basic auth (which lets a CORS preflight through: browsers send them
without credentials), then the files or the application. Around the files of ROOT and of
each ``--mount``: CORS, then the site's redirects and header rules, then the static
handler. The health path is answered before all of these, by the connection layer.
"""

from __future__ import annotations

from .access.cors import cors_stack
from .access.gate import gate_from_settings
from .asgi.host import FileHandler
from .config import Config
from .http.server_state import Handler
from .static.handler import StaticHandler
from .static.rules.site import SiteRules, wanted


def static_stack(config: Config, static: StaticHandler) -> FileHandler:
    """The static handler for ROOT (or a ``--mount``) with the site's rules around it
    (``_headers``, ``_redirects``, ``--header``) and CORS outside them; bare when there
    can be none."""
    handler: FileHandler = static
    if wanted(config):
        handler = SiteRules(static, config.root, config)
    handler = cors_stack(handler, config)  # CORS: outermost, so its fields are on every answer
    return handler


def server_stack(config: Config, inner: Handler) -> Handler:
    """The server's whole handler (files or application) with access control around it.

    Basic auth stands outside everything but the health path: every file, mount and
    application route needs the password, except a CORS preflight (which browsers send
    without credentials) when CORS is on, and paths outside ``--basic-auth-paths``.
    """
    if config.basic_auth_file:
        inner = gate_from_settings(
            inner,
            config.basic_auth_file,
            config.basic_auth_realm,
            config.basic_auth_paths,
            preflights_pass=bool(config.cors_allow_origin),
        )
    return inner
