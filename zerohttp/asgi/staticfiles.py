"""``zerohttp.StaticFiles``: the static-file core as an ASGI 3 app, for Starlette/FastAPI mounts.

Every decision (status, fields, which bytes of which file) is ``StaticHandler.handle``'s, the
same call the CLI server makes, so a file answers the same through either front end. This
module only translates: the scope into a ``RequestHead``, and the ``Response`` into ASGI
messages. That translation is split in two so most of it is testable without a server:

* ``static_plan.plan_messages`` (pure) decides which messages to send for what the host offers in
  ``scope["extensions"]``: ``http.response.zerocopysend`` (file ranges by offset and count),
  ``http.response.pathsend`` (whole-file 200s only: it has no offset or count), or plain
  ``http.response.body`` chunks read with pread (``body.fallback.copy_segments``).
* ``StaticFiles.__call__`` runs the plan, and always closes the ``FileBody`` afterwards
  (which releases a descriptor shared through the open-file cache), even when the client
  has gone away.

Starlette's arguments sit around the core, not in it: one handler per directory, asked in
order while they miss (``miss_statuses``); ``html=False`` makes index pages and the 404 page
misses too; a plain 404 is raised as Starlette's HTTPException under Starlette.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import itertools
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import IO, Any

from ..body.fallback import copy_segments
from ..errors import ConfigError
from ..message.response import ByteRange, FileBody, RequestHead, Response, error_response
from ..static.handler import StaticHandler, redirect_response, under_prefix
from ..static.options import StaticOptions
from ..static.paths import RequestPath
from .static_plan import (
    ZEROCOPYSEND,
    Delivery,
    FileRange,
    ReadSegments,
    Step,
    body_message,
    delivery_for,
    location_prefix,
    path_is_faithful,
    plan_messages,
    request_head,
    route_path,
    same_file_size,
    spec_version,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Segment = bytes | ByteRange


class DirectoryNotFound(ConfigError, RuntimeError):
    """The directory to serve is missing. A ConfigError like every bad zerohttp setting, and a
    RuntimeError like Starlette's ``check_dir``, so code written for either catches it."""


class ClientGone(Exception):
    """The host said ``http.disconnect`` while the body was being streamed."""


async def stream_segments(
    fd: int, segments: Sequence[Segment], send: Send, receive: Receive | None = None
) -> None:
    """Send ``segments`` as ``http.response.body`` chunks (more_body=True), each send awaited.

    Hosts before ASGI 2.4 (uvicorn) ignore a send after a disconnect instead of raising, so
    with ``receive`` given the stream also listens for ``http.disconnect`` and stops
    (ClientGone) rather than read the rest of the file for nobody.
    """
    pending: list[bytes] = []

    async def drain() -> None:
        while pending:
            await send(body_message(pending.pop(0), True))

    if receive is None:
        await copy_segments(fd, segments, pending.append, drain)
        return
    copying = asyncio.ensure_future(copy_segments(fd, segments, pending.append, drain))
    watching = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait((copying, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (copying, watching):
            task.cancel()
        await asyncio.gather(copying, watching, return_exceptions=True)
    if not watching.cancelled():
        # a receive that failed is the host's error, not a disconnect, even when the copy
        # (page-cached reads need not yield) finished first
        watching.result()
    if copying.cancelled():
        raise ClientGone
    copying.result()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def run_plan(
    steps: Iterable[Step], body: bytes | FileBody, send: Send, receive: Receive | None = None
) -> None:
    """Send the planned messages; ``receive`` is for hosts that need watching (see above)."""
    file: IO[bytes] | None = None
    try:
        for step in steps:
            if isinstance(step, FileRange):
                assert isinstance(body, FileBody)
                if file is None:  # a real fd for os.sendfile; the FileBody keeps ownership
                    file = open(body.fd, "rb", buffering=0, closefd=False)  # noqa: SIM115
                await send(
                    {
                        "type": ZEROCOPYSEND,
                        "file": file,
                        "offset": step.offset,
                        "count": step.count,
                        "more_body": step.more_body,
                    }
                )
            elif isinstance(step, ReadSegments):
                assert isinstance(body, FileBody)
                await stream_segments(body.fd, step.segments, send, receive)
            else:
                await send(step)
    finally:
        if file is not None:
            file.close()


class StaticFiles:
    """Serve files as an ASGI 3 app: ``starlette.staticfiles.StaticFiles`` with the import changed.

    Starlette's arguments mean what they mean there:

    * ``directory`` (positional here too) and/or ``packages``: the directories searched in
      order, ``directory`` first; a package name serves its ``statics`` folder, a
      ``(package, folder)`` pair that folder. A missing package or folder is a ConfigError.
    * ``html=False`` (the default): a directory is a 404, and so is every miss.
      ``html=True``: a directory serves its index file (``index``, default ``index.html``;
      308 to add the slash first) and a miss serves the first ``404.html`` found, with status
      404. ``StaticFiles(directory=d, html=True)`` answers exactly as ``zerohttp d``.
    * ``check_dir=True``: a missing ``directory`` raises DirectoryNotFound (a RuntimeError, as
      in Starlette) now; with False the check waits for the first request, which raises it.
    * ``follow_symlink=False``: a symlink that resolves outside its directory is not served;
      True serves it (the request path itself can never climb out).

    A plain 404 (no ``404.html`` page) is raised as Starlette's ``HTTPException`` when the app
    runs under Starlette's exception middleware (a Starlette or FastAPI mount), so the app's
    own handlers render it as they would for Starlette's StaticFiles; elsewhere it is
    zerohttp's plain-text 404.

    zerohttp's own options stand beside them: ``index`` and ``spa`` (which serves the index
    page) need ``html=True``; ``autoindex`` lists a directory that serves no index file, with
    either ``html``; ``precompressed``, ``cache_control``, ``immutable_pattern``, ``mime``,
    ``open_file_cache`` and the ``compress*`` options (text compressed once, in a thread, and
    then sent zero-copy; the cache opens at the first compressible file) as
    ``StaticOptions`` (the CLI flags' names; lists may be lists or tuples). Bad values
    raise ConfigError now, not on the first request. Deliberate differences from
    Starlette's answers are listed in tests/test_staticfiles_starlette.py.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        packages: Sequence[str | tuple[str, str]] | None = None,
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
        index: Sequence[str] | None = None,
        autoindex: bool | None = None,
        spa: bool | None = None,
        precompressed: Sequence[str] | None = None,
        cache_control: str | None = None,
        immutable_pattern: str | None = None,
        mime: Sequence[str] | None = None,
        open_file_cache: int | None = None,
        compress: Sequence[str] | None = None,
        compress_min_size: int | None = None,
        compress_max_size: int | None = None,
        compress_cache: str | None = None,
        compress_cache_size: int | None = None,
    ) -> None:
        for name, flag in (
            ("html", html),
            ("check_dir", check_dir),
            ("follow_symlink", follow_symlink),
        ):
            if type(flag) is not bool:
                raise ConfigError(f"StaticFiles({name}=...): expected bool, got {flag!r}")
        roots = [os.fspath(directory)] if directory is not None else []
        roots += [package_directory(package) for package in _package_list(packages)]
        if not roots:
            raise ConfigError("StaticFiles: give directory=... or packages=[...]")
        first = os.path.realpath(roots[0])
        self.directory = first if directory is not None else None
        self.html = html
        self.follow_symlink = follow_symlink
        given = {
            "index": index,
            "autoindex": autoindex,
            "spa": spa,
            "precompressed": precompressed,
            "cache_control": cache_control,
            "immutable_pattern": immutable_pattern,
            "mime": mime,
            "open_file_cache": open_file_cache,
            "compress": compress,
            "compress_min_size": compress_min_size,
            "compress_max_size": compress_max_size,
            "compress_cache": compress_cache,
            "compress_cache_size": compress_cache_size,
        }
        options = static_options(first, given)
        if not html:
            for name, value in (("index", index), ("spa", spa)):
                if value not in (None, False):
                    raise ConfigError(
                        f"StaticFiles({name}=...) is about index pages, served only with html=True"
                    )
            options = dataclasses.replace(options, index=())  # a directory is a 404
        self.options = options
        self.misses = miss_statuses(html, self.options.autoindex)
        self.all_directories = roots
        self._handlers: tuple[StaticHandler, ...] = ()
        missing = directory_problem(roots[0]) if directory is not None else None
        if missing is None:
            self._handlers = self._build_handlers()
        elif check_dir:
            raise DirectoryNotFound(missing)

    @property
    def handler(self) -> StaticHandler:
        """The first directory's handler (the one ``directory`` names, if given)."""
        return self.handlers()[0]

    def handlers(self) -> tuple[StaticHandler, ...]:
        """One handler per directory; built on first use after ``check_dir=False``."""
        if not self._handlers:
            missing = directory_problem(self.all_directories[0])
            if missing is not None:
                raise DirectoryNotFound(f"StaticFiles: {missing}")
            self._handlers = self._build_handlers()
        return self._handlers

    def _build_handlers(self) -> tuple[StaticHandler, ...]:
        handlers = []
        for root in self.all_directories:
            options = dataclasses.replace(self.options, root=os.path.realpath(root))
            handler = StaticHandler(options)
            if self.follow_symlink:
                handler.resolver.follow_symlinks = True
            handlers.append(handler)
        return tuple(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point: HTTP is served, lifespan answered, a WebSocket refused."""
        kind = scope["type"]
        if kind == "http":
            await self.handle_http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})  # before accept: a 403
        else:
            raise ValueError(f"StaticFiles serves HTTP only, not scope type {kind!r}")

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decide, plan, send; the FileBody is released however sending ends."""
        response = self.respond(scope)
        try:
            delivery = delivery_for(scope.get("extensions"))
            body = response.body
            size = None
            if (
                delivery is Delivery.PATHSEND
                and response.status == 200
                and isinstance(body, FileBody)
            ):
                size = same_file_size(body)
            steps = plan_messages(response, delivery, path_size=size)
            watch = spec_version(scope) < (2, 4)
            try:
                await run_plan(steps, body, send, receive if watch else None)
            except ClientGone:
                return
        finally:
            response.release()

    def respond(self, scope: Scope) -> Response:
        """The core's answer to this scope as it is sent: to HEAD without its body, and a
        Location under ``root_path`` (a FileBody in it must be released).

        Raises Starlette's HTTPException for a plain 404 under Starlette (see the class).
        """
        response = self._answer(scope)
        response.body = response.body_for(scope["method"].encode("latin-1", "replace"))
        return under_prefix(response, location_prefix(scope.get("root_path", "")))

    def _answer(self, scope: Scope) -> Response:
        handlers = self._handlers or self.handlers()
        route = route_path(scope)
        if scope["method"] in ("GET", "HEAD"):  # other methods: answered by method alone
            if route == "":
                # The mount point itself, e.g. "/static": its relative links need the slash.
                if 308 in self.misses:
                    return not_found(scope)
                return redirect_response(RequestPath((), True, scope.get("query_string", b"")))
            if not path_is_faithful(scope.get("raw_path"), route):
                return error_response(400)
        else:
            route = "/"
        request = request_head(scope, route)
        response = handlers[0].handle(request)
        if response.status in self.misses:
            response = self._after_miss(response, handlers[1:], request) or not_found(scope)
        return response

    def _after_miss(
        self, response: Response, rest: Sequence[StaticHandler], request: RequestHead
    ) -> Response | None:
        """After a miss in the first directory: the next directories' answer, else the first
        404 page (html=True only); None for a plain 404."""
        page: Response | None = None
        for answer in itertools.chain((response,), (h.handle(request) for h in rest)):
            if answer.status not in self.misses:
                if page is not None:
                    page.release()
                return answer
            if page is None and self.html and isinstance(answer.body, FileBody):
                page = answer
            else:
                answer.release()
        return page


def miss_statuses(html: bool, autoindex: bool) -> frozenset[int]:
    """The core's statuses that mean "not in this directory, try the next".

    Without ``html`` a directory is a miss, as in Starlette, so the 308 that adds its slash
    is one too, unless ``autoindex`` will list it.
    """
    return frozenset({404} if html or autoindex else {404, 308})


STARLETTE_HANDLERS = "starlette.exception_handlers"  # set by Starlette's ExceptionMiddleware


def not_found(scope: Scope) -> Response:
    """A plain 404: Starlette's HTTPException where the app's handlers will render it (as
    for Starlette's own StaticFiles), zerohttp's plain-text page elsewhere."""
    if STARLETTE_HANDLERS in scope:
        from starlette.exceptions import HTTPException

        raise HTTPException(status_code=404)
    return error_response(404)


def directory_problem(directory: str) -> str | None:
    """Why ``directory`` cannot be served, or None."""
    if os.path.isdir(directory):
        return None
    what = "is not a directory" if os.path.exists(directory) else "does not exist"
    return f"Directory '{directory}' {what}"


def _package_list(packages: object) -> list[str | tuple[str, str]]:
    if packages is None:
        return []
    if not isinstance(packages, list | tuple) or not all(
        isinstance(p, str)
        or (isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p))
        for p in packages
    ):
        raise ConfigError(
            "StaticFiles(packages=...): expected a list of package names or"
            f" (package, folder) pairs, got {packages!r}"
        )
    return list(packages)


def package_directory(package: str | tuple[str, str]) -> str:
    """The folder a ``packages`` entry names: ``statics`` beside the package's ``__init__``
    (Starlette's rule), or the pair's folder."""
    name, folder = package if isinstance(package, tuple) else (package, "statics")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise ConfigError(f"StaticFiles(packages=...): package {name!r} could not be found")
    directory = os.path.normpath(os.path.join(spec.origin, "..", folder))
    if not os.path.isdir(directory):
        raise ConfigError(f"StaticFiles(packages=...): no directory {folder!r} in package {name!r}")
    return directory


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop, but hosts that insist on the lifespan protocol get answers."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_DEFAULTS = StaticOptions()


def static_options(root: str, given: Mapping[str, object]) -> StaticOptions:
    """``StaticOptions`` from keyword arguments (None: the default), type-checked, since the
    dataclass trusts the CLI's parser to hand it the right types."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        default = getattr(_DEFAULTS, name)
        if isinstance(default, tuple):
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"StaticFiles({name}=...): expected a list or tuple of str, got {value!r}"
                )
            value = tuple(value)
        elif type(value) is not type(default):  # exact: True is an int, 1 is not a bool
            kind = type(default).__name__
            raise ConfigError(f"StaticFiles({name}=...): expected {kind}, got {value!r}")
        values[name] = value
    try:
        return dataclasses.replace(_DEFAULTS, root=root, **values)
    except ConfigError as exc:
        raise ConfigError(f"StaticFiles: {exc}") from None
