"""SSH keys and extra browsers for the user tests."""
from __future__ import annotations

import pytest
import webtest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ezpyr.users.keys import UserKeyService


def public_line(private_key, comment: str = "") -> str:
    line = private_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return f"{line} {comment}" if comment else line


def ed25519_line(comment: str = "alice@laptop") -> str:
    return public_line(ed25519.Ed25519PrivateKey.generate(), comment)


def rsa_line(bits: int = 2048, comment: str = "rsa@laptop") -> str:
    return public_line(rsa.generate_private_key(public_exponent=65537, key_size=bits), comment)


def ecdsa_line(curve=ec.SECP256R1, comment: str = "ecdsa@laptop") -> str:
    return public_line(ec.generate_private_key(curve()), comment)


def make_key(dbsession, user, line: str | None = None, name: str = ""):
    key = UserKeyService(dbsession).add(user, line or ed25519_line(), name)
    dbsession.commit()
    return key


@pytest.fixture
def new_browser(wsgi_app):
    """Another browser (its own cookies), for a second session."""
    return lambda: webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "192.0.2.20"})
