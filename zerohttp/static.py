"""The static-file request handler: a short ladder of pure decisions around one lookup.

``StaticFiles.handle`` reads top to bottom: method, path decoding, hidden names, the
file-system lookup (the only I/O), then the response for what was found. Each rung is a
plain function over plain data so it can be tested without sockets, and any front end
(the TCP server, an ASGI app) reuses the same ``handle``.
"""

from __future__ import annotations

from .config import Config
from .dates import http_date
from .errors import HTTPError
from .files import FileInfo, FileResolver, NeedsSlash, NotFound, OpenFile
from .media_types import MediaTypes
from .paths import RequestPath, parse_target
from .response import FileBody, RequestHead, Response, error_response, render_fields

SAFE_METHODS = (b"GET", b"HEAD")
ALLOW = "GET, HEAD"


def strong_etag(info: FileInfo) -> str:
    """``"<mtime ns hex>-<size hex>"``: changes whenever the file is rewritten or resized."""
    return f'"{info.mtime_ns:x}-{info.size:x}"'


def has_validators(info: FileInfo) -> bool:
    """Build tools that zero mtimes (reproducible builds) make dates meaningless."""
    return info.mtime_ns > 1_000_000_000


def file_fields(info: FileInfo, content_type: str) -> bytes:
    fields = [
        ("Content-Type", content_type),
        ("Content-Length", str(info.size)),
        ("Accept-Ranges", "bytes"),
    ]
    if has_validators(info):
        fields.append(("Last-Modified", http_date(info.mtime_ns // 1_000_000_000)))
        fields.append(("ETag", strong_etag(info)))
    return render_fields(fields)


def redirect_response(path: RequestPath) -> Response:
    """308 keeps the method; the Location is rebuilt from clean segments (no open redirect)."""
    return error_response(308, [("Location", path.url(trailing_slash=True))])


def method_not_allowed() -> Response:
    return error_response(405, [("Allow", ALLOW)])


class StaticFiles:
    """Serves the files below ``config.root``."""

    def __init__(self, config: Config, media_types: MediaTypes | None = None) -> None:
        self.resolver = FileResolver(config.root)
        self.media_types = media_types or MediaTypes()

    def handle(self, request: RequestHead) -> Response:
        if request.method not in SAFE_METHODS:
            return method_not_allowed()
        try:
            path = parse_target(request.target)
        except HTTPError as exc:
            return error_response(exc.status)
        if path.hidden:
            return error_response(404)
        found = self.resolver.lookup(path.relative, path.trailing_slash)
        if isinstance(found, NeedsSlash):
            return redirect_response(path)
        if isinstance(found, NotFound):
            return error_response(403 if found.forbidden else 404)
        return self._file_response(found, head_only=request.method == b"HEAD")

    def _file_response(self, found: OpenFile, *, head_only: bool) -> Response:
        fields = file_fields(found.info, self.media_types.content_type(found.name))
        body = FileBody(found.fd, 0, found.info.size, found.path)
        response = Response(200, fields, body)
        if head_only:
            response.release()
            response.body = b""
        return response
