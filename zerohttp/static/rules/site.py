"""The static handler with the site's rules around it, kept current by ``stat``.

Before the files: the redirect or rewrite that ``_redirects`` decides (rewrites call the
handler with TO's path, which it decodes and checks like any request). After them: the
fields of every matching ``_headers`` block, on whatever the handler answered (a file, a
304, the 404 page, the SPA fallback, a listing, an error).

The settings' rules come first: ``--header`` fields, then ``header_rules`` and
``redirect_rules`` (the config file's tables), then the files' own. The files are
revalidated like every file: their identity (device, inode, size, mtime) is taken at most
once per event-loop pass, so the first request after an edit has finished sees the new
rules; requests that arrived together in one pass share one check. A file whose mtime is
under a second old is read again at the next check (a second write in the same clock tick
keeps its size and mtime). While neither file exists, the check is one ``stat`` of ROOT
instead of two: a file can only appear by an entry made in ROOT, which moves its mtime. A
malformed rule stops the start (ConfigError); at a reload it is logged once, naming file
and line, and the last good rules stay.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Protocol

from ...errors import ConfigError
from ...http.loop_pass import OncePerPass
from ...message.response import Fields, RequestHead, Response
from ..options import StaticOptions, header_fields
from .errors import RuleSyntaxError
from .headers_file import HeaderBlock, parse_headers
from .matching import RuleSet
from .redirects_file import REWRITE, RedirectRule, parse_redirects

logger = logging.getLogger("zerohttp")

HEADERS_FILE = "_headers"
REDIRECTS_FILE = "_redirects"
SETTLED_NS = 1_000_000_000  # an mtime older than this cannot be followed by an unseen write

Identity = tuple[int, int, int, int]
Identities = tuple[Identity | None, ...]


class Files(Protocol):
    """The static handler (``StaticHandler``) as the rules see it."""

    def handle(self, request: RequestHead) -> Response: ...


def wanted(options: StaticOptions) -> bool:
    """Whether anything can come of the rules: without files, settings' rules or fields,
    the static handler is served bare (no per-request check at all)."""
    return bool(
        options.site_rules or options.header or options.header_rules or options.redirect_rules
    )


class SiteRules:
    """Applies the rules for ``root`` around ``files``; raises ConfigError at a bad rule."""

    def __init__(self, files: Files, root: str, options: StaticOptions) -> None:
        self.files = files
        self.root = root
        # ROOT's (device, inode, mtime) when neither file existed, and that mtime was
        # settled: while it holds, the files are still absent
        self._empty_root: tuple[int, int, int] | None = None
        self.paths: tuple[str, ...] = (
            (os.path.join(root, HEADERS_FILE), os.path.join(root, REDIRECTS_FILE))
            if options.site_rules
            else ()
        )
        self.always: Fields = header_fields(options.header)
        try:
            self.blocks: tuple[HeaderBlock, ...] = parse_headers(
                "\n".join(options.header_rules), "header_rules"
            )
            self.redirects: tuple[RedirectRule, ...] = parse_redirects(
                "\n".join(options.redirect_rules), "redirect_rules"
            )
            self._seen = self._identities()
            self._texts = self._read()
            self.rules = self._build(self._texts)
        except RuleSyntaxError as exc:
            raise ConfigError(str(exc)) from None
        except OSError as exc:
            raise ConfigError(f"site rules: cannot read {exc.filename}: {exc.strerror}") from None
        self._failed = ""  # the last reload failure logged
        self.revalidation = OncePerPass(due=bool(self.paths))

    def handle(self, request: RequestHead) -> Response:
        if self.revalidation.due:
            self._revalidate()
        rules = self.rules
        if rules.empty:
            return self.files.handle(request)
        target = request.target
        query = b""
        if b"?" in target:
            target, _, query = target.partition(b"?")
        decision = rules.decision(target, request.header(b"host") if rules.uses_host else None)
        status = decision.status
        if status:
            if status != REWRITE:
                return decision.redirect(query)
            request = RequestHead(
                request.method, decision.rewritten(query), request.http_version, request.headers
            )
        response = self.files.handle(request)
        if decision.fields is not None:
            decision.fields.apply(response)
        return response

    def _revalidate(self) -> None:
        """Take the files' identities (once this loop pass) and reload what changed."""
        self.revalidation.taken()
        seen = self._identities()
        if seen is None or seen != self._seen:
            self._reload(seen)

    def _reload(self, seen: Identities | None) -> None:
        self._seen = seen
        try:
            texts = self._read()
            if texts == self._texts:
                return
            rules = self._build(texts)
        except OSError as exc:
            self._failed_once(f"cannot read {exc.filename}: {exc.strerror}")
            return
        except RuleSyntaxError as exc:
            self._failed_once(str(exc))
            return
        self._texts, self.rules, self._failed = texts, rules, ""
        logger.info("site rules reloaded from %s", os.path.dirname(self.paths[0]))

    def _failed_once(self, why: str) -> None:
        """Log a reload's failure once (every request would otherwise log it again)."""
        if why != self._failed:
            logger.error("site rules not reloaded, the previous rules stay: %s", why)
        self._failed = why

    def _identities(self) -> Identities | None:
        """Each file's identity (None for a missing one); None for all while one is under
        a second old: it is read again at the next check."""
        settled = time.time_ns() - SETTLED_NS
        root = self._root_identity(settled)
        if root is not None and root == self._empty_root:
            return self._seen  # still neither file: nothing was added to ROOT
        found: list[Identity | None] = []
        for path in self.paths:
            try:
                st = os.stat(path)
            except OSError:
                found.append(None)
                continue
            if st.st_mtime_ns > settled:
                return None
            found.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        # ROOT was looked at first: a file made after that look moves its mtime again
        self._empty_root = root if not any(found) else None
        return tuple(found)

    def _root_identity(self, settled: int) -> tuple[int, int, int] | None:
        """ROOT's identity, or None when it cannot vouch for absence (unreadable, or
        changed under a second ago: another entry may follow in the same clock tick)."""
        try:
            st = os.stat(self.root)
        except OSError:
            return None
        if st.st_mtime_ns > settled:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns)

    def _read(self) -> tuple[bytes | None, ...]:
        texts: list[bytes | None] = []
        for path in self.paths:
            try:
                with open(path, "rb") as file:
                    texts.append(file.read())
            except FileNotFoundError:
                texts.append(None)
        return tuple(texts)

    def _build(self, texts: tuple[bytes | None, ...]) -> RuleSet:
        blocks, redirects = self.blocks, self.redirects
        if texts:
            headers, redirects_text = texts
            if headers is not None:
                blocks += parse_headers(_decoded(headers, self.paths[0]), self.paths[0])
            if redirects_text is not None:
                redirects += parse_redirects(_decoded(redirects_text, self.paths[1]), self.paths[1])
        return RuleSet(blocks, redirects, self.always)


def _decoded(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RuleSyntaxError(source, line, "not UTF-8 text") from None
