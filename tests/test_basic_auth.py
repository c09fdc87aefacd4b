"""Basic auth without sockets: the credentials a request carries (RFC 7617), the answers
that ask for them, which requests need them, the gate's caches and queue bound, and the
settings."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import bcrypt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp import Config
from zerohttp.access import gate as gate_module
from zerohttp.access.basic_auth import busy, challenge, challenge_value, parse_basic
from zerohttp.access.gate import AfterCheck, BasicAuthGate, in_scope, is_preflight
from zerohttp.cli import cleartext_password_warnings
from zerohttp.errors import ConfigError
from zerohttp.message.response import RequestHead, Response
from zerohttp.stack import server_stack
from zerohttp.static.urlpattern import compile_pattern


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# --- credentials ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (basic("alice", "wonder"), ("alice", "wonder")),
        (b"basic  " + basic("a", "b")[6:], ("a", "b")),  # any case, several spaces
        (basic("alice", "with:colon"), ("alice", "with:colon")),
        (basic("alice", ""), ("alice", "")),
        (basic("J\u00f6rg", "p\u00e4ss"), ("J\u00f6rg", "p\u00e4ss")),
        (basic("Jo\u0308rg", "x"), ("J\u00f6rg", "x")),  # NFC
    ],
)
def test_credentials(value: bytes, expected: tuple[str, str]) -> None:
    assert parse_basic(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer abc",
        b"Basic",
        b"Basic ",
        b"Basic !!!!",
        b"Basic " + base64.b64encode(b"no colon"),
        b"Basic " + base64.b64encode(b"\xff\xfe:latin"),
        b"Basic " + base64.b64encode(b"a\x00:b"),
        b"Basic " + base64.b64encode(b"a:b\nc"),
        b"Basic dXNlcjpwYXNz extra",
        b"Basic dXNlcjpwYXN",  # padding missing
    ],
)
def test_not_credentials(value: bytes) -> None:
    assert parse_basic(value) is None


@given(st.binary())
def test_any_value_parses_or_is_none(value: bytes) -> None:
    found = parse_basic(value)
    assert found is None or isinstance(found[0], str)


@given(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=0).filter(
        lambda s: ":" not in s
    ),
    st.text(st.characters(blacklist_categories=("Cc", "Cs"))),
)
def test_what_a_browser_encodes_is_read_back(user: str, password: str) -> None:
    import unicodedata

    found = parse_basic(basic(user, password))
    assert found == (unicodedata.normalize("NFC", user), unicodedata.normalize("NFC", password))


def test_the_challenge_names_the_realm_and_utf8_and_no_user() -> None:
    assert challenge_value("staff") == 'Basic realm="staff", charset="UTF-8"'
    response = challenge("staff")
    assert response.status == 401
    assert response.field("WWW-Authenticate") == 'Basic realm="staff", charset="UTF-8"'
    assert response.body == b"401 Unauthorized\n"
    refusal = busy()
    assert (refusal.status, refusal.field("Retry-After")) == (503, "1")


# --- which requests need the password -----------------------------------------------------


@pytest.mark.parametrize(
    ("target", "inside"),
    [
        (b"/admin/x", True),
        (b"/admin/", True),
        (b"/public/../admin/x", True),
        (b"/%61dmin/x", True),
        (b"/admin/x?q=1", True),
        (b"/reports/2024.csv", True),
        (b"/", False),
        (b"/administrator", False),
        (b"/admin", False),
        (b"/reports/2024/x.csv", False),
        (b"/%ff", True),  # does not decode: refused either way, never without the password
        (b"*", True),
    ],
)
def test_scope(target: bytes, inside: bool) -> None:
    patterns = [compile_pattern("/admin/*"), compile_pattern("/reports/:name")]
    assert in_scope(target, patterns) is inside


def test_preflight_is_options_with_origin_and_method() -> None:
    def request(method: bytes, *names: bytes) -> RequestHead:
        return RequestHead(method, b"/", b"1.1", tuple((name, b"x") for name in names))

    assert is_preflight(request(b"OPTIONS", b"origin", b"access-control-request-method"))
    assert not is_preflight(request(b"OPTIONS", b"origin"))
    assert not is_preflight(request(b"OPTIONS", b"access-control-request-method"))
    assert not is_preflight(request(b"GET", b"origin", b"access-control-request-method"))


# --- the gate ---------------------------------------------------------------------------


class Inner:
    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def handle(self, request: RequestHead) -> Response:
        self.seen.append(request.target)
        return Response(200, (("Content-Length", "0"),))


def password_file(tmp_path: Path, password: bytes = b"wonder", user: str = "alice") -> Path:
    path = tmp_path / "users"
    path.write_text(f"{user}:{bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()}\n")
    return path


def get(target: bytes = b"/", authorization: bytes | None = None) -> RequestHead:
    headers = ((b"authorization", authorization),) if authorization is not None else ()
    return RequestHead(b"GET", target, b"1.1", headers)


async def settle(answer: object) -> None:
    """Wait for the check behind an AfterCheck answer to finish and be remembered."""
    assert isinstance(answer, AfterCheck)
    await asyncio.wait_for(asyncio.shield(answer.check), 10)
    await asyncio.sleep(0)


def test_the_gate_checks_once_then_answers_synchronously(tmp_path: Path) -> None:
    inner = Inner()
    gate = BasicAuthGate(inner, str(password_file(tmp_path)), realm="r")

    async def scenario() -> None:
        assert gate.handle(get()).status == 401  # type: ignore[union-attr]
        first = gate.handle(get(authorization=basic("alice", "wonder")))
        again = gate.handle(get(authorization=basic("alice", "wonder")))
        assert isinstance(first, AfterCheck) and isinstance(again, AfterCheck)
        assert again.check is first.check  # one check for both
        assert gate.running == 1
        await settle(first)
        assert inner.seen == []  # the inner handler only answers once the check is done
        answer = gate.handle(get(b"/x", basic("alice", "wonder")))
        assert isinstance(answer, Response) and answer.status == 200
        assert inner.seen == [b"/x"]
        wrong = gate.handle(get(authorization=basic("alice", "nope")))
        await settle(wrong)
        refused = gate.handle(get(authorization=basic("alice", "nope")))
        assert isinstance(refused, Response) and refused.status == 401  # remembered
        assert gate.running == 0
        # the secret: the cache holds keyed hashes, never the value itself
        assert basic("alice", "wonder") not in gate.granted
        assert all(len(key) == 16 for key in gate.granted)

    try:
        asyncio.run(scenario())
    finally:
        gate.close()


def test_the_gate_answers_503_beyond_its_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate_module, "MAX_PENDING_PER_THREAD", 2)
    gate = BasicAuthGate(Inner(), str(password_file(tmp_path)), threads=1)

    async def scenario() -> None:
        answers = [gate.handle(get(authorization=basic("alice", f"guess{i}"))) for i in range(4)]
        assert [type(a).__name__ for a in answers] == [
            "AfterCheck",
            "AfterCheck",
            "Response",
            "Response",
        ]
        assert [a.status for a in answers[2:]] == [503, 503]  # type: ignore[union-attr]
        for answer in answers[:2]:
            await settle(answer)
        assert isinstance(gate.handle(get(authorization=basic("alice", "guess9"))), AfterCheck)

    try:
        asyncio.run(scenario())
    finally:
        gate.close()


def test_an_edit_empties_the_caches_and_a_bad_edit_keeps_the_last_good_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = password_file(tmp_path)
    gate = BasicAuthGate(Inner(), str(path))

    async def scenario() -> None:
        await settle(gate.handle(get(authorization=basic("alice", "wonder"))))
        assert isinstance(gate.handle(get(authorization=basic("alice", "wonder"))), Response)
        password_file(tmp_path, b"changed")
        await asyncio.sleep(0)  # the file is revalidated once per pass of the loop
        answer = gate.handle(get(authorization=basic("alice", "wonder")))
        assert isinstance(answer, AfterCheck)  # checked again, against the new file
        await settle(answer)
        refused = gate.handle(get(authorization=basic("alice", "wonder")))
        assert isinstance(refused, Response) and refused.status == 401
        path.write_text("alice:$apr1$5RPK1K7V$yB9xBWYaFCC8Y7NhUlSTl/\n")
        os.utime(path, ns=(1, 1))
        await asyncio.sleep(0)
        answer = gate.handle(get(authorization=basic("alice", "changed")))
        await settle(answer)
        assert isinstance(gate.handle(get(authorization=basic("alice", "changed"))), Response)
        await asyncio.sleep(0)
        gate.handle(get(authorization=basic("alice", "changed")))
        logged = [r.getMessage() for r in caplog.records if "basic-auth-file" in r.getMessage()]
        assert len(logged) == 1, logged  # one line for the bad version, not one a request
        assert "users:1" in logged[0] and "apr1-MD5" in logged[0]

    try:
        asyncio.run(scenario())
    finally:
        gate.close()


def test_a_bad_file_at_start_is_a_config_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(
        f"alice:{bcrypt.hashpw(b'x', bcrypt.gensalt(rounds=4)).decode()}\nbob:{{SHA}}x\n"
    )
    config = Config(root=str(tmp_path), basic_auth_file=str(path))
    with pytest.raises(ConfigError, match=r"--basic-auth-file: .*users:2: user 'bob': SHA-1"):
        server_stack(config, Inner())
    missing = Config(root=str(tmp_path), basic_auth_file=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="No such file"):
        server_stack(missing, Inner())


def test_the_stack_leaves_the_handler_alone_without_auth(tmp_path: Path) -> None:
    inner = Inner()
    assert server_stack(Config(root=str(tmp_path)), inner) is inner


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("realm", ['say "hi"', "back\\slash", "tab\there", "", "caf\u00e9"])
def test_a_realm_that_cannot_be_quoted_is_refused(realm: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--basic-auth-realm"):
        Config(root=str(tmp_path), basic_auth_file="f", basic_auth_realm=realm)


def test_paths_must_be_patterns(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--basic-auth-paths 'admin/\\*': a URL pattern"):
        Config(root=str(tmp_path), basic_auth_file="f", basic_auth_paths=("admin/*",))
    Config(root=str(tmp_path), basic_auth_file="f", basic_auth_paths=("/admin/*",))


def test_realm_and_paths_need_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--basic-auth-realm and --basic-auth-paths: need"):
        Config(root=str(tmp_path), basic_auth_realm="x", basic_auth_paths=("/a",))


def test_the_cleartext_warning(tmp_path: Path) -> None:
    on = Config(root=str(tmp_path), basic_auth_file="f")
    assert "in clear" in cleartext_password_warnings(on)[0]
    assert cleartext_password_warnings(on.replace(proxy_headers=True)) == []
    assert cleartext_password_warnings(Config(root=str(tmp_path))) == []


def test_the_file_is_stated_once_per_pass_of_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = BasicAuthGate(Inner(), str(password_file(tmp_path)))
    stats: list[object] = []
    real = gate_module.signature_of

    def counting(path: str | bytes) -> gate_module.Signature:
        stats.append(path)
        return real(path)

    monkeypatch.setattr(gate_module, "signature_of", counting)

    async def scenario() -> None:
        await settle(gate.handle(get(authorization=basic("alice", "wonder"))))
        stats.clear()
        for _ in range(5):  # one pass: one stat
            assert isinstance(gate.handle(get(authorization=basic("alice", "wonder"))), Response)
        assert len(stats) == 1
        await asyncio.sleep(0)
        gate.handle(get(authorization=basic("alice", "wonder")))
        assert len(stats) == 2
        gate.handle(get())  # no credentials: refused without a look at the file
        assert len(stats) == 2

    try:
        asyncio.run(scenario())
    finally:
        gate.close()
