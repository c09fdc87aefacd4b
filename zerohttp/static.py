"""The static-file request handler: a short ladder of pure decisions around the lookups.

``StaticFiles.handle`` reads top to bottom: method, path decoding, hidden names, the
file-system lookup (the only I/O, in ``files.py``), then the response for what was found:
redirect, listing, 404 page, SPA fallback, or a file — whose representation (precompressed
sibling or not) is chosen here and whose status and fields ``representation.py`` decides.
Any front end (the TCP server, an ASGI app) reuses the same ``handle``.
"""

from __future__ import annotations

import os
import re
import time

from .autoindex import render_listing
from .config import Config
from .errors import HTTPError
from .files import Directory, FileResolver, NeedsSlash, NotFound, OpenFile
from .media_types import MediaTypes
from .negotiation import SIBLING_SUFFIXES, choose_encoding, parse_accept_encoding
from .paths import RequestPath, parse_target
from .representation import IMMUTABLE, Representation, plan_response, whole_file
from .response import FileBody, RequestHead, Response, error_response, render_fields

SAFE_METHODS = (b"GET", b"HEAD")
ALLOW = "GET, HEAD, OPTIONS"
NOT_FOUND_PAGE = "404.html"


def redirect_response(path: RequestPath) -> Response:
    """308 keeps the method; the Location is rebuilt from clean segments (no open redirect)."""
    return error_response(308, [("Location", path.url(trailing_slash=True))])


def method_not_allowed() -> Response:
    return error_response(405, [("Allow", ALLOW)])


def options_response() -> Response:
    """204 for OPTIONS: what the resource (or the server, for ``*``) accepts."""
    return Response(204, render_fields([("Allow", ALLOW)]))


def listing_response(page: bytes) -> Response:
    fields = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page))),
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    return Response(200, render_fields(fields), page)


def spa_fallback_applies(path: RequestPath) -> bool:
    """Client-side routes look like ``/users/42``; ``/app.js`` missing is a real 404."""
    last = path.segments[-1] if path.segments else ""
    return not path.trailing_slash and "." not in last


class StaticFiles:
    """Serves the files below ``config.root``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.resolver = FileResolver(config.root, config.index)
        self.media_types = MediaTypes(config.mime_overrides)
        self.immutable = re.compile(config.immutable_pattern) if config.immutable_pattern else None

    def handle(self, request: RequestHead) -> Response:
        response = self._route(request)
        if request.method == b"HEAD":  # same fields as GET; the file need not stay open
            response.release()
            response.body = b""
        return response

    def _route(self, request: RequestHead) -> Response:
        if request.method == b"OPTIONS":
            return options_response()
        if request.method not in SAFE_METHODS:
            return method_not_allowed()
        try:
            path = parse_target(request.target)
        except HTTPError as exc:
            return error_response(exc.status)
        if path.hidden:
            return self._not_found()
        found = self.resolver.lookup(path.relative, path.trailing_slash)
        if isinstance(found, NeedsSlash):
            return redirect_response(path)
        if isinstance(found, Directory):
            if not self.config.autoindex:
                return self._not_found()
            entries = self.resolver.list_directory(found.path)
            shown = "/" + "".join(segment + "/" for segment in path.segments)
            return listing_response(render_listing(shown, entries))
        if isinstance(found, NotFound):
            if found.forbidden:
                return error_response(403)
            if not (self.config.spa and spa_fallback_applies(path)):
                return self._not_found()
            found = self.resolver.lookup("", True)
            if not isinstance(found, OpenFile):
                return self._not_found()
        return self._file_response(request, path, found)

    def _file_response(self, request: RequestHead, path: RequestPath, found: OpenFile) -> Response:
        chosen, encoding, vary = self._negotiate(request, found)
        rep = Representation(
            chosen.info,
            self.media_types.content_type(found.name),
            encoding,
            self._cache_control(path),
            vary,
            int(time.time()),
        )
        plan = plan_response(request, rep)
        if plan.status in (412, 416):
            os.close(chosen.fd)
            return error_response(plan.status, plan.fields)
        body = FileBody(chosen.fd, chosen.path, plan.segments)
        return Response(plan.status, render_fields(plan.fields), body)

    def _negotiate(
        self, request: RequestHead, found: OpenFile
    ) -> tuple[OpenFile, str | None, bool]:
        """The precompressed sibling to send instead of ``found``, if any, and whether to Vary."""
        codings = self.config.precompressed
        if not codings:
            return found, None, False
        available = [c for c in codings if self.resolver.sibling_exists(found, SIBLING_SUFFIXES[c])]
        if not available:
            return found, None, False
        accept = request.header(b"accept-encoding")
        coding = choose_encoding(parse_accept_encoding(accept), available) if accept else None
        if coding is not None:
            sibling = self.resolver.open_sibling(found, SIBLING_SUFFIXES[coding])
            if sibling is not None:
                os.close(found.fd)
                return sibling, coding, True
        return found, None, True

    def _cache_control(self, path: RequestPath) -> str | None:
        if self.immutable is not None and self.immutable.search("/" + path.relative):
            return IMMUTABLE
        return self.config.cache_control or None

    def _not_found(self) -> Response:
        """404, with ``ROOT/404.html`` as the body when there is one."""
        page = self.resolver.lookup(NOT_FOUND_PAGE, False)
        if not isinstance(page, OpenFile):
            return error_response(404)
        fields = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(page.info.size)),
            ("X-Content-Type-Options", "nosniff"),
        ]
        body = FileBody(page.fd, page.path, whole_file(page.info.size))
        return Response(404, render_fields(fields), body)
