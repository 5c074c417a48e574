"""Users' SSH public keys: parsing, checking and storing them (service)."""
import base64
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ezpyr.gateway.services import openssh_fingerprint
from ezpyr.users.keys import UserKeyService, parse_public_key
from ezpyr.users.models import UserKey
from ezpyr.validation import Invalid
from tests.factories import make_user
from tests.users.conftest import ecdsa_line, ed25519_line, make_key, rsa_line


@pytest.mark.parametrize("make_line, key_type", [
    (ed25519_line, "ssh-ed25519"),
    (rsa_line, "ssh-rsa"),
    (lambda: rsa_line(4096), "ssh-rsa"),
    (lambda: ecdsa_line(ec.SECP256R1), "ecdsa-sha2-nistp256"),
    (lambda: ecdsa_line(ec.SECP384R1), "ecdsa-sha2-nistp384"),
    (lambda: ecdsa_line(ec.SECP521R1), "ecdsa-sha2-nistp521"),
])
def test_supported_key_types_are_read(make_line, key_type):
    line = make_line()
    parsed = parse_public_key(line)
    assert parsed.key_type == key_type
    assert parsed.public_key == " ".join(line.split()[:2])  # no comment
    assert parsed.fingerprint == openssh_fingerprint(line)
    assert parsed.fingerprint.startswith("SHA256:")


def test_surrounding_blanks_are_ignored_and_the_comment_may_have_spaces():
    line = ed25519_line("Alice Smith's laptop")
    parsed = parse_public_key(f"  \n{line}\n  ")
    assert parsed.comment == "Alice Smith's laptop"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_the_fingerprint_is_the_one_ssh_keygen_prints(tmp_path):
    line = ed25519_line("me@host")
    path = tmp_path / "key.pub"
    path.write_text(line + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == parse_public_key(line).fingerprint


@pytest.mark.parametrize("text, message", [
    ("", "Paste a public key"),
    ("ssh-ed25519", "the base64 part after the key type is missing"),
    ("ssh-ed25519 AAAAnotakey me@host", "not a valid OpenSSH public key"),
    ("ssh-ed25519 !!!! me@host", "not a valid OpenSSH public key"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP me@host", "Key type 'ssh-dss' is not supported"),
    ("hello world", "Key type 'hello' is not supported"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "PEM block"),
])
def test_malformed_and_unsupported_keys_are_refused(text, message):
    with pytest.raises(Invalid) as error:
        parse_public_key(text)
    assert message in error.value.message
    assert error.value.field == "public_key"


def test_a_short_rsa_key_is_refused():
    with pytest.raises(Invalid, match="only 1024 bits; RSA keys need at least 2048"):
        parse_public_key(rsa_line(1024))


def test_two_keys_at_once_are_refused():
    with pytest.raises(Invalid, match="one key only"):
        parse_public_key(ed25519_line() + "\n" + ed25519_line())


def test_authorized_keys_options_are_refused():
    with pytest.raises(Invalid, match="without authorized_keys options"):
        parse_public_key('from="10.0.0.1",no-pty ' + ed25519_line())


def test_a_key_whose_type_does_not_match_its_contents_is_refused():
    blob = ed25519_line().split()[1]
    with pytest.raises(Invalid, match="not a valid OpenSSH public key"):
        parse_public_key(f"ssh-rsa {blob}")


def test_a_truncated_key_is_refused():
    blob = base64.b64decode(ed25519_line().split()[1])[:-5]
    with pytest.raises(Invalid, match="not a valid OpenSSH public key"):
        parse_public_key("ssh-ed25519 " + base64.b64encode(blob).decode())


def test_add_stores_type_key_fingerprint_and_name(dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    line = ed25519_line("alice@laptop")
    key = UserKeyService(dbsession).add(user, line)
    dbsession.commit()
    stored = dbsession.get(UserKey, key.id)
    assert stored.user_id == user.id
    assert stored.key_type == "ssh-ed25519"
    assert stored.public_key == " ".join(line.split()[:2])
    assert stored.fingerprint == openssh_fingerprint(line)
    assert stored.name == "alice@laptop"  # the comment, when no name is given
    named = UserKeyService(dbsession).add(user, ed25519_line("x@y"), "  work laptop ")
    assert named.name == "work laptop"


def test_a_key_without_comment_or_name_has_an_empty_name(dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    assert UserKeyService(dbsession).add(user, ed25519_line("")).name == ""


def test_a_name_too_long_is_refused(dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    with pytest.raises(Invalid) as error:
        UserKeyService(dbsession).add(user, ed25519_line(), "n" * 101)
    assert error.value.field == "name"
    assert dbsession.query(UserKey).count() == 0


def test_a_long_comment_is_cut_to_fit(dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    assert len(UserKeyService(dbsession).add(user, ed25519_line("c" * 300)).name) == 100


def test_a_key_registered_already_is_refused(dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    bob = make_user(dbsession, passwords, "bob")
    line = ed25519_line("shared")
    make_key(dbsession, alice, line, "laptop")
    service = UserKeyService(dbsession)
    with pytest.raises(Invalid, match="already registered for alice as 'laptop'"):
        service.add(alice, line)
    with pytest.raises(Invalid, match="already registered to another user"):
        service.add(bob, line.replace("shared", "other comment"))
    assert dbsession.query(UserKey).count() == 1


def test_get_finds_only_the_users_own_keys(dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    bob = make_user(dbsession, passwords, "bob")
    key = make_key(dbsession, alice)
    service = UserKeyService(dbsession)
    assert service.get(alice, key.id) is key
    assert service.get(bob, key.id) is None
    assert service.get(alice, "no-such-id") is None


def test_counts_and_delete(dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    bob = make_user(dbsession, passwords, "bob")
    first = make_key(dbsession, alice)
    make_key(dbsession, alice)
    service = UserKeyService(dbsession)
    assert service.counts([alice, bob]) == {alice.id: 2}
    assert service.counts([]) == {}
    service.delete(first)
    dbsession.commit()
    assert [k.id for k in service.keys_of(alice)] != [first.id]
    assert service.counts([alice]) == {alice.id: 1}
