"""The cluster secret: where the worker finds it, and rotating it.

Both nodes hold the same secret (handed over at Add, stored encrypted in
``cluster_peer``). It signs cluster API requests and, through a derived key,
change messages (``ezpyr.replication.messages``).

Rotation (``ezpyr-cluster CONFIG rotate-secret``, on either node) rolls a new
secret without stopping replication:

1. this node makes a new secret and keeps it as its *next* secret: accepted,
   not yet used to sign;
2. it hands the new secret to the other node (a signed API request, the
   secret encrypted under a key derived from the current one); the other
   node signs with it from then on and keeps the old one as *previous*;
3. this node signs with the new secret too and keeps the old one as
   *previous*.

At every moment each node accepts what the other signs with. A node drops
its previous secret as soon as nothing signed with it can still arrive:
when it has applied the other node's first change message signed with the
current one (the broker's queue is in order), or when the other node's
status says it signs with the current secret and this node has applied
every change the other had numbered when it switched (``signed_before_switch``;
a read-only slave has none, so its master drops the old secret at the next
probe). If step 2 fails, nothing changed on either node except an unused
next secret; run the command again.
"""
from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update

from ezpyr.cluster.models import ClusterPeer
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.apply import version_vector
from ezpyr.replication.messages import Keyring
from ezpyr.replication.vector import VersionVector
from ezpyr.validation import Invalid

PEER = ClusterPeer.__table__
ROTATION_PURPOSE = b"ezpyr secret rotation v1"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def keyring_of(peer, secret_box) -> Keyring | None:
    """The secrets of a ``cluster_peer`` row (a mapping or the object)."""
    if peer is None:
        return None
    get = peer.get if hasattr(peer, "get") else (lambda name: getattr(peer, name))
    if not get("secret_encrypted"):
        return None  # a secondary being set up: no secret yet

    def plain(column):
        value = get(column)
        return secret_box.decrypt(value) if value else None

    return Keyring(plain("secret_encrypted"), plain("next_secret_encrypted"),
                   plain("previous_secret_encrypted"))


def accepted_secrets(peer, secret_box) -> list[str]:
    """The secrets a signed request from the other node may use, the one
    this node signs with first."""
    keyring = keyring_of(peer, secret_box)
    if keyring is None:
        return []
    return [s for s in (keyring.current, keyring.next, keyring.previous) if s]


class PeerKeys:
    """The keyring as ``cluster_peer`` holds it now (read on every call: a
    rotation changes it while the relay and the applier run); decrypted
    only when the stored values change."""

    COLUMNS = (PEER.c.secret_encrypted, PEER.c.next_secret_encrypted, PEER.c.previous_secret_encrypted)

    def __init__(self, engine, secret_box):
        self.engine = engine
        self.secret_box = secret_box
        self._loaded = (None, None)  # (the stored values, their keyring): replaced whole, never mutated

    def keyring(self, connection=None) -> Keyring | None:
        """``connection``: read in the caller's transaction (one round trip,
        no connection of its own)."""
        if connection is not None:
            row = connection.execute(select(*self.COLUMNS)).mappings().first()
        else:
            with self.engine.connect() as conn:
                row = conn.execute(select(*self.COLUMNS)).mappings().first()
        stored = tuple(row.values()) if row is not None else None
        loaded = self._loaded
        if stored != loaded[0]:
            loaded = self._loaded = (stored, keyring_of(row, self.secret_box))
        return loaded[1]

    def retire_if_switched(self, status: dict, mine: VersionVector) -> bool:
        """After a probe: drop the previous secret once the other node signs
        with the current one and everything it signed with the previous one
        is applied here. True when it was dropped."""
        keyring = self.keyring()
        if keyring is None or keyring.previous is None or status.get("secret_id") != keyring.key_id():
            return False
        try:
            before = VersionVector.from_json(status.get("signed_before_switch") or {})
        except ValueError:
            return False
        if mine.lacks(before):
            return False
        self.retire_previous(keyring)
        return True

    def retire_previous(self, keyring: Keyring) -> None:
        """The other node signs with the current secret: stop accepting the
        previous one (unless a newer rotation replaced it meanwhile)."""
        stored, current = self._loaded
        if keyring.previous is None or current is not keyring:
            return
        with self.engine.begin() as conn:
            conn.execute(update(PEER).where(PEER.c.previous_secret_encrypted == stored[2])
                         .values(previous_secret_encrypted=None))


def _transfer_box(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ROTATION_PURPOSE).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def rotate_secret(engine, secret_box, client_for) -> dict:
    """On either node: roll a new cluster secret on both (see the module's
    doc). ``client_for(secret)`` gives a ClusterClient signing with
    ``secret``."""
    from ezpyr.cluster.client import PeerRefused, PeerUnreachable

    with engine.connect() as conn:
        peer = conn.execute(select(PEER)).mappings().first()
    keyring = keyring_of(peer, secret_box)
    if keyring is None:
        raise Invalid("No other node is configured: there is no cluster secret to rotate.")
    fresh = new_secret()
    with engine.begin() as conn:  # 1. accepted here before the other node signs with it
        conn.execute(update(PEER).values(next_secret_encrypted=secret_box.encrypt(fresh)))
    try:
        client_for(keyring.current).call("POST", "/cluster/api/rotate-secret", {
            "secret": _transfer_box(keyring.current).encrypt(fresh.encode()).decode()})
    except (PeerUnreachable, PeerRefused) as error:
        raise Invalid(f"The other node did not take the new secret ({error}); nothing was rotated. "
                      "Run rotate-secret again once it answers.") from None
    with engine.begin() as conn:  # 3. sign with it here too
        conn.execute(update(PEER).values(
            secret_encrypted=secret_box.encrypt(fresh), next_secret_encrypted=None,
            previous_secret_encrypted=secret_box.encrypt(keyring.current),
            signed_before_switch=own_streams(conn).dumps()))
    return {"rotated": True, "previous_accepted_until": "the other node's first change signed with the new secret"}


def receive_rotation(dbsession, secret_box, body: dict) -> None:
    """The other node's step 2: sign with the new secret from now on, and
    keep accepting the current one as previous."""
    peer = dbsession.scalars(select(ClusterPeer)).first()
    keyring = keyring_of(peer, secret_box)
    if keyring is None:
        raise Invalid("this node has no cluster secret")
    token = body.get("secret")
    if not isinstance(token, str) or len(token) > 1000:
        raise Invalid("expected the new secret")
    for secret in (keyring.current, keyring.next, keyring.previous):
        if not secret:
            continue
        try:
            fresh = _transfer_box(secret).decrypt(token.encode()).decode()
            break
        except (InvalidToken, ValueError):
            continue
    else:
        raise Invalid("the new secret could not be read with this node's cluster secret")
    if fresh == keyring.current:
        return  # asked again after a lost answer: already done
    peer.previous_secret_encrypted = secret_box.encrypt(keyring.current)
    peer.secret_encrypted = secret_box.encrypt(fresh)
    peer.next_secret_encrypted = None
    peer.signed_before_switch = own_streams(dbsession.connection()).dumps()
    dbsession.flush()


def own_streams(connection) -> VersionVector:
    """This node's own streams in its vector (the changes it has numbered)."""
    node_id = connection.execute(select(NodeIdentity.__table__.c.id)).scalar()
    return VersionVector({stream: seq for stream, seq in version_vector(connection).items()
                          if stream[0] == node_id})


def rotation_status(peer, secret_box) -> dict:
    """What the other node's probe reads: which secret this node signs
    with, and what it signed with the previous one."""
    keyring = keyring_of(peer, secret_box)
    if keyring is None:
        return {}
    return {"secret_id": keyring.key_id(),
            "signed_before_switch": VersionVector.from_json(peer.signed_before_switch).to_json()
            if keyring.previous else {}}
