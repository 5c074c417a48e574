"""The cluster's gateway key pair (ed25519)."""
from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from ezpyr.gateway.models import GatewayKey
from ezpyr.secretbox import SecretBox


def openssh_fingerprint(public_key_line: str) -> str:
    """``SHA256:…`` as ssh-keygen -l prints it, for a one-line public key."""
    blob = base64.b64decode(public_key_line.split()[1])
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class GatewayKeyService:
    def __init__(self, dbsession: Session, secret_box: SecretBox):
        self.dbsession = dbsession
        self.secret_box = secret_box

    def current(self) -> GatewayKey | None:
        return self.dbsession.scalars(select(GatewayKey).order_by(GatewayKey.created_at.desc())).first()

    def generate(self, comment: str = "ezpyr-gateway") -> GatewayKey:
        private = Ed25519PrivateKey.generate()
        private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
        public = private.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        key = GatewayKey(
            public_key=f"{public} {comment}",
            private_key_encrypted=self.secret_box.encrypt(private_pem),
            fingerprint=openssh_fingerprint(public),
        )
        self.dbsession.add(key)
        self.dbsession.flush()
        return key

    def private_key_pem(self, key: GatewayKey) -> str:
        return self.secret_box.decrypt(key.private_key_encrypted)


def pinned_fingerprint(server) -> str | None:
    """The fingerprint of ``server``'s pinned host key, None before the
    gateway's first connection to it."""
    return openssh_fingerprint(server.host_key) if server.host_key else None


def reset_host_key(server) -> str | None:
    """Forget ``server``'s pinned host key (a replicated change: both nodes
    forget it); the gateway pins the key it finds at its next connection.
    The fingerprint that was pinned, None when there was none."""
    before = pinned_fingerprint(server)
    server.host_key = None
    return before
