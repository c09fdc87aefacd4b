"""The static-file request handler: a short ladder of pure decisions around the lookups.

``StaticHandler.handle`` reads top to bottom: method, path decoding, hidden names, the
file-system lookup (the only I/O, in ``files.py``), then the response for what was found:
redirect, listing, 404 page, SPA fallback, or a file — whose representation (precompressed
sibling or not) is chosen here and whose status and fields ``representation.py`` decides.
Every front end (the TCP server, ``--mount``, the ASGI ``zerohttp.StaticFiles`` app) reuses
the same ``handle``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError, HTTPError
from ..message.response import FileBody, RequestHead, Response, error_response, rendered
from .autoindex import render_listing
from .compress.codecs import codec_for
from .compress.jobs import Compressor, Pending
from .compress.policy import qualifies
from .compress.store import CacheDirRefused, CopyKey, open_store
from .filecache import CacheEntry, CacheKey, FileCache, SharedFile, identity_of
from .files import Directory, FileInfo, FileResolver, NeedsSlash, NotFound, OpenFile
from .media_types import MediaTypes
from .negotiation import SIBLING_SUFFIXES, choose_encoding, parse_accept_encoding
from .options import StaticOptions
from .paths import RequestPath, parse_target
from .representation import (
    IMMUTABLE,
    Plan,
    Representation,
    plan_after,
    plan_response,
    precondition,
    validator_fields,
    whole_file,
)

ALLOW = "GET, HEAD, OPTIONS"
NOT_FOUND_PAGE = "404.html"


def redirect_response(path: RequestPath) -> Response:
    """308 keeps the method; the Location is rebuilt from clean segments (no open redirect)."""
    return error_response(308, [("Location", path.url(trailing_slash=True))])


def method_not_allowed() -> Response:
    return error_response(405, [("Allow", ALLOW)])


def options_response() -> Response:
    """204 for OPTIONS: what the resource (or the server, for ``*``) accepts."""
    return Response(204, (("Allow", ALLOW),))


def listing_response(page: bytes) -> Response:
    fields = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page))),
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
    )
    return Response(200, fields, page)


def under_prefix(response: Response, prefix: str) -> Response:
    """``response`` as seen through a mount at ``prefix`` (percent-encoded, no trailing
    slash): the handler's ``Location`` is a path from its own root, so it gains the prefix.

    The one rewrite for every front end that mounts a handler below a path (``--mount``,
    the ASGI ``StaticFiles`` under a ``root_path``).
    """
    location = response.field("Location")
    if prefix and location is not None and location.startswith("/"):
        response.set_field("Location", prefix + location)
    return response


def spa_fallback_applies(path: RequestPath) -> bool:
    """Client-side routes look like ``/users/42``; ``/app.js`` missing is a real 404."""
    last = path.segments[-1] if path.segments else ""
    return not path.trailing_slash and "." not in last


PLAN_HEADERS = frozenset(
    {b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since", b"range"}
)


def scan_headers(headers: Sequence[tuple[bytes, bytes]]) -> tuple[bytes | None, bool]:
    """One pass over the request headers for what the static handler looks at first:
    Accept-Encoding, and whether the request is plain (no conditional or Range header: a
    cached 200 can be sent as it is)."""
    accept = None
    plain = True
    for name, value in headers:
        if name == b"accept-encoding":
            accept = value
        elif name in PLAN_HEADERS:
            plain = False
    return accept, plain


@dataclass(frozen=True, slots=True)
class Choice:
    """The representation negotiated for a found file."""

    file: OpenFile  # the found file itself, a precompressed sibling, or a compressed copy
    encoding: str | None = None
    vary: bool = False  # the choice depended on Accept-Encoding
    level: int | None = None  # a copy zerohttp compressed, at this level
    final: bool = True  # False: identity only until the copy being made is ready


def make_compressor(config: StaticOptions) -> Compressor | None:
    """The compressor for ``--compress`` (None when off); its store opens on first need."""
    if not config.compress:
        return None
    return Compressor(lambda: open_store(config.compress_cache, config.compress_cache_size))


class StaticHandler:
    """Decides the response for a request to the files below ``config.root``."""

    def __init__(self, config: StaticOptions) -> None:
        self.config = config
        self.cache = FileCache(config.open_file_cache) if config.open_file_cache else None
        self.resolver = FileResolver(config.root, config.index)
        self.media_types = MediaTypes(config.mime_overrides)
        self.immutable = re.compile(config.immutable_pattern) if config.immutable_pattern else None
        self.compressor = make_compressor(config)
        # the cache key holds Accept-Encoding
        self.negotiates = bool(config.precompressed) or self.compressor is not None

    def prepare(self) -> str:
        """Open the compression cache now (the server's start): ConfigError for a directory
        that is not safely ours; returns the line to log about it, if any."""
        if self.compressor is None:
            return ""
        try:
            self.compressor.open()
        except CacheDirRefused as exc:
            raise ConfigError(f"--compress-cache: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"--compress-cache: {exc}") from None
        return self.compressor.notice

    def close(self) -> None:
        """Stop the compression jobs (the server's shutdown)."""
        if self.compressor is not None:
            self.compressor.close()

    def handle(self, request: RequestHead) -> Response:
        """The response to ``request``; to HEAD, GET's with the body still in it, which the
        sender drops (``Response.body_for``).

        A hit in the open-file cache is answered here, in as few steps as it takes: it is
        most requests, and what it costs is most of a small file's server time.
        """
        method = request.method
        if method != b"GET" and method != b"HEAD":
            return options_response() if method == b"OPTIONS" else method_not_allowed()
        accept, plain = scan_headers(request.headers)
        cache = self.cache
        if cache is None:
            return self._lookup(request, accept, plain, None)
        target = request.target
        if b"?" in target:
            target = target.partition(b"?")[0]
        key = (target, accept if self.negotiates else None)
        entry = cache.get(key)
        if entry is None:
            return self._lookup(request, accept, plain, key)
        if not plain:
            return self._conditional(request, entry)
        file = entry.file
        head = entry.head_200
        return Response(
            200,
            head.fields,
            FileBody(file.acquire(), entry.path, entry.segments_200, file),
            False,
            head,
        )

    def _lookup(
        self, request: RequestHead, accept: bytes | None, plain: bool, key: CacheKey | None
    ) -> Response:
        """The response when the cache has none: the path decoded and looked up on disk."""
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
            key = None  # the route may become a real file: never cache a fallback
        return self._file_response(request, path, found, accept, plain, key)

    def _file_response(
        self,
        request: RequestHead,
        path: RequestPath,
        found: OpenFile,
        accept: bytes | None,
        plain: bool,
        key: CacheKey | None,
    ) -> Response:
        content_type = self.media_types.content_type(found.name)
        choice = self._negotiate(accept, found, content_type)
        chosen = choice.file
        rep = Representation(
            chosen.info,
            content_type,
            choice.encoding,
            self._cache_control(path),
            choice.vary,
            int(time.time()),
            choice.level,
        )
        entry = None
        if key is not None and choice.final and self._cacheable(path, found, rep):
            entry = self._remember(key, path, found, choice, rep, negotiated=accept is not None)
        if chosen is not found:
            os.close(found.fd)
        if entry is not None:
            return self._from_entry(request, entry, plain)
        file = SharedFile(chosen.fd)
        try:
            return self._bind(plan_response(request, rep), file, chosen.path)
        finally:
            file.retire()  # closes now, or when the response has been sent

    def _from_entry(self, request: RequestHead, entry: CacheEntry, plain: bool) -> Response:
        """A response from a cached representation; as rendered when nothing is conditional.
        (``handle`` has it inline for a hit.)"""
        if not plain:
            return self._conditional(request, entry)
        file = entry.file
        body = FileBody(file.acquire(), entry.path, entry.segments_200, file)
        return Response(200, entry.head_200.fields, body, False, entry.head_200)

    def _conditional(self, request: RequestHead, entry: CacheEntry) -> Response:
        """A cached representation for a request with conditions or a Range; a 304 is sent
        as the entry rendered it."""
        status = precondition(request, entry.rep)
        if status == 304:
            head = entry.head_304
            return Response(304, head.fields, b"", False, head)
        return self._bind(plan_after(request, entry.rep, status), entry.file, entry.path)

    @staticmethod
    def _bind(plan: Plan, file: SharedFile, path: str) -> Response:
        """The response for ``plan``; a body holds a reference on ``file``."""
        if plan.status in (412, 416):
            return error_response(plan.status, plan.fields)
        if plan.status == 304:  # no body: the file is not needed
            return Response(304, tuple(plan.fields))
        body = FileBody(file.acquire(), path, plan.segments, owner=file)
        return Response(plan.status, tuple(plan.fields), body)

    def _cacheable(self, path: RequestPath, found: OpenFile, rep: Representation) -> bool:
        """Only what a single stat per file can revalidate: a file reached directly or as
        the first index name, with an mtime already in the past (Last-Modified is clamped
        to now, so a future mtime would make the cached fields drift)."""
        last_modified = rep.validators.last_modified
        if last_modified is None or rep.now is None or last_modified >= rep.now:
            return False
        return not path.trailing_slash or found.name == self.config.index[0]

    def _remember(
        self,
        key: CacheKey,
        path: RequestPath,
        found: OpenFile,
        choice: Choice,
        rep: Representation,
        *,
        negotiated: bool,
    ) -> CacheEntry:
        """A cache entry for ``rep``, revalidated by the stat of the requested file (a
        compressed copy is named by that file's identity: the same check covers it) and
        of a precompressed sibling."""
        assert self.cache is not None
        chosen = choice.file
        requested = os.path.join(self.resolver.root, path.relative)
        if path.trailing_slash:
            requested = os.path.join(requested, found.name)
        checks = [(requested, identity_of(os.fstat(found.fd)))]
        if chosen is not found and choice.level is None:
            checks.append((chosen.path, identity_of(os.fstat(chosen.fd))))
        if negotiated and self.config.precompressed:
            directory = os.path.dirname(found.path)
            checks.append((directory, identity_of(os.stat(directory))))
        plan = plan_response(RequestHead(b"GET", b"", b"1.1"), rep)
        entry = CacheEntry(
            rep,
            SharedFile(chosen.fd),
            chosen.path,
            rendered(tuple(plan.fields)),
            rendered(tuple(validator_fields(rep, rep.validators))),
            plan.segments,
            tuple((os.fsencode(path), identity) for path, identity in checks),
        )
        self.cache.put(key, entry)
        return entry

    def _negotiate(self, accept: bytes | None, found: OpenFile, content_type: str) -> Choice:
        """The precompressed sibling or compressed copy to send instead of ``found``, if any,
        and whether to Vary. A sibling the client accepts wins over a copy.

        The caller closes ``found`` when another file is returned.
        """
        vary = False
        codings = self.config.precompressed
        if codings:
            available = [
                c for c in codings if self.resolver.sibling_exists(found, SIBLING_SUFFIXES[c])
            ]
            if available:
                vary = True
                coding = (
                    choose_encoding(parse_accept_encoding(accept), available) if accept else None
                )
                if coding is not None:
                    sibling = self.resolver.open_sibling(found, SIBLING_SUFFIXES[coding])
                    if sibling is not None:
                        return Choice(sibling, coding, True)
        config = self.config
        if self.compressor is not None and qualifies(
            content_type, found.info.size, config.compress_min_size, config.compress_max_size
        ):
            return self._compressed(accept, found, self.compressor)
        return Choice(found, None, vary)

    def _compressed(self, accept: bytes | None, found: OpenFile, compressor: Compressor) -> Choice:
        """The compressed copy of ``found`` in the best coding the client accepts; identity
        while the copy is being made (its job started here), or when it is not worth it."""
        if not accept:
            return Choice(found, None, True)
        coding = choose_encoding(parse_accept_encoding(accept), self.config.compress)
        if coding is None:
            return Choice(found, None, True)
        codec = codec_for(coding)
        info = found.info
        key = CopyKey(
            info.device, info.inode, info.size, info.mtime_ns, info.ctime_ns, coding, codec.level
        )
        copy = compressor.copy_for(key, codec, found.fd)
        if isinstance(copy, Pending):
            return Choice(found, None, True, final=copy is Pending.USELESS)
        opened = FileInfo(copy.size, info.mtime_ns, copy.inode, copy.device)
        return Choice(OpenFile(copy.fd, opened, found.name, copy.path), coding, True, codec.level)

    def _cache_control(self, path: RequestPath) -> str | None:
        if self.immutable is not None and self.immutable.search("/" + path.relative):
            return IMMUTABLE
        return self.config.cache_control or None

    def _not_found(self) -> Response:
        """404, with ``ROOT/404.html`` as the body when there is one."""
        page = self.resolver.lookup(NOT_FOUND_PAGE, False)
        if not isinstance(page, OpenFile):
            return error_response(404)
        fields = (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(page.info.size)),
            ("X-Content-Type-Options", "nosniff"),
        )
        body = FileBody(page.fd, page.path, whole_file(page.info.size))
        return Response(404, fields, body)
