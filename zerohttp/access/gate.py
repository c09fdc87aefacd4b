"""``--basic-auth-file``: the handler that asks for a password before the one it wraps.

bcrypt costs 2-250 ms a check, on purpose, so the gate never runs one on the event loop
and runs each one once:

- a request whose ``Authorization`` value has passed before is answered at once, by the
  inner handler, synchronously: the value's keyed hash (BLAKE2b with a secret drawn at
  start) is in a bounded LRU of successes. Only the hash is kept, never the password, and
  the secret makes the keys useless outside this process;
- a value that failed before is refused at once from a bounded LRU of failures, so one
  wrong password sent again and again costs nothing;
- any other value is checked in a small thread pool (bcrypt releases the GIL; its threads
  run at a lower priority, so on one core the loop still comes first) and the request
  answered by a ``Responder`` once the check is done. A second request with the same value
  meanwhile waits for the same check. At most ``MAX_PENDING_PER_THREAD`` checks per thread
  are running or queued; beyond that the answer is 503 at once: a flood of made-up
  passwords fills the queue, never the loop, and a client already signed in never waits.

The password file is revalidated by ``stat`` before any request with credentials is let
through, like every file (once per pass of the event loop: see ``_revalidate``): an edit
takes effect on the next request and empties both caches. A
file that no longer parses keeps the last good entries, with one log line per version.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from ..errors import ConfigError, HTTPError
from ..http.deferred import send_response
from ..http.driver import Upgrade
from ..http.exchange import Exchange, Responder
from ..http.loop_pass import OncePerPass
from ..http.server_state import Handler
from ..message.response import RequestHead, Response, error_response
from ..static.paths import parse_target
from ..static.urlpattern import UrlPattern, compile_pattern
from .basic_auth import busy, challenge, parse_basic
from .htpasswd import HtpasswdError, PasswordFile, parse_htpasswd

logger = logging.getLogger("zerohttp")

# Successful and failed credentials remembered (keyed hashes, 16 bytes each).
GRANTED_MAX = 4096
DENIED_MAX = 4096
# Checks running or queued per thread before the gate answers 503: with bcrypt at cost
# 10 (~60 ms here) a legitimate user waits at most about half a second behind a flood.
MAX_PENDING_PER_THREAD = 8
# The verification threads' nice value, above the event loop's (Linux: per thread).
CHECK_NICENESS = 10

Signature = tuple[int, int, int, int] | None  # st_dev, st_ino, st_size, st_mtime_ns


def check_threads() -> int:
    """One or two threads: as many as the CPUs this process may use, at most two."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def _lower_priority() -> None:
    """Run in each verification thread: a bcrypt check must not take the loop's CPU."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHECK_NICENESS)


def signature_of(path: str | bytes) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_password_file(path: str) -> PasswordFile:
    """Parse the file at ``path``; HtpasswdError (with the line) or OSError."""
    with open(path, encoding="utf-8") as file:
        try:
            text = file.read()
        except UnicodeDecodeError:
            raise HtpasswdError(f"{path}: not UTF-8 text") from None
    return parse_htpasswd(text, path)


def in_scope(target: bytes, patterns: Sequence[UrlPattern]) -> bool:
    """Whether the request path matches one of ``patterns`` (decoded and normalised as
    the file handler reads it, so ``/a/../admin/x`` is ``/admin/x``). A target that does
    not decode is in scope: it is refused either way, and never without the password."""
    try:
        path = parse_target(target)
    except HTTPError:
        return True
    text = path.matched
    return any(pattern.regex.fullmatch(text) is not None for pattern in patterns)


def is_preflight(request: RequestHead) -> bool:
    """A CORS preflight (Fetch: OPTIONS with Origin and Access-Control-Request-Method):
    browsers send it without credentials, so it must reach the CORS handler without."""
    return (
        request.method == b"OPTIONS"
        and request.header(b"origin") is not None
        and request.header(b"access-control-request-method") is not None
    )


class BasicAuthGate:
    """The inner handler's answer for requests with valid credentials, else 401."""

    def __init__(
        self,
        inner: Handler,
        path: str,
        *,
        realm: str = "zerohttp",
        scope: Sequence[str] = (),
        preflights_pass: bool = False,
        threads: int | None = None,
    ) -> None:
        self.inner = inner
        self.path = path
        self.stat_path = os.fsencode(path)  # os.stat skips encoding a bytes path
        self.signature = signature_of(self.stat_path)
        self.passwords = read_password_file(path)  # HtpasswdError, OSError: the caller's
        self.scope = tuple(compile_pattern(pattern) for pattern in scope)
        self.preflights_pass = preflights_pass
        self.refusal = challenge(realm)
        self.secret = os.urandom(32)
        self.granted: OrderedDict[bytes, None] = OrderedDict()
        self.denied: OrderedDict[bytes, None] = OrderedDict()
        self.checks: dict[bytes, asyncio.Future[bool]] = {}  # by key, for this file version
        self.generation = 0  # the file version checks are made against
        self.running = 0  # checks submitted and not yet done, of any version
        self.revalidation = OncePerPass()  # the file's stat: once a pass of the event loop
        count = threads or check_threads()
        self.max_pending = count * MAX_PENDING_PER_THREAD
        self.pool = ThreadPoolExecutor(
            count, thread_name_prefix="zerohttp-auth", initializer=_lower_priority
        )

    def handle(self, request: RequestHead) -> Response | Responder | Upgrade:
        if self.scope and not in_scope(request.target, self.scope):
            return self.inner.handle(request)
        if self.preflights_pass and is_preflight(request):
            return self.inner.handle(request)
        value = request.header(b"authorization")
        if value is None:
            return self.refusal
        if self.revalidation.due:
            self._revalidate()
        key = hashlib.blake2b(value, key=self.secret, digest_size=16).digest()
        granted = self.granted
        if key in granted:
            granted.move_to_end(key)
            return self.inner.handle(request)
        if key in self.denied:
            return self.refusal
        check = self.checks.get(key)
        if check is None:
            credentials = parse_basic(value)
            if credentials is None:
                return self.refusal
            if self.running >= self.max_pending:
                return busy()
            check = self._start_check(key, *credentials)
        return AfterCheck(self, check, request)

    def _revalidate(self) -> None:
        """``stat`` the file once per pass of the event loop, not once per request (~3 µs
        each, a tenth of a 1 KiB response; ``http.loop_pass`` says why that is exact)."""
        self.revalidation.taken()
        if signature_of(self.stat_path) != self.signature:
            self.reload()

    def _start_check(self, key: bytes, user: str, password: str) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        check = loop.run_in_executor(self.pool, self.passwords.verify, user, password)
        self.checks[key] = check
        self.running += 1
        check.add_done_callback(partial(self._settled, key, self.generation))
        return check

    def _settled(self, key: bytes, generation: int, check: asyncio.Future[bool]) -> None:
        """Remember the outcome, if the file is still the version it was checked against."""
        self.running -= 1
        if self.checks.get(key) is check:
            del self.checks[key]
        if generation != self.generation or check.cancelled():
            return
        error = check.exception()
        if error is not None:
            logger.error("basic auth: a password check failed: %s", error)
            return
        remembered = self.granted if check.result() else self.denied
        remembered[key] = None
        if len(remembered) > (GRANTED_MAX if remembered is self.granted else DENIED_MAX):
            remembered.popitem(last=False)

    def reload(self) -> None:
        """The file changed: its new entries, and nothing remembered of the old ones; or,
        if it cannot be read, the last good entries and one line in the log."""
        self.signature = signature = signature_of(self.stat_path)
        try:
            if signature is None:
                raise OSError("cannot stat it")
            passwords = read_password_file(self.path)
        except (OSError, HtpasswdError) as exc:
            logger.error(
                "--basic-auth-file %s: %s; keeping the entries read before", self.path, exc
            )
            return
        self.passwords = passwords
        self.generation += 1
        self.granted.clear()
        self.denied.clear()
        self.checks.clear()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class AfterCheck:
    """The answer to a request whose password is being checked: the inner handler's if
    it is right, 401 if not."""

    __slots__ = ("check", "gate", "request")

    def __init__(self, gate: BasicAuthGate, check: asyncio.Future[bool], request: RequestHead):
        self.gate = gate
        self.check = check
        self.request = request

    async def run(self, exchange: Exchange) -> None:
        try:
            # shielded: other requests may wait for the same check
            granted = await asyncio.shield(self.check)
        except Exception:
            granted = False
        if not granted:
            await send_response(exchange, self.gate.refusal)
            return
        answer = self.gate.inner.handle(self.request)
        if isinstance(answer, Response):
            await send_response(exchange, answer)
        elif isinstance(answer, Upgrade):
            # a protocol switch cannot go through an exchange: the client may retry, and
            # its credentials are remembered now, so the next answer is synchronous
            answer.response.release()
            await send_response(exchange, error_response(503, [("Retry-After", "0")]))
        else:
            await answer.run(exchange)


def gate_from_settings(
    inner: Handler,
    path: str,
    realm: str,
    scope: Sequence[str],
    preflights_pass: bool,
) -> BasicAuthGate:
    """The gate, or ConfigError naming the flag, the file and the line."""
    try:
        return BasicAuthGate(inner, path, realm=realm, scope=scope, preflights_pass=preflights_pass)
    except HtpasswdError as exc:
        raise ConfigError(f"--basic-auth-file: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"--basic-auth-file {path}: {exc.strerror or exc}") from None
