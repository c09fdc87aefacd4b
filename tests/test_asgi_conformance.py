"""ASGI HTTP conformance battery: zerohttp's ASGI host, with uvicorn as the reference.

Every test runs against three servers started as subprocesses in tests/ (so the app is
``apps.conformance:app``): ``uvicorn``, ``zerohttp-uvloop`` and ``zerohttp-asyncio``. One
server per variant serves the whole module; tests that need other flags (``--root-path``,
``--lifespan``, a SIGTERM) launch their own. Requests go over raw sockets and responses
are parsed here, so framing (Content-Length, chunked, close-delimited) is seen as sent.

Where the spec lets zerohttp differ from uvicorn (extensions, spec_version), the test
asserts each server's behaviour and quotes the spec. The spec is django/asgiref
specs/www.rst, specs/lifespan.rst and docs/extensions.rst; the facts used are collected in
shared/notes/asgi-hosting.md.

The zero-copy proof at the end runs the host in this process, so a patched
``os.sendfile`` (which ``zerohttp.body.zerocopy.sendfile_function`` looks up per use)
counts the bytes sendfile(2) moves.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest
from apps.conformance import (
    FIXED_BODY,
    PATHSEND,
    ZEROCOPY_PLANS,
    ZEROCOPYSEND,
    make_fastapi_app,
    zerocopy_expected,
)
from conftest import start_server
from helpers import free_port

TESTS = Path(__file__).resolve().parent
VARIANTS = ["uvicorn", "zerohttp-uvloop", "zerohttp-asyncio"]
APP = "apps.conformance:app"
TIMEOUT = 10.0
MIB = 1024 * 1024
BANNER_PORT = re.compile(r"on http://127\.0\.0\.1:(\d+)/")

# files under CONFORMANCE_DATA
BIG = "big.bin"  # 20 MiB: FastAPI / Starlette FileResponse
PATHSEND_FILE = "pathsend.bin"
ZEROCOPY_FILE = "zerocopy.bin"


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    root: Path
    files: dict[str, bytes]


def make_data(root: Path) -> Data:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        BIG: os.urandom(20 * MIB),
        PATHSEND_FILE: os.urandom(3 * MIB + 17),
        ZEROCOPY_FILE: os.urandom(3 * MIB),
    }
    for name, content in files.items():
        (root / name).write_bytes(content)
    return Data(root.resolve(), files)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return make_data(tmp_path_factory.mktemp("asgi-data"))


# --- servers as subprocesses ---------------------------------------------------------------


class Launched:
    """One server process (cwd tests/), its port, and its stderr collected line by line."""

    def __init__(
        self, variant: str, data: Data, *args: str, app: str = APP, marker: Path | None = None
    ) -> None:
        self.variant = variant
        flags = list(args)
        if "--lifespan" not in flags:
            flags += ["--lifespan", "on"]
        port = 0
        if variant == "uvicorn":
            # uvicorn has no --port 0 banner to parse: choose a free port, wait for accept.
            # --http h11: its default with httptools installed (uvicorn[standard]) answers an
            # HTTP/1.0 request with Transfer-Encoding: chunked, which RFC 9112 §6.1 forbids
            # ("A server MUST NOT send a response containing Transfer-Encoding unless the
            # corresponding request indicates HTTP/1.1"); h11 is also what zerohttp uses
            port = free_port()
            command = ["-m", "uvicorn", app, "--port", str(port), "--no-access-log"]
            command += ["--http", "h11", *flags]
        else:
            loop = variant.removeprefix("zerohttp-")
            command = ["-m", "zerohttp", "--app", app, "--loop", loop, "--port", "0", *flags]
        env = dict(os.environ, CONFORMANCE_DATA=str(data.root), PYTHONUNBUFFERED="1")
        env.pop("CONFORMANCE_MARKER", None)
        if marker is not None:
            env["CONFORMANCE_MARKER"] = str(marker)
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            cwd=TESTS,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.new_lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.port = self._wait_ready(port)
        except BaseException:
            self.kill()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            self.new_lines.put(line)
        self.new_lines.put(None)

    def _wait_ready(self, port: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.reader.join(2)
                pytest.fail(f"{self.variant} exited ({self.proc.returncode}):\n{self.stderr}")
            if port:  # uvicorn: it listens once lifespan startup is complete
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return port
                except OSError:
                    time.sleep(0.05)
            else:  # zerohttp: the banner line names the port
                try:
                    line = self.new_lines.get(timeout=0.1)
                except queue.Empty:
                    continue
                match = BANNER_PORT.search(line or "")
                if match:
                    return int(match[1])
        pytest.fail(f"{self.variant} not ready within {timeout} s:\n{self.stderr}")

    @property
    def is_uvicorn(self) -> bool:
        return self.variant == "uvicorn"

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal, wait for the exit, and return the exit status."""
        self.proc.send_signal(sig)
        try:
            returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.variant} did not exit within {timeout} s of signal {sig}")
        self.reader.join(5)
        return returncode

    def assert_clean_exit(self, sig: int = signal.SIGTERM) -> None:
        """Signal; the server must exit cleanly (no traceback) within the timeout."""
        returncode = self.stop(sig)
        if self.is_uvicorn:
            # uvicorn re-raises the captured signal once it has shut down gracefully
            assert returncode in (0, -sig), self.stderr
        else:
            # zerohttp's CLI exits 0 after a signal (tests/test_cli.py)
            assert returncode == 0, self.stderr
        assert "Traceback" not in self.stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def srv(variant: str, data: Data) -> Iterator[Launched]:
    """The module's server for this variant: default flags, lifespan on."""
    server = Launched(variant, data)
    try:
        yield server
    finally:
        server.kill()


Launcher = Callable[..., Launched]


@pytest.fixture
def launch(variant: str, data: Data) -> Iterator[Launcher]:
    """Start an extra server of this variant with other flags; killed after the test."""
    started: list[Launched] = []

    def start(*args: str, app: str = APP, marker: Path | None = None) -> Launched:
        server = Launched(variant, data, *args, app=app, marker=marker)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


# --- a raw HTTP/1.x client -------------------------------------------------------------------


class Incomplete(Exception):
    """The connection ended inside a response body."""

    def __init__(self, partial: bytes, framing: str) -> None:
        super().__init__(f"{framing} body ended after {len(partial)} bytes")
        self.partial = partial
        self.framing = framing


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    framing: str = "none"  # "length", "chunked", "close" or "none" (bodiless)
    chunks: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name.encode()]
        return values[-1].decode("latin-1") if values else None

    def json(self) -> Any:
        return json.loads(self.body, object_hook=decode_bytes)


def decode_bytes(value: dict[str, Any]) -> Any:
    """json object_hook: the app's {"$bytes": base64} back to bytes."""
    if set(value) == {"$bytes"}:
        return base64.b64decode(value["$bytes"])
    return value


class Conn:
    """One client connection with a receive buffer; requests and responses as raw bytes."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        version: str = "1.1",
    ) -> None:
        self.send(build_request(method, target, headers, body, version))

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buf += chunk
        return bool(chunk)

    def read_until(self, separator: bytes) -> bytes:
        while separator not in self.buf:
            if not self._fill():
                raise EOFError(self.buf)
        data, self.buf = self.buf.split(separator, 1)
        return data

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise EOFError(self.buf)
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def quiet_for(self, seconds: float) -> bool:
        """True if no byte arrives within ``seconds`` (and none is buffered)."""
        self.sock.settimeout(seconds)
        try:
            self._fill()
        except TimeoutError:
            return not self.buf
        finally:
            self.sock.settimeout(TIMEOUT)
        return False

    def response(self, method: str = "GET") -> Response:
        head = self.read_until(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        version, status, reason = [*status_line.decode("latin-1").split(" ", 2), ""][:3]
        headers = []
        for line in lines:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        response = Response(version, int(status), reason, headers)
        if response.status < 200 or response.status in (204, 304) or method == "HEAD":
            return response
        transfer_encoding = response.header("transfer-encoding")
        length = response.header("content-length")
        if transfer_encoding is not None and "chunked" in transfer_encoding.lower():
            response.framing = "chunked"
            body = bytearray()
            try:
                while True:
                    size = int(self.read_until(b"\r\n").split(b";")[0], 16)
                    if size == 0:
                        while self.read_until(b"\r\n"):  # trailers, then the blank line
                            pass
                        break
                    body += self.read_exact(size)
                    response.chunks.append(size)
                    assert self.read_exact(2) == b"\r\n", "chunk not followed by CRLF"
            except EOFError as exc:
                raise Incomplete(bytes(body) + exc.args[0], "chunked") from None
            response.body = bytes(body)
        elif length is not None:
            response.framing = "length"
            try:
                response.body = self.read_exact(int(length))
            except EOFError as exc:
                raise Incomplete(exc.args[0], "length") from None
        else:
            response.framing = "close"
            response.body = self.read_to_eof()
        return response


def build_request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    fields = [("Host", "127.0.0.1"), *(headers or [])]
    names = {name.lower() for name, _ in fields}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        fields.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/{version}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields)
    return head.encode("latin-1") + b"\r\n" + body


class Served(Protocol):
    @property
    def port(self) -> int: ...


@dataclass(frozen=True)
class Endpoint:
    port: int


def fetch(
    server: Served,
    target: str,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "1.1",
) -> Response:
    """One request on a new connection."""
    with Conn(server.port) as conn:
        conn.request(method, target, headers, body, version)
        return conn.response(method)


def fetch_scope(server: Served, target: str, **kwargs: Any) -> dict[str, Any]:
    response = fetch(server, target, **kwargs)
    assert response.status == 200, response
    scope: dict[str, Any] = response.json()["scope"]
    return scope


def poll_record(
    server: Served, rid: str, ready: Callable[[Any], bool], timeout: float = TIMEOUT
) -> Any:
    """GET /record?id= until ``ready(record)``; the last record seen."""
    deadline = time.monotonic() + timeout
    while True:
        record = fetch(server, f"/record?id={rid}").json()
        if record is not None and ready(record):
            return record
        if time.monotonic() > deadline:
            return record
        time.sleep(0.05)


def spec_version(scope: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(part) for part in scope["asgi"].get("spec_version", "2.0").split("."))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def assert_serving(server: Served) -> None:
    response = fetch(server, "/still-serving")
    assert response.status == 200
    assert response.json()["scope"]["path"] == "/still-serving"


# --- scope ---------------------------------------------------------------------------------


def test_scope_keys(srv: Launched) -> None:
    with Conn(srv.port) as conn:
        conn.request(
            "GET",
            "/caf%C3%A9%20x?a=%20b&c=%C3%A9&d",
            [("X-Dup", "one"), ("X-Mixed-Case", "Value Kept"), ("X-Dup", "two")],
        )
        response = conn.response()
        client_port = conn.local_port
    assert response.status == 200
    scope = response.json()["scope"]
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert isinstance(scope["asgi"]["spec_version"], str)
    assert re.fullmatch(r"2\.\d+", scope["asgi"]["spec_version"])
    if srv.is_uvicorn:
        # uvicorn's h11 and httptools protocols both say "2.3" (no OSError on send: §2.4)
        assert scope["asgi"]["spec_version"] == "2.3"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    # www.rst: path is "percent-escapes and UTF-8 decoded", without the query string
    assert scope["path"] == "/café x"
    # raw_path: "the original HTTP path component, unmodified from the bytes that were
    # received", without the query string
    assert scope["raw_path"] == b"/caf%C3%A9%20x"
    assert scope["query_string"] == b"a=%20b&c=%C3%A9&d"
    assert scope["root_path"] == ""
    headers = scope["headers"]
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in headers)
    assert all(name == name.lower() for name, _ in headers)
    # duplicates kept, in the order received; values are not lower-cased
    assert [v for n, v in headers if n == b"x-dup"] == [b"one", b"two"]
    assert [v for n, v in headers if n == b"x-mixed-case"] == [b"Value Kept"]
    assert [v for n, v in headers if n == b"host"] == [b"127.0.0.1"]
    assert scope["client"] == ["127.0.0.1", client_port]
    assert scope["server"] == ["127.0.0.1", srv.port]


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_scope_http_version_matches_request(srv: Launched, version: str) -> None:
    scope = fetch_scope(srv, "/v", version=version)
    assert scope["http_version"] == version


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_scope_method(srv: Launched, method: str) -> None:
    response = fetch(srv, "/m", method=method, body=b"12345")
    assert response.status == 200
    assert response.json()["scope"]["method"] == method
    assert response.json()["body_length"] == 5


def test_scope_extensions(srv: Launched) -> None:
    scope = fetch_scope(srv, "/extensions")
    extensions = scope.get("extensions")
    if srv.is_uvicorn:
        # uvicorn advertises no extension ("no `extensions` key": h11_impl.py/httptools_impl.py);
        # asgi.rst: an app may only use an extension whose key the server put in the scope
        assert not extensions
    else:
        # extensions.rst: a server supporting X puts scope["extensions"][X] = {} (a dict)
        assert isinstance(extensions, dict)
        assert isinstance(extensions.get(PATHSEND), dict)
        assert isinstance(extensions.get(ZEROCOPYSEND), dict)


def test_scope_state_is_a_shallow_copy_per_request(srv: Launched) -> None:
    # lifespan.rst: the server makes "a *shallow copy* of the namespace" for each request
    first = fetch(srv, "/state").json()
    second = fetch(srv, "/state").json()
    for report in (first, second):
        assert report["present"]
        assert report["state"]["greeting"] == "hello", "startup's state is missing"
        assert "leak" not in report["state"], "a request's change reached a later request"
        # shallow: the nested object lifespan stored is the very same object
        assert report["shared_is_startup_object"]
    assert len(second["state"]["shared"]) == len(first["state"]["shared"]) + 1


def test_root_path_prefixes_path(launch: Launcher) -> None:
    server = launch("--root-path", "/api")
    scope = fetch_scope(server, "/echo/caf%C3%A9?q=1")
    assert scope["root_path"] == "/api"
    # www.rst WSGI compatibility: "PATH_INFO can be derived by stripping root_path from
    # path", so path includes root_path (uvicorn: path = root_path + unquote(raw_path))
    assert scope["path"] == "/api/echo/café"
    assert scope["query_string"] == b"q=1"
    # raw_path "as received" is b"/echo/caf%C3%A9"; uvicorn prefixes root_path to it too,
    # keeping it consistent with path: either is accepted
    assert scope["raw_path"] in (b"/echo/caf%C3%A9", b"/api/echo/caf%C3%A9")


# --- request body --------------------------------------------------------------------------


def check_upload(response: Response, content: bytes) -> dict[str, Any]:
    assert response.status == 200, response
    report: dict[str, Any] = response.json()
    assert report["problems"] == []
    assert report["length"] == len(content)
    assert report["sha256"] == hashlib.sha256(content).hexdigest()
    return report


def test_upload_with_content_length(srv: Launched) -> None:
    content = os.urandom(3 * MIB + 5)
    report = check_upload(fetch(srv, "/upload", "POST", body=content), content)
    assert report["messages"] >= 1


def chunked(content: bytes, sizes: list[int]) -> bytes:
    """``content`` in chunked framing, chunk sizes cycling through ``sizes``."""
    out = bytearray()
    position = index = 0
    while position < len(content):
        size = sizes[index % len(sizes)]
        part = content[position : position + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
        position += size
        index += 1
    return bytes(out + b"0\r\n\r\n")


def test_chunked_upload_to_a_slow_app(srv: Launched) -> None:
    content = os.urandom(4 * MIB + 3)
    body = chunked(content, [1, 7, 4096, 65536, 100_003, 300_000])
    response = fetch(
        srv, "/upload?delay=0.002", "POST", [("Transfer-Encoding", "chunked")], body=body
    )
    report = check_upload(response, content)
    # several MiB arrive as several http.request messages (more_body=True but the last)
    assert report["messages"] > 1


def test_large_upload_to_a_slow_reader_is_flow_controlled(srv: Launched) -> None:
    """64 MiB to an app reading at 128 MiB/s: the digest matches and the server buffers a
    bounded amount (its RSS does not grow by anything near the unread backlog). Without
    flow control the client's 64 MiB arrive in a fraction of the 0.5 s the app takes: the
    RSS grew by 80-100 MiB when zerohttp did not pause reading, by about 1 MiB with it."""
    size = 64 * MIB
    content = os.urandom(size)
    fetch(srv, "/upload", "POST", body=os.urandom(MIB))  # warm up buffers and allocations
    baseline = rss_bytes(srv.proc.pid)
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(srv.proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        response = fetch(srv, f"/upload?rate={128 * MIB}", "POST", body=content)
    finally:
        done.set()
        sampler.join(5)
    check_upload(response, content)
    growth = peak - baseline
    assert growth < 24 * MIB, f"server RSS grew by {growth / MIB:.1f} MiB during the upload"


def test_expect_100_continue_sent_when_the_app_reads(srv: Launched) -> None:
    content = os.urandom(5000)
    with Conn(srv.port) as conn:
        # the app sleeps 0.5 s before its first receive(): no 100 before that
        conn.request(
            "POST",
            "/upload?first_wait=0.5",
            [("Content-Length", str(len(content))), ("Expect", "100-continue")],
        )
        assert conn.quiet_for(0.25), f"{conn.buf!r} came before the app called receive()"
        interim = conn.response()
        assert (interim.version, interim.status) == ("HTTP/1.1", 100)
        conn.send(content)
        check_upload(conn.response(), content)


def test_expect_100_continue_not_sent_when_the_app_does_not_read(srv: Launched) -> None:
    with Conn(srv.port) as conn:
        conn.request("POST", "/no-read", [("Content-Length", "5000"), ("Expect", "100-continue")])
        response = conn.response()
        assert response.status == 200, "an app that never calls receive() gets no 100"
        assert response.body == b"not reading your body\n"
    assert_serving(srv)


# --- http.disconnect -----------------------------------------------------------------------


def disconnect_while_receiving(server: Launched) -> dict[str, Any]:
    """POST a body to /watch-disconnect, wait until the app has read it, close the
    connection; the app's record once it has tried to send afterwards."""
    rid = uuid.uuid4().hex
    conn = Conn(server.port)
    try:
        conn.request("POST", f"/watch-disconnect?id={rid}", body=b"0123456789")
        # the app has read the body and now waits in receive()
        assert poll_record(server, rid, lambda r: r["body"] is not None)["body"] == 10
    finally:
        conn.close()
    record: dict[str, Any] = poll_record(server, rid, lambda r: r["send"] is not None)
    return record


def test_disconnect_reaches_a_pending_receive(srv: Launched) -> None:
    record = disconnect_while_receiving(srv)
    # www.rst: after the http.request with more_body=False the body is complete; the next
    # receive() waits. http.disconnect is "sent to the application if receive is called
    # after ... the HTTP connection has been closed", and may be returned repeatedly
    assert record["after"] == ["http.disconnect", "http.disconnect"]


def test_send_after_disconnect(srv: Launched) -> None:
    record = disconnect_while_receiving(srv)
    assert "http.disconnect" in record["after"]
    scope = fetch_scope(srv, "/spec")
    if spec_version(scope) >= (2, 4):
        # www.rst (2.4): send() on a closed connection "should raise a server-specific
        # subclass of OSError" (zerohttp says 2.4)
        assert record["send"]["oserror"], record["send"]
    else:
        # before 2.4 a send after close is a no-op: uvicorn (2.3) returns silently
        assert record["send"] == {"raised": None, "oserror": False}


def test_disconnect_after_the_response_is_sent(srv: Launched) -> None:
    rid = uuid.uuid4().hex
    with Conn(srv.port) as conn:
        conn.request("GET", f"/after-response?id={rid}")
        assert conn.response().body == b"done\n"
        # the connection stays open: the response alone makes receive() say disconnect
        record = poll_record(srv, rid, lambda r: True, timeout=5)
    # www.rst: "sent to the application if receive is called after a response has been sent"
    assert record == {"after": "http.disconnect"}


# --- response framing ----------------------------------------------------------------------


def test_response_without_length_is_chunked_on_http11(srv: Launched) -> None:
    with Conn(srv.port) as conn:
        conn.request("GET", "/stream?n=3")
        response = conn.response()
        assert response.status == 200
        assert response.framing == "chunked"
        assert response.header("content-length") is None
        assert response.body == b"chunk-0;chunk-1;chunk-2;"
        # still usable afterwards: the last chunk ended the response
        conn.request("GET", "/fixed")
        assert conn.response().body == FIXED_BODY


def test_response_without_length_is_close_delimited_on_http10(srv: Launched) -> None:
    with Conn(srv.port) as conn:
        conn.request("GET", "/stream?n=3", version="1.0")
        response = conn.response()
        assert response.status == 200
        assert response.framing == "close"
        assert response.header("transfer-encoding") is None
        assert response.body == b"chunk-0;chunk-1;chunk-2;"


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_response_with_content_length_as_given(srv: Launched, version: str) -> None:
    response = fetch(srv, "/fixed", version=version)
    assert response.status == 200
    assert response.framing == "length"
    assert response.header("content-length") == str(len(FIXED_BODY))
    assert response.header("transfer-encoding") is None
    assert response.header("x-app") == "fixed"
    assert response.body == FIXED_BODY


@pytest.mark.parametrize(
    "target", ["/fixed", "/stream?n=2", f"/pathsend?name={PATHSEND_FILE}", "/echo"]
)
def test_head_gets_no_body_bytes(srv: Launched, target: str) -> None:
    with Conn(srv.port) as conn:
        conn.request("HEAD", target)
        response = conn.response("HEAD")
        assert response.status in (200, 501)
        # whatever follows the head must be the next response (or the end): no body bytes
        conn.request("GET", "/fixed")
        try:
            conn.sock.settimeout(TIMEOUT)
            next_bytes = conn.read_exact(5)
        except EOFError as exc:
            assert exc.args[0] == b"", f"body bytes after a HEAD response: {exc.args[0]!r}"
        else:
            assert next_bytes == b"HTTP/", f"body bytes after a HEAD response: {conn.buf!r}"


# --- application errors --------------------------------------------------------------------


def test_exception_before_start_is_a_500(srv: Launched) -> None:
    response = fetch(srv, "/raise-before")
    assert response.status == 500
    assert_serving(srv)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_exception_after_start_drops_the_connection(srv: Launched, framing: str) -> None:
    with Conn(srv.port) as conn:
        conn.request("GET", f"/raise-after?framing={framing}")
        with pytest.raises(Incomplete) as excinfo:
            conn.response()
    assert excinfo.value.framing == framing
    assert excinfo.value.partial == b"x" * 10
    assert_serving(srv)


def test_return_without_a_response_is_a_500(srv: Launched) -> None:
    assert fetch(srv, "/no-response").status == 500
    assert_serving(srv)


# --- connections ---------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_socket(srv: Launched) -> None:
    with Conn(srv.port) as conn:
        for index in range(5):
            conn.request("GET", f"/ka/{index}", body=b"x" * index)
            response = conn.response()
            assert response.status == 200
            report = response.json()
            assert report["scope"]["path"] == f"/ka/{index}"
            assert report["scope"]["client"] == ["127.0.0.1", conn.local_port]
            assert report["body_length"] == index


def test_pipelined_requests_are_answered_in_order(srv: Launched) -> None:
    content = os.urandom(100_000)
    with Conn(srv.port) as conn:
        conn.send(
            build_request("GET", "/p/1")
            + build_request("POST", "/upload", body=content)
            + build_request("GET", "/p/3")
            + build_request("HEAD", "/fixed")
            + build_request("GET", "/p/5")
        )
        assert conn.response().json()["scope"]["path"] == "/p/1"
        check_upload(conn.response(), content)
        assert conn.response().json()["scope"]["path"] == "/p/3"
        head = conn.response("HEAD")
        assert head.header("content-length") == str(len(FIXED_BODY))
        assert conn.response().json()["scope"]["path"] == "/p/5"


def test_websocket_upgrade_is_refused_cleanly(srv: Launched) -> None:
    """The app closes before accepting: www.rst (Close - send event) asks for a 403 and no
    handshake, from both servers."""
    mark = len(srv.lines)
    with Conn(srv.port, timeout=5) as conn:
        conn.request(
            "GET",
            "/ws",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ],
        )
        response = conn.response()
        assert response.status == 403
        assert response.header("sec-websocket-accept") is None
        assert response.header("connection") == "close"
    assert_serving(srv)
    assert "Traceback" not in "\n".join(srv.lines[mark:])


# --- lifespan ------------------------------------------------------------------------------


def test_lifespan_startup_and_shutdown_run(launch: Launcher, tmp_path: Path) -> None:
    marker = tmp_path / "shutdown.json"
    server = launch(marker=marker)
    assert fetch(server, "/lifespan").json() == {
        "events": ["startup"],
        "state_keys": ["greeting", "shared"],
    }
    assert not marker.exists()
    server.assert_clean_exit(signal.SIGTERM)
    assert marker.exists(), "lifespan shutdown did not run on SIGTERM"
    assert json.loads(marker.read_text()) == ["startup", "shutdown"]


def test_lifespan_off_runs_none(launch: Launcher, tmp_path: Path) -> None:
    marker = tmp_path / "shutdown.json"
    server = launch("--lifespan", "off", marker=marker)
    report = fetch(server, "/lifespan").json()
    assert report["events"] == []
    # lifespan.rst: state is the namespace lifespan startup filled; none ran, so it is
    # absent or empty
    assert report["state_keys"] in (None, [])
    server.assert_clean_exit(signal.SIGTERM)
    assert not marker.exists(), "lifespan shutdown ran with --lifespan off"


def test_lifespan_auto_with_an_app_that_raises_still_serves(launch: Launcher) -> None:
    # lifespan.rst: if the app raises on the lifespan scope the server "must continue but
    # not send any lifespan events"
    server = launch("--lifespan", "auto", app="apps.conformance:broken_lifespan_app")
    assert fetch(server, "/lifespan").json()["events"] == []
    assert_serving(server)


# --- extensions: pathsend, zerocopysend ----------------------------------------------------


def test_pathsend_sends_the_file(srv: Launched, data: Data) -> None:
    response = fetch(srv, f"/pathsend?name={PATHSEND_FILE}")
    if srv.is_uvicorn:
        # uvicorn does not advertise http.response.pathsend, so the app (rightly) does
        # not use it (extensions.rst: detection by the key in scope["extensions"])
        assert response.status == 501
        return
    assert response.status == 200
    assert response.header("content-length") == str(len(data.files[PATHSEND_FILE]))
    assert response.body == data.files[PATHSEND_FILE]


@pytest.mark.parametrize("length", ["1", "0"], ids=["content-length", "chunked"])
@pytest.mark.parametrize("plan", sorted(ZEROCOPY_PLANS))
def test_zerocopysend_with_offset_count_and_body(
    srv: Launched, data: Data, plan: str, length: str
) -> None:
    response = fetch(srv, f"/zerocopy?name={ZEROCOPY_FILE}&plan={plan}&length={length}")
    if srv.is_uvicorn:
        # uvicorn does not advertise http.response.zerocopysend (extensions.rst detection)
        assert response.status == 501
        return
    expected = zerocopy_expected(ZEROCOPY_PLANS[plan], data.files[ZEROCOPY_FILE])
    assert response.status == 200
    assert response.framing == ("length" if length == "1" else "chunked")
    assert len(response.body) == len(expected)
    assert response.body == expected


# --- FastAPI / Starlette FileResponse ------------------------------------------------------


def test_fastapi_file_response_20_mib(srv: Launched, data: Data) -> None:
    response = fetch(srv, f"/fa/file/{BIG}")
    assert response.status == 200
    assert response.header("content-length") == str(20 * MIB)
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(data.files[BIG]).digest()


def test_starlette_file_response_range(srv: Launched, data: Data) -> None:
    first, last = 1_000_001, 1_000_001 + MIB - 1
    response = fetch(srv, f"/st/file/{BIG}", headers=[("Range", f"bytes={first}-{last}")])
    assert response.status == 206
    assert response.header("content-range") == f"bytes {first}-{last}/{20 * MIB}"
    assert response.body == data.files[BIG][first : last + 1]


# --- zero-copy proof, in process (zerohttp only) --------------------------------------------


REAL_SENDFILE = os.sendfile


class SendfileCounter:
    """Stands in for ``os.sendfile``: counts calls and bytes per source inode."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[int, int, int, int]] = []  # inode, offset, count, sent

    def __call__(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent = REAL_SENDFILE(out_fd, in_fd, offset, count)
        with self.lock:
            self.calls.append((os.fstat(in_fd).st_ino, offset, count, sent))
        return sent

    def sent(self, inode: int) -> int:
        with self.lock:
            return sum(sent for ino, _, _, sent in self.calls if ino == inode)

    def settled(self, inode: int, expected: int, timeout: float = 2.0) -> int:
        """Bytes sent from ``inode``, waiting up to ``timeout`` for ``expected``: the client
        can have read the last bytes before the server thread records the call."""
        deadline = time.monotonic() + timeout
        while self.sent(inode) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.sent(inode)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()


@contextlib.contextmanager
def host_in_thread(app: Any, loop: Literal["uvloop", "asyncio"]) -> Iterator[int]:
    """zerohttp's ASGI host serving ``app`` in a thread of this process; yields the port."""
    with (
        tempfile.TemporaryDirectory() as root,
        start_server(Path(root), loop, app=app) as running,
    ):
        yield running.port


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"], ids=["zerohttp-uvloop", "zerohttp-asyncio"])
def test_zero_copy_proof_in_process(
    loop: Literal["uvloop", "asyncio"], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zerohttp only: a FastAPI FileResponse (pathsend) and a 1 MiB Range of it (one
    zerocopysend: Starlette itself streams every Range as body bytes) go out by sendfile."""
    content = os.urandom(20 * MIB)
    path = tmp_path / BIG
    path.write_bytes(content)
    inode = path.stat().st_ino
    counter = SendfileCounter()
    # sendfile_function() returns os.sendfile looked up per use, so this wraps it too
    monkeypatch.setattr(os, "sendfile", counter)
    with host_in_thread(make_fastapi_app(tmp_path), loop) as port:
        server = Endpoint(port)
        response = fetch(server, f"/fa/file/{BIG}")
        assert response.status == 200
        assert response.body == content
        sent = counter.settled(inode, len(content))
        assert sent == len(content), "sendfile did not move the 20 MiB body"

        counter.reset()
        first, last = 3 * MIB + 5, 4 * MIB + 4
        response = fetch(server, f"/fa/zc/{BIG}", headers=[("Range", f"bytes={first}-{last}")])
        assert response.status == 206
        assert response.body == content[first : last + 1]
        assert counter.settled(inode, MIB) == MIB, "sendfile did not move the 1 MiB range"
        assert all(first <= offset <= last for _, offset, _, _ in counter.calls)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"], ids=["zerohttp-uvloop", "zerohttp-asyncio"])
def test_zero_copy_proof_for_static_files_in_starlette(
    loop: Literal["uvloop", "asyncio"], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zerohttp only: zerohttp.StaticFiles mounted in Starlette sends a 20 MiB file, a
    1 MiB range and both parts of a multipart range with sendfile (zerocopysend)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from zerohttp import StaticFiles

    content = os.urandom(20 * MIB)
    (tmp_path / BIG).write_bytes(content)
    inode = (tmp_path / BIG).stat().st_ino
    app = Starlette(routes=[Mount("/static", StaticFiles(directory=tmp_path))])
    counter = SendfileCounter()
    monkeypatch.setattr(os, "sendfile", counter)
    with host_in_thread(app, loop) as port:
        server = Endpoint(port)
        response = fetch(server, f"/static/{BIG}")
        assert response.status == 200
        assert response.body == content
        assert counter.settled(inode, len(content)) == len(content)

        counter.reset()
        first, last = 7 * MIB + 3, 8 * MIB + 2
        response = fetch(server, f"/static/{BIG}", headers=[("Range", f"bytes={first}-{last}")])
        assert response.status == 206
        assert response.body == content[first : last + 1]
        assert counter.settled(inode, MIB) == MIB
        assert all(first <= offset <= last for _, offset, _, _ in counter.calls)

        counter.reset()
        response = fetch(server, f"/static/{BIG}", headers=[("Range", "bytes=0-99,-100")])
        assert response.status == 206
        assert content[:100] in response.body and content[-100:] in response.body
        assert counter.settled(inode, 200) == 200
