"""Signing node-to-node requests: HMAC-SHA256 over the method, the path
with its query, a timestamp, a nonce and the body's digest."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER_NODE = "X-Ezpyr-Node"
HEADER_TIME = "X-Ezpyr-Timestamp"
HEADER_NONCE = "X-Ezpyr-Nonce"
HEADER_SIGNATURE = "X-Ezpyr-Signature"

FRESHNESS_SECONDS = 60


def signature(secret: str, method: str, path: str, body: bytes, timestamp: str, nonce: str) -> str:
    message = "\n".join([
        method.upper(), path, timestamp, nonce, hashlib.sha256(body or b"").hexdigest(),
    ]).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_headers(secret: str, node_id: str, method: str, path: str, body: bytes = b"",
                 now: float | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(16)
    return {
        HEADER_NODE: node_id,
        HEADER_TIME: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature(secret, method, path, body, timestamp, nonce),
    }


class Refused(Exception):
    """A cluster API request this node will not serve; the message says why,
    ``code`` says it to the calling program (the answer's ``code``)."""

    code = "refused"


class BadSignature(Refused):
    """Not signed with the key this node expects (the cluster secret, or
    during Add the secondary's setup key)."""

    code = "bad-signature"


class NotGranted(Refused):
    """The caller's address was not granted with ezpyr-grant-host."""

    code = "not-granted"


def check_signature(secret: str, method: str, path: str, body: bytes, headers,
                    now: float | None = None) -> str:
    """Checks freshness and signature; returns the nonce (the caller checks
    it was not seen before). Raises Refused."""
    timestamp = headers.get(HEADER_TIME, "")
    nonce = headers.get(HEADER_NONCE, "")
    given = headers.get(HEADER_SIGNATURE, "")
    if not (timestamp and nonce and given):
        raise Refused("unsigned request")
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        raise Refused("bad timestamp") from None
    if age > FRESHNESS_SECONDS:
        raise Refused(f"stale request: its timestamp is {int(age)} s away from this node's clock")
    if len(nonce) > 64:
        raise Refused("bad nonce")
    expected = signature(secret, method, path, body, timestamp, nonce)
    if not hmac.compare_digest(expected, given):
        raise BadSignature("bad signature")
    return nonce
