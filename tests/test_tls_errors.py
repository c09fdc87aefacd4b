"""TLS settings that cannot work (issue 16 item 6): each is one line that says which file and
what is wrong with it, not OpenSSL's ``PEM lib``; an encrypted key without a password never
prompts on the terminal; client certificates without a CA to check them are refused."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from zerohttp import tls
from zerohttp.config import Config
from zerohttp.errors import ConfigError
from zerohttp.tls import TLSSettings, server_context

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """cert/key: a pair; other_key: some other key; encrypted: the pair's key under
    PASSWORD; both: certificate and key in one file."""
    folder = tmp_path_factory.mktemp("pem")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    paths = {name: str(folder / f"{name}.pem") for name in ("cert", "key", "other_key", "both")}
    leaf.cert_chain_pems[0].write_to_path(paths["cert"])
    leaf.private_key_pem.write_to_path(paths["key"])
    leaf.private_key_and_cert_chain_pem.write_to_path(paths["both"])
    ca.issue_cert("other").private_key_pem.write_to_path(paths["other_key"])
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    paths["encrypted"] = str(folder / "encrypted.pem")
    Path(paths["encrypted"]).write_bytes(encrypted)
    paths["missing"] = str(folder / "missing.pem")
    return paths


def error_for(settings: TLSSettings) -> str:
    with pytest.raises(ConfigError) as caught:
        server_context(settings)
    message = str(caught.value)
    assert "PEM lib" not in message
    assert "\n" not in message
    return message


def test_a_missing_certificate_is_named(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["missing"], pem["key"]))
    assert message == f"--ssl-certfile {pem['missing']!r}: no such file"


def test_a_missing_key_is_named(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["cert"], pem["missing"]))
    assert message == f"--ssl-keyfile {pem['missing']!r}: no such file"


def test_a_missing_ca_file_is_named(pem: dict[str, str]) -> None:
    settings = TLSSettings(pem["cert"], pem["key"], ca_certs=pem["missing"], cert_reqs=2)
    assert error_for(settings) == f"--ssl-ca-certs {pem['missing']!r}: no such file"


def test_a_directory_is_not_a_certificate(tmp_path: Path) -> None:
    assert "is a directory" in error_for(TLSSettings(str(tmp_path)))


def test_a_key_of_another_certificate(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["cert"], pem["other_key"]))
    assert message == (
        f"--ssl-keyfile {pem['other_key']!r} is not the key of the certificate "
        f"in --ssl-certfile {pem['cert']!r}"
    )


def test_a_certificate_without_its_key(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["cert"]))
    assert message == (
        f"--ssl-certfile {pem['cert']!r} holds a certificate but no private key: "
        "give the key with --ssl-keyfile"
    )


def test_a_keyfile_without_a_key(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["cert"], pem["cert"]))
    assert message == f"--ssl-keyfile {pem['cert']!r}: no PEM private key in it"


def test_a_certfile_without_a_certificate(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["key"], pem["key"]))
    assert message.startswith(f"--ssl-certfile {pem['key']!r}: no PEM certificate")


def test_a_wrong_password(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["cert"], pem["encrypted"], "wrong"))
    assert message == f"--ssl-keyfile-password: wrong password for the key in {pem['encrypted']!r}"


def test_an_encrypted_key_without_a_password(pem: dict[str, str]) -> None:
    message = error_for(TLSSettings(pem["cert"], pem["encrypted"]))
    assert message == (
        f"--ssl-keyfile {pem['encrypted']!r}: the key is encrypted: give its password "
        "with --ssl-keyfile-password"
    )


def test_good_pairs_still_load(pem: dict[str, str]) -> None:
    server_context(TLSSettings(pem["cert"], pem["key"]))
    server_context(TLSSettings(pem["both"]))
    server_context(TLSSettings(pem["cert"], pem["encrypted"], PASSWORD))
    server_context(TLSSettings(pem["cert"], pem["key"], "unused password"))


def _run_on_a_terminal(args: list[str], timeout: float = 20) -> tuple[int | None, str]:
    """Run ``python -m zerohttp ARGS`` with a pseudo-terminal as its controlling terminal
    (where OpenSSL's own prompt would go); (exit status or None if still running, output)."""
    leader, follower = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "zerohttp", *args],
        cwd=REPO,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([leader], [], [], 0.2)
            if readable:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                output += chunk
                if b"pass phrase" in output.lower():
                    break  # prompting: the defect; do not wait for the deadline
            elif proc.poll() is not None:
                break
        return proc.poll(), output.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(leader)


def test_the_cli_never_prompts_for_a_password(pem: dict[str, str], tmp_path: Path) -> None:
    args = [str(tmp_path), "--port", "0", "--ssl-certfile", pem["cert"]]
    code, output = _run_on_a_terminal([*args, "--ssl-keyfile", pem["encrypted"]])
    assert "pass phrase" not in output.lower()
    assert code == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("zerohttp: error: --ssl-keyfile ")
    assert "the key is encrypted" in lines[0]


def test_the_cli_with_stdin_not_a_terminal(pem: dict[str, str], tmp_path: Path) -> None:
    tls = ["--ssl-certfile", pem["cert"], "--ssl-keyfile", pem["encrypted"]]
    result = subprocess.run(
        [sys.executable, "-m", "zerohttp", str(tmp_path), "--port", "0", *tls],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "the key is encrypted" in result.stderr


@pytest.mark.parametrize("reqs", [1, 2])
def test_client_certificates_need_a_ca(pem: dict[str, str], reqs: int) -> None:
    with pytest.raises(ConfigError, match=rf"^--ssl-cert-reqs {reqs} needs --ssl-ca-certs"):
        Config(ssl_certfile=pem["cert"], ssl_keyfile=pem["key"], ssl_cert_reqs=reqs)
    Config(ssl_certfile=pem["cert"], ssl_cert_reqs=reqs, ssl_ca_certs=pem["cert"])


@pytest.mark.parametrize(
    "fields, flags",
    [
        ({"ssl_keyfile": "key.pem"}, "--ssl-keyfile:"),
        ({"ssl_keyfile_password": "pw"}, "--ssl-keyfile-password:"),
        ({"ssl_ciphers": "ECDHE+AESGCM"}, "--ssl-ciphers:"),
        ({"ssl_cert_reqs": 2, "ssl_ca_certs": "ca.pem"}, "--ssl-ca-certs and --ssl-cert-reqs:"),
    ],
)
def test_tls_settings_without_a_certificate_are_not_ignored(
    fields: dict[str, object], flags: str
) -> None:
    expected = rf"^{flags} TLS settings need --ssl-certfile \(without it there is no TLS\)$"
    with pytest.raises(ConfigError, match=expected):
        Config(**fields)  # type: ignore[arg-type]


def test_a_tls_context_keeps_body_buffers_on_the_heap(
    pem: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every TLS server sets the allocator up for its bodies' chunks (RESULTS.md, "Issue 21")."""
    calls: list[bool] = []
    monkeypatch.setattr(tls, "keep_buffers_on_the_heap", lambda: calls.append(True) or True)
    server_context(TLSSettings(pem["cert"], pem["key"]))
    assert calls == [True]
