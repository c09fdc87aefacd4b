"""--health-path: a probe's answer that depends on nothing ROOT or the application holds.

A container health check or a Kubernetes probe that fetched ``/`` would fail forever on a
root without ``index.html`` or an app without a ``/`` route. This path is answered by the
connection layer itself, before the handler, and never logged or counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..message.response import RequestHead, Response, error_response

OK_BODY = b"ok\n"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """The path and its two responses, built once (shared: never changed after)."""

    path: bytes
    with_query: bytes  # the path followed by "?": a query string is ignored
    ok: Response
    not_allowed: Response

    def answer(self, request: RequestHead) -> Response | None:
        """The response to ``request`` if it asks for the health path, else None."""
        target = request.target
        if target != self.path and not target.startswith(self.with_query):
            return None
        return self.ok if request.method in (b"GET", b"HEAD") else self.not_allowed


def health_check(path: str) -> HealthCheck | None:
    """The check for ``path`` (validated by Config: an ASCII URL path), None when off."""
    if not path:
        return None
    fields = (
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(OK_BODY))),
        ("Cache-Control", "no-store"),
    )
    ok = Response(200, fields, OK_BODY)
    encoded = path.encode("ascii")
    return HealthCheck(encoded, encoded + b"?", ok, error_response(405, [("Allow", "GET, HEAD")]))
