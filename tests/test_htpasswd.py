"""htpasswd files: bcrypt entries are read, every other scheme is refused with its line
number and why it is unsafe, and no text makes the parser fail any other way."""

from __future__ import annotations

import bcrypt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerohttp.access.htpasswd import HtpasswdError, PasswordFile, parse_htpasswd

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
# what the other htpasswd options write for "secret" (apr1 -m, SHA -s, crypt -d, plain -p)
APR1 = "$apr1$5RPK1K7V$yB9xBWYaFCC8Y7NhUlSTl/"
SHA = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="
CRYPT = "abJnggxhB/yWI"
PLAIN = "secret"


@pytest.mark.parametrize("prefix", ["$2y$", "$2b$", "$2a$"])
def test_bcrypt_entries_are_read_and_verify(prefix: str) -> None:
    text = f"# made with htpasswd -B\n\nalice:{prefix}{HASH[4:]}\r\nbob:{HASH}\n"
    passwords = parse_htpasswd(text, "users")
    assert set(passwords.users) == {"alice", "bob"}
    assert passwords.verify("alice", "secret")
    assert not passwords.verify("alice", "Secret")
    assert not passwords.verify("carol", "secret")


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        (APR1, "apr1-MD5"),
        (SHA, "SHA-1"),
        (CRYPT, "DES crypt"),
        (PLAIN, "plain text"),
        ("$1$abc$defghijklmnopqrstuvwxy", "MD5-crypt"),
        ("$6$salt$" + "x" * 86, "SHA-512-crypt"),
        ("$2x$" + HASH[4:], "buggy bcrypt"),
        (HASH[:-1], "malformed bcrypt"),
    ],
)
def test_other_schemes_are_refused_with_the_line_and_why(entry: str, why: str) -> None:
    text = f"alice:{HASH}\n# comment\nbob:{entry}\n"
    with pytest.raises(HtpasswdError) as caught:
        parse_htpasswd(text, "site.htpasswd")
    message = str(caught.value)
    assert message.startswith("site.htpasswd:3: user 'bob': ")
    assert why in message
    assert "htpasswd -B" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "site: no USER:HASH entries"),
        ("# only a comment\n", "site: no USER:HASH entries"),
        (f"alice{HASH}\n", "site:1: expected USER:HASH"),
        (f":{HASH}\n", "site:1: expected USER:HASH"),
        (f"al\x01ice:{HASH}\n", "site:1: control character"),
        (f"alice:{HASH}\nalice:{HASH}\n", "site:2: user 'alice' appears twice"),
    ],
)
def test_malformed_files(text: str, expected: str) -> None:
    with pytest.raises(HtpasswdError, match="^" + expected.replace("$", r"\$")):
        parse_htpasswd(text, "site")


def test_a_password_longer_than_bcrypt_reads_is_cut_as_htpasswd_cut_it() -> None:
    long = "x" * 100
    stored = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(rounds=4))
    passwords = PasswordFile({"a": stored})
    assert passwords.verify("a", long)
    assert passwords.verify("a", "x" * 72)
    assert not passwords.verify("a", "x" * 71)


def test_user_names_compare_in_nfc() -> None:
    decomposed = "Jose\u0301"  # e + combining acute accent
    passwords = parse_htpasswd(f"{decomposed}:{HASH}\n", "u")
    assert list(passwords.users) == ["Jos\u00e9"]


def test_the_decoy_of_an_unknown_user_costs_what_a_real_check_costs() -> None:
    passwords = PasswordFile({"a": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=6))})
    assert passwords.decoy.startswith(b"$2b$06$")
    assert not passwords.verify("nobody", "pw")


@given(st.text())
def test_any_text_parses_or_is_refused_with_the_file_name(text: str) -> None:
    try:
        passwords = parse_htpasswd(text, "f")
    except HtpasswdError as exc:
        assert str(exc).startswith("f:")
    else:
        assert passwords.users  # never an empty file accepted


@given(
    st.dictionaries(
        st.text(
            st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=":#"),
            min_size=1,
        ).filter(lambda name: name == name.strip() and name.isascii()),
        st.sampled_from(["$2y$", "$2b$", "$2a$"]),
        min_size=1,
    )
)
def test_every_bcrypt_entry_written_is_read_back(entries: dict[str, str]) -> None:
    text = "".join(f"{user}:{prefix}{HASH[4:]}\n" for user, prefix in entries.items())
    passwords = parse_htpasswd(text, "f")
    assert {user: stored.decode()[4:] for user, stored in passwords.users.items()} == {
        user: HASH[4:] for user in entries
    }
