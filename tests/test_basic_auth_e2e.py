"""Basic auth over real sockets: 401 and its challenge, the password from httpx and curl,
an edit of the password file, the paths in scope, the health path, an ASGI app and its
mounts, HEAD/304/Range both before and after the password is remembered, CORS preflights,
sendfile and descriptors on the deferred path, a refused file at start, and a flood of
wrong passwords that does not stall a client already signed in."""

from __future__ import annotations

import base64
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from conftest import RunningServer, make_site, start_server
from helpers import RawClient, open_fds, request_bytes, wait_for
from test_e2e_http import curl

from zerohttp.access.gate import BasicAuthGate

USER, PASSWORD = "alice", "wonderland"
CHALLENGE = 'Basic realm="zerohttp", charset="UTF-8"'
LOOPS = ["uvloop", "asyncio"]


def authorization(user: str = USER, password: str = PASSWORD) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_users(path: Path, rounds: int = 4, **users: str) -> Path:
    users = users or {USER: PASSWORD}
    hashes = {
        name: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds)) for name, pw in users.items()
    }
    # $2y$ as htpasswd -B writes it
    lines = [f"{name}:$2y${hashed.decode()[4:]}" for name, hashed in hashes.items()]
    path.write_text("# htpasswd -B\n" + "\n".join(lines) + "\n")
    return path


def forget(running: RunningServer, users: Path) -> None:
    """Make the server forget every checked password (an edit of the file's mtime), so the
    next request goes through the check in the thread pool again."""
    stat = users.stat()
    os.utime(users, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conftest's site, its files dated a minute back: a file modified in the current second
    is never kept in the open-file cache, so a test's warm-up would not fill it, and the
    cache filling later would count as descriptors left open."""
    root = make_site(tmp_path_factory.mktemp("auth") / "root")
    past = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)
    return root


@pytest.fixture()
def users(tmp_path: Path) -> Path:
    return write_users(tmp_path / "users.htpasswd")


@pytest.fixture(params=LOOPS)
def guarded(request: pytest.FixtureRequest, site: Path, users: Path) -> Iterator[RunningServer]:
    with start_server(site, request.param, basic_auth_file=str(users)) as running:
        yield running


def get(running: RunningServer, target: str, *headers: str, method: str = "GET") -> Any:
    with RawClient(running) as client:
        client.send(request_bytes(method, target, headers=headers))
        return client.read_response(head=method == "HEAD")


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        (),
        (authorization(USER, "wrong"),),
        (authorization("mallory", PASSWORD),),
        ("Authorization: Bearer abc",),
        ("Authorization: Basic !!",),
    ],
    ids=["none", "wrong-password", "unknown-user", "other-scheme", "malformed"],
)
def test_401_with_the_challenge_and_a_body_that_names_no_user(
    guarded: RunningServer, credentials: tuple[str, ...]
) -> None:
    for _ in range(2):  # the first through the check, the second remembered
        response = get(guarded, "/kib.bin", *credentials)
        assert response.status == 401
        assert response.header("www-authenticate") == CHALLENGE
        assert response.body == b"401 Unauthorized\n"
        assert USER.encode() not in response.raw and b"mallory" not in response.raw


def test_the_right_password_from_httpx(guarded: RunningServer, site: Path) -> None:
    with httpx.Client(base_url=guarded.base_url) as client:
        assert client.get("/kib.bin").status_code == 401
        for _ in range(3):
            response = client.get("/kib.bin", auth=(USER, PASSWORD))
            assert response.status_code == 200
            assert response.content == (site / "kib.bin").read_bytes()
        assert client.get("/kib.bin", auth=(USER, "nope")).status_code == 401


@pytest.mark.curl
def test_the_right_password_from_curl(guarded: RunningServer, site: Path) -> None:
    done = curl("-u", f"{USER}:{PASSWORD}", "-o", "-", guarded.url("/sub/page.txt"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (site / "sub" / "page.txt").read_bytes()
    refused = curl("-u", f"{USER}:x", "-w", "%{http_code}", "-o", "/dev/null", guarded.url("/"))
    assert refused.stdout == b"401"


def test_a_non_ascii_password_in_utf8(site: Path, tmp_path: Path) -> None:
    users = write_users(tmp_path / "u", **{"J\u00f6rg": "gr\u00fc\u00dfe"})
    with start_server(site, basic_auth_file=str(users)) as running, httpx.Client() as client:
        response = client.get(running.url("/"), auth=("J\u00f6rg", "gr\u00fc\u00dfe"))
        assert response.status_code == 200


# --- HEAD, 304 and Range, through the check and after it --------------------------------


@pytest.mark.parametrize("remembered", [False, True], ids=["checked", "remembered"])
def test_head_conditional_and_range(
    guarded: RunningServer, users: Path, site: Path, remembered: bool
) -> None:
    data = (site / "kib.bin").read_bytes()

    def ask(method: str, *headers: str) -> Any:
        if remembered:
            get(guarded, "/", authorization())
        else:
            forget(guarded, users)
        return get(guarded, "/kib.bin", authorization(), *headers, method=method)

    full = ask("GET")
    assert (full.status, full.body) == (200, data)
    etag = full.header("etag")
    head = ask("HEAD")
    assert (head.status, head.header("content-length"), head.body) == (200, "1024", b"")
    assert head.header("etag") == etag
    not_modified = ask("GET", f"If-None-Match: {etag}")
    assert (not_modified.status, not_modified.body) == (304, b"")
    part = ask("GET", "Range: bytes=10-19")
    assert (part.status, part.body) == (206, data[10:20])
    assert part.header("content-range") == "bytes 10-19/1024"
    parts = ask("GET", "Range: bytes=0-1,500-501")
    assert parts.status == 206
    assert data[0:2] in parts.body and data[500:502] in parts.body
    assert parts.header("content-type").startswith("multipart/byteranges")


def test_keep_alive_through_the_check(guarded: RunningServer, users: Path, site: Path) -> None:
    forget(guarded, users)
    with RawClient(guarded) as client:
        for method in ("GET", "HEAD", "GET"):
            client.send(request_bytes(method, "/sub/page.txt", headers=(authorization(),)))
            response = client.read_response(head=method == "HEAD")
            assert response.status == 200
            forget(guarded, users)
        client.send(request_bytes("GET", "/sub/page.txt"))  # still open, still in order
        assert client.read_response().status == 401


# --- the deferred path keeps sendfile and releases descriptors ---------------------------


@pytest.mark.usefixtures("tmp_sendfile")
def test_the_first_answer_after_the_check_goes_out_by_sendfile(
    site: Path, users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(count)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", spy)
    with start_server(site, "uvloop", "sendfile", basic_auth_file=str(users)) as running:
        forget(running, users)
        response = get(running, "/ten-mib.bin", authorization())
        assert response.status == 200 and len(response.body) == 10 * 1024 * 1024
        assert sum(calls) >= 10 * 1024 * 1024
        calls.clear()
        forget(running, users)
        assert get(running, "/kib.bin", authorization(), "Range: bytes=0-99").status == 206
        assert calls and sum(calls) == 100


@pytest.mark.parametrize("loop", LOOPS)
def test_no_descriptor_is_left_open(site: Path, users: Path, loop: str) -> None:
    with start_server(site, loop, basic_auth_file=str(users)) as running:
        get(running, "/kib.bin", authorization())  # warm the open-file cache
        get(running, "/ten-mib.bin", authorization())
        before = open_fds()
        for index in range(12):
            forget(running, users)
            method = "HEAD" if index % 3 == 0 else "GET"
            get(running, "/kib.bin", authorization(), method=method)
            forget(running, users)
            with RawClient(running) as client:  # gone before the big body is sent
                client.send(request_bytes("GET", "/ten-mib.bin", headers=(authorization(),)))
                client.read_head()
            get(running, "/kib.bin", authorization(USER, f"wrong{index}"))
        assert wait_for(lambda: open_fds() <= before, 5), (open_fds(), before)


# --- the password file ------------------------------------------------------------------


def test_an_edit_takes_effect_on_the_next_request(site: Path, tmp_path: Path) -> None:
    users = write_users(tmp_path / "users")
    with start_server(site, basic_auth_file=str(users)) as running:
        assert get(running, "/", authorization()).status == 200
        write_users(users, **{USER: "new password"})
        assert get(running, "/", authorization()).status == 401
        assert get(running, "/", authorization(USER, "new password")).status == 200
        users.write_text("alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")  # refused: the last good
        os.utime(users, ns=(1, 2))
        assert get(running, "/", authorization(USER, "new password")).status == 200
        users.unlink()
        assert get(running, "/", authorization(USER, "new password")).status == 200
        write_users(users, bob="builder")
        assert get(running, "/", authorization("bob", "builder")).status == 200
        assert get(running, "/", authorization(USER, "new password")).status == 401


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("bob:$apr1$5RPK1K7V$yB9xBWYaFCC8Y7NhUlSTl/", "apr1-MD5"),
        ("bob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "SHA-1"),
        ("bob:abJnggxhB/yWI", "DES crypt"),
    ],
)
def test_a_non_bcrypt_entry_is_refused_at_start_with_its_line(
    site: Path, tmp_path: Path, entry: str, why: str
) -> None:
    users = write_users(tmp_path / "users")
    users.write_text(users.read_text() + entry + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "zerohttp", str(site), "--port=0", f"--basic-auth-file={users}"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done
    lines = done.stderr.decode().strip().splitlines()
    assert lines[-1].startswith(f"zerohttp: error: --basic-auth-file: {users}:3: user 'bob': ")
    assert why in lines[-1]
    assert any("in clear" in line for line in lines)  # the start warning (no TLS, no proxy)


# --- what the password covers -----------------------------------------------------------


def test_only_the_paths_in_scope_need_it(site: Path, users: Path) -> None:
    with start_server(
        site, basic_auth_file=str(users), basic_auth_paths=("/sub/*", "/:name.bin")
    ) as running:
        assert get(running, "/").status == 200
        assert get(running, "/style.css").status == 200
        assert get(running, "/noindex/file.txt").status == 200
        assert get(running, "/sub/page.txt").status == 401
        assert get(running, "/noindex/../sub/page.txt").status == 401
        assert get(running, "/%73ub/page.txt").status == 401
        assert get(running, "/kib.bin").status == 401
        assert get(running, "/sub/page.txt", authorization()).status == 200


def test_the_health_path_stays_open(site: Path, users: Path) -> None:
    with start_server(site, basic_auth_file=str(users), health_path="/healthz") as running:
        response = get(running, "/healthz")
        assert (response.status, response.body) == (200, b"ok\n")
        assert get(running, "/").status == 401


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reply = b"app saw " + str(len(body)).encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(reply)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})


@pytest.mark.parametrize("loop", LOOPS)
def test_an_asgi_app_and_its_mount_are_protected(
    site: Path, users: Path, tmp_path: Path, loop: str
) -> None:
    with start_server(
        tmp_path,
        loop,
        app=hello_app,
        mount=(f"/static={site}",),
        basic_auth_file=str(users),
    ) as running:
        assert get(running, "/anything").status == 401
        assert get(running, "/static/kib.bin").status == 401
        with httpx.Client(base_url=running.base_url, auth=(USER, PASSWORD)) as client:
            forget(running, users)
            posted = client.post("/form", content=b"x" * 100_000)  # read after the check
            assert (posted.status_code, posted.content) == (200, b"app saw 100000")
            posted = client.post("/form", content=b"y" * 10)  # remembered: at once
            assert (posted.status_code, posted.content) == (200, b"app saw 10")
            assert client.get("/static/kib.bin").content == (site / "kib.bin").read_bytes()
        refused = httpx.post(running.url("/form"), content=b"z" * 100_000, auth=(USER, "no"))
        assert refused.status_code == 401


@pytest.mark.parametrize("cors", [True, False])
def test_a_cors_preflight_passes_without_credentials_when_cors_is_on(
    site: Path, users: Path, cors: bool
) -> None:
    settings: dict[str, Any] = {"cors_allow_origin": ("https://a.example",)} if cors else {}
    with start_server(site, basic_auth_file=str(users), **settings) as running:
        preflight = (
            "Origin: https://a.example",
            "Access-Control-Request-Method: GET",
        )
        response = get(running, "/kib.bin", *preflight, method="OPTIONS")
        assert (response.status != 401) is cors
        assert (response.header("www-authenticate") is None) is cors
        # not a preflight (no Access-Control-Request-Method): the password is needed
        assert get(running, "/kib.bin", preflight[0], method="OPTIONS").status == 401
        assert get(running, "/kib.bin", preflight[0]).status == 401


# --- a flood of wrong passwords -----------------------------------------------------------


def test_a_flood_of_wrong_passwords_does_not_stall_a_signed_in_client(
    site: Path, tmp_path: Path
) -> None:
    """bcrypt at cost 10 (~60 ms a check): run on the loop, 40 flooding clients would hold
    every other request for seconds; in the bounded pool the signed-in client is answered
    from the remembered check at once, and the flood beyond the queue gets 503."""
    users = write_users(tmp_path / "users", rounds=10)
    statuses: list[int] = []
    stop = threading.Event()

    def flood(running: RunningServer, worker: int) -> None:
        count = 0
        while not stop.is_set():
            count += 1
            try:
                response = get(running, "/kib.bin", authorization(USER, f"guess-{worker}-{count}"))
            except (OSError, AssertionError):
                continue
            statuses.append(response.status)

    with start_server(site, "uvloop", basic_auth_file=str(users)) as running:
        assert get(running, "/kib.bin", authorization()).status == 200
        threads = [threading.Thread(target=flood, args=(running, i)) for i in range(40)]
        for thread in threads:
            thread.start()
        latencies = []
        try:
            assert wait_for(lambda: len(statuses) > 20, 20)
            with RawClient(running) as client:
                for _ in range(200):
                    start = time.perf_counter()
                    client.send(request_bytes("GET", "/kib.bin", headers=(authorization(),)))
                    assert client.read_response().status == 200
                    latencies.append(time.perf_counter() - start)
                    time.sleep(0.005)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    assert statistics.median(latencies) < 0.02 and p95 < 0.1, (
        statistics.median(latencies),
        p95,
    )
    assert 401 in statuses and 503 in statuses


def test_the_pool_threads_run_below_the_loop(users: Path) -> None:
    gate = BasicAuthGate(lambda: None, str(users), threads=1)  # type: ignore[arg-type]
    try:
        niceness = gate.pool.submit(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        ).result(5)
        assert niceness > os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    finally:
        gate.close()
