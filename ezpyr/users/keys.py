"""Users' SSH public keys: the keys a user logs in to the gateway with."""
from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ezpyr.activity.services import NoActivity
from ezpyr.gateway.services import openssh_fingerprint
from ezpyr.users.models import User, UserKey
from ezpyr.validation import Invalid

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
MIN_RSA_BITS = 2048
NAME_MAX = 100


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    public_key: str  # "type base64", no comment
    fingerprint: str  # SHA256:…
    comment: str


def parse_public_key(text: str) -> PublicKey:
    """Check one OpenSSH public key line ("type base64 [comment]")."""
    text = (text or "").strip()
    if not text:
        raise Invalid("Paste a public key: one line such as “ssh-ed25519 AAAA… you@laptop”.",
                      "public_key")
    if len(text.splitlines()) > 1:
        raise Invalid("Paste one key only, on a single line (the contents of your *.pub file).",
                      "public_key")
    if text.startswith("-----BEGIN"):
        raise Invalid("That is a PEM block, not an OpenSSH public key line; paste the contents "
                      "of your *.pub file (never the private key).", "public_key")
    parts = text.split(None, 2)
    key_type = parts[0]
    if key_type not in KEY_TYPES:
        if any(token in KEY_TYPES for token in text.split()[1:]):
            raise Invalid("Paste the key alone, without authorized_keys options in front of it.",
                          "public_key")
        raise Invalid(f"Key type {key_type[:40]!r} is not supported; use one of: "
                      f"{', '.join(KEY_TYPES)}.", "public_key")
    if len(parts) < 2:
        raise Invalid("The key is incomplete: the base64 part after the key type is missing.",
                      "public_key")
    comment = parts[2].strip() if len(parts) > 2 else ""
    try:
        key = serialization.load_ssh_public_key(f"{key_type} {parts[1]}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise Invalid("That is not a valid OpenSSH public key: it could not be read. "
                      "Paste the whole line of your *.pub file, unchanged.", "public_key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise Invalid(f"This RSA key has only {key.key_size} bits; RSA keys need at least "
                      f"{MIN_RSA_BITS}. Make a new one, e.g. ssh-keygen -t ed25519.",
                      "public_key")
    line = key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode("ascii")
    if line.split()[0] != key_type:
        raise Invalid("That is not a valid OpenSSH public key: its type does not match "
                      "its contents.", "public_key")
    return PublicKey(key_type, line, openssh_fingerprint(line), comment)


class UserKeyService:
    """Users' SSH keys; each change is recorded in the activity log. An
    admin's change of anyone's keys is ``user.key_*``; a user's change of
    their own keys, on their profile page, is ``profile.key_*``."""

    def __init__(self, dbsession: Session, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()

    def of_user(self, user: User) -> Select:
        """``user``'s keys, oldest first."""
        return select(UserKey).where(UserKey.user_id == user.id).order_by(UserKey.created_at, UserKey.name)

    def keys_of(self, user: User) -> list[UserKey]:
        return list(self.dbsession.scalars(self.of_user(user)))

    def get(self, user: User, key_id: str) -> UserKey | None:
        """``user``'s key with this id; None for an unknown id or another
        user's key."""
        key = self.dbsession.get(UserKey, key_id)
        if key is None or key.user_id != user.id:
            return None
        return key

    def counts(self, users: list[User]) -> dict[str, int]:
        """user id -> number of keys, for the given users."""
        ids = [u.id for u in users]
        if not ids:
            return {}
        rows = self.dbsession.execute(
            select(UserKey.user_id, func.count()).where(UserKey.user_id.in_(ids))
            .group_by(UserKey.user_id)
        )
        return {user_id: n for user_id, n in rows}

    def add(self, user: User, public_key: str, name: str = "") -> UserKey:
        """An admin adds a key to ``user``."""
        key = self._add(user, public_key, name)
        self.activity.record("user.key_add", user.username, key.fingerprint)
        return key

    def add_own(self, user: User, public_key: str, name: str = "") -> UserKey:
        """The signed-in ``user`` adds a key of their own."""
        key = self._add(user, public_key, name)
        self.activity.record("profile.key_add", user.username, key.fingerprint)
        return key

    def _add(self, user: User, public_key: str, name: str = "") -> UserKey:
        parsed = parse_public_key(public_key)
        name = (name or "").strip()
        if len(name) > NAME_MAX:
            raise Invalid(f"The name must be at most {NAME_MAX} characters.", "name")
        name = name or parsed.comment[:NAME_MAX]
        clash = self.dbsession.scalars(
            select(UserKey).where(UserKey.fingerprint == parsed.fingerprint)
        ).first()
        if clash is not None:
            if clash.user_id == user.id:
                raise Invalid(f"This key is already registered for {user.username}"
                              f"{' as ' + repr(clash.name) if clash.name else ''}.", "public_key")
            raise Invalid("This key is already registered to another user; a key can belong "
                          "to one user only. Make a new key for this account.", "public_key")
        key = UserKey(user=user, name=name, key_type=parsed.key_type,
                      public_key=parsed.public_key, fingerprint=parsed.fingerprint)
        self.dbsession.add(key)
        self.dbsession.flush()
        return key

    def delete(self, key: UserKey) -> None:
        """An admin deletes one of a user's keys."""
        username = key.user.username
        self._delete(key)
        self.activity.record("user.key_delete", username, key.fingerprint)

    def delete_own(self, key: UserKey) -> None:
        """The signed-in user deletes a key of their own."""
        username = key.user.username
        self._delete(key)
        self.activity.record("profile.key_delete", username, key.fingerprint)

    def _delete(self, key: UserKey) -> None:
        self.dbsession.delete(key)
        self.dbsession.flush()
