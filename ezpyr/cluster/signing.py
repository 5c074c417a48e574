"""Signing node-to-node requests: HMAC-SHA256 over the calling node's id,
the method, the path with its query, a timestamp, a nonce and the body's
digest.

Every header is checked for its shape before anything is computed from it,
so a hostile value (a 400-digit timestamp, a megabyte nonce) is refused
like any other bad signature, never an error of this node's."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

HEADER_NODE = "X-Ezpyr-Node"
HEADER_TIME = "X-Ezpyr-Timestamp"
HEADER_NONCE = "X-Ezpyr-Nonce"
HEADER_SIGNATURE = "X-Ezpyr-Signature"

FRESHNESS_SECONDS = 60

# What each header may look like: seconds since the epoch (at most 12
# digits), a hex nonce, a hex HMAC-SHA256, a node id.
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
NONCE_RE = re.compile(r"[0-9a-f]{16,64}")
SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
NODE_RE = re.compile(r"[0-9A-Za-z-]{1,64}")


def signature(secret: str, method: str, path: str, body: bytes, timestamp: str, nonce: str,
              node_id: str = "") -> str:
    message = "\n".join([
        node_id, method.upper(), path, timestamp, nonce, hashlib.sha256(body or b"").hexdigest(),
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
        HEADER_SIGNATURE: signature(secret, method, path, body, timestamp, nonce, node_id),
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
    """Checks the headers' shape, freshness and signature (which covers the
    ``X-Ezpyr-Node`` header too); returns the nonce (the caller checks it
    was not seen before). Raises Refused."""
    timestamp = headers.get(HEADER_TIME, "")
    nonce = headers.get(HEADER_NONCE, "")
    given = headers.get(HEADER_SIGNATURE, "")
    node_id = headers.get(HEADER_NODE, "")
    if not (timestamp and nonce and given):
        raise Refused("unsigned request")
    if not TIMESTAMP_RE.fullmatch(timestamp):
        raise Refused("bad timestamp")
    age = abs((now if now is not None else time.time()) - int(timestamp))
    if age > FRESHNESS_SECONDS:
        raise Refused(f"stale request: its timestamp is {int(age)} s away from this node's clock")
    if not NONCE_RE.fullmatch(nonce):
        raise Refused("bad nonce")
    if not SIGNATURE_RE.fullmatch(given) or not NODE_RE.fullmatch(node_id):
        raise Refused("bad signature")
    expected = signature(secret, method, path, body, timestamp, nonce, node_id)
    if not hmac.compare_digest(expected, given):
        raise BadSignature("bad signature")
    return nonce
