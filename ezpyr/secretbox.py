"""Encryption of secrets at rest (server passwords, TOTP secrets, the gateway
private key) with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from the environment (``EZPYR_SECRET_KEY``) or from the file
named by ``ezpyr.secret_key_file``; ``ezpyr-init`` creates that file. Several
keys separated by commas allow rotation: the first encrypts, all decrypt.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyMissing(RuntimeError):
    pass


class SecretUnreadable(ValueError):
    """A stored secret does not decrypt with any configured key."""


class SecretBox:
    def __init__(self, keys: list[str]):
        if not keys:
            raise SecretKeyMissing("no secret key configured")
        self._keys = list(keys)
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def fingerprint(self) -> str:
        """Names the encrypting key without revealing it (two nodes compare
        these to know they hold the same key)."""
        import hashlib
        import hmac
        return hmac.new(self._keys[0].encode(), b"ezpyr key check", hashlib.sha256).hexdigest()[:32]

    def export_key(self) -> str:
        """The encrypting key, for handing to a new cluster node over an
        encrypted channel (Add). Never log it."""
        return self._keys[0]

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("a stored secret does not match this node's secret key") from exc

    def __repr__(self) -> str:  # never show key material
        return "<SecretBox>"


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _read_key(settings: dict, env_name: str, setting: str) -> str | None:
    """The key from the environment, the setting itself, or the file named
    by the setting with ``_file`` appended, in that order."""
    value = os.environ.get(env_name) or settings.get(setting)
    if value:
        return value.strip()
    path = settings.get(setting + "_file")
    if path and Path(path).exists():
        return Path(path).read_text().strip()
    return None


class FileSecretBox(SecretBox):
    """A SecretBox whose keys come from a file, read again when the file
    changes (Add replaces a new secondary's key with the cluster's)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._mtime = None
        self._load()

    def _load(self):
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            raise SecretKeyMissing(f"the secret key file {self.path} is missing: run ezpyr-init") from None
        if mtime != self._mtime:
            raw = self.path.read_text().strip()
            SecretBox.__init__(self, [k.strip() for k in raw.split(",") if k.strip()])
            self._mtime = mtime

    def encrypt(self, plaintext: str) -> str:
        self._load()
        return super().encrypt(plaintext)

    def decrypt(self, token: str) -> str:
        self._load()
        return super().decrypt(token)

    def fingerprint(self) -> str:
        self._load()
        return super().fingerprint()

    def export_key(self) -> str:
        self._load()
        return super().export_key()

    def replace_key(self, key: str, *older: str) -> None:
        """Write a new key (atomically) and use it from now on; ``older``
        keys still decrypt."""
        for each in (key, *older):
            Fernet(each.encode())  # refuse anything that is not a key
        tmp = self.path.with_suffix(".new")
        if tmp.exists():
            tmp.unlink()
        write_key_file(tmp, ",".join((key, *older)))
        os.replace(tmp, self.path)
        self._mtime = None
        self._load()

    def __repr__(self) -> str:
        return "<FileSecretBox>"


def secret_box_from_settings(settings: dict) -> SecretBox:
    """The node's box: from EZPYR_SECRET_KEY or ``ezpyr.secret_key`` when set
    (fixed), otherwise from ``ezpyr.secret_key_file`` (re-read on change)."""
    raw = os.environ.get("EZPYR_SECRET_KEY") or settings.get("ezpyr.secret_key")
    if raw:
        return SecretBox([k.strip() for k in raw.split(",") if k.strip()])
    path = settings.get("ezpyr.secret_key_file")
    if not path or not Path(path).exists():
        raise SecretKeyMissing(
            "no secret key: set EZPYR_SECRET_KEY or run ezpyr-init to create "
            f"{path or 'the key file'}"
        )
    return FileSecretBox(path)


def session_secret_from_settings(settings: dict) -> str:
    raw = _read_key(settings, "EZPYR_SESSION_SECRET", "ezpyr.session_secret")
    if not raw:
        raise SecretKeyMissing(
            "no session secret: set EZPYR_SESSION_SECRET or run ezpyr-init to create "
            f"{settings.get('ezpyr.session_secret_file', 'the key file')}"
        )
    return raw


def write_key_file(path: str | Path, value: str) -> None:
    """Create a key file readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def includeme(config):
    box = secret_box_from_settings(config.get_settings())
    config.registry["secret_box"] = box
    config.add_request_method(lambda request: request.registry["secret_box"], "secret_box", reify=True)
