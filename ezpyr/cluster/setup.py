"""Setting up a cluster: the secondary's side of Add.

A secondary installed with ``ezpyr-init CONFIG --secondary PRIMARY`` waits
in state ``secondary`` with a one-time setup key. The primary's Add signs
its requests with that key and, over this API: says hello (version, build,
schema revision, state); begins (hands over the cluster secret and the key
that encrypts secrets at rest, both encrypted under a key derived from the
setup key); sends the snapshot in chunks; finishes (the vector the snapshot
was taken at). Only at finish does the secondary become a slave; until then
an abort, or the next begin, clears whatever arrived.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select

from ezpyr.cluster.client import address_host
from ezpyr.cluster.models import ClusterPeer, Link, SecondarySetup
from ezpyr.cluster.services import ClusterService
from ezpyr.cluster.snapshot import Chunk, clear_replicated, load_chunk, set_vector, table_counts
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity, Role
from ezpyr.replication.capture import REPLAYING
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.vector import VersionVector
from ezpyr.secretbox import SecretBox
from ezpyr.validation import Invalid

SECONDARY = Role.SECONDARY
# How long a setup key works unless ezpyr.setup_key_minutes says otherwise.
SETUP_KEY_MINUTES = 60
NEW_KEY = "print a new one with ezpyr-init CONFIG --secondary PRIMARY_ADDRESS"


def setup_key_minutes(settings) -> int:
    try:
        minutes = int((settings or {}).get("ezpyr.setup_key_minutes", SETUP_KEY_MINUTES))
    except ValueError:
        raise Invalid("ezpyr.setup_key_minutes must be a whole number of minutes") from None
    if not 1 <= minutes <= 7 * 24 * 60:
        raise Invalid("ezpyr.setup_key_minutes must be from 1 to 10080 (a week)")
    return minutes


def transfer_box(setup_key: str) -> Fernet:
    """The key that protects what Add hands over, derived from the setup key."""
    digest = hashlib.sha256(b"ezpyr cluster setup\n" + setup_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class NotSealed(ValueError):
    """A setup request or answer that was not sealed with the setup key."""


def seal(setup_key: str, payload: dict) -> dict:
    """What Add and the secondary send each other: the JSON payload
    encrypted and authenticated under the setup key, so the broker's
    password and the copied rows (password hashes among them) never cross
    the network readable, even over plain HTTP."""
    return {"sealed": transfer_box(setup_key).encrypt(json.dumps(payload).encode()).decode()}


def unseal(setup_key: str, body: dict) -> dict:
    token = body.get("sealed") if isinstance(body, dict) else None
    if not isinstance(token, str):
        raise NotSealed("the setup request is not sealed with the setup key")
    try:
        payload = json.loads(transfer_box(setup_key).decrypt(token.encode()))
    except (InvalidToken, ValueError):
        raise NotSealed("the setup request could not be opened with this node's setup key") from None
    if not isinstance(payload, dict):
        raise NotSealed("the sealed setup request is not a JSON object")
    return payload


def new_setup_key() -> str:
    """A one-time key; never one starting with "-", which a command line
    (``--setup-key KEY``) would take for an option."""
    while True:
        key = secrets.token_urlsafe(24)
        if not key.startswith("-"):
            return key


class SetupService:
    """The secondary's side. ``secret_box`` is this node's box."""

    def __init__(self, dbsession, secret_box):
        self.dbsession = dbsession
        self.secret_box = secret_box

    def node(self) -> NodeIdentity:
        return ClusterService(self.dbsession).node()

    def pending(self) -> SecondarySetup | None:
        return self.dbsession.get(SecondarySetup, 1)

    def usable_setup_key(self, begin: bool = False) -> str:
        """The setup key, if it may sign this request: it exists, has not
        expired and, for the request that begins an Add, was not used by an
        earlier one. Raises Invalid saying which."""
        pending = self.pending()
        if pending is None:
            raise Invalid(f"this node has no setup key (a finished or aborted Add used it up): {NEW_KEY}")
        if pending.expires_at is not None and pending.expires_at <= utcnow():
            raise Invalid(f"the setup key expired at {pending.expires_at:%Y-%m-%d %H:%M} UTC: {NEW_KEY}")
        if begin and pending.used_at is not None:
            raise Invalid(f"the setup key was already used by an Add: {NEW_KEY}")
        return self.secret_box.decrypt(pending.setup_key_encrypted)

    def prepare(self, primary_address: str, minutes: int = SETUP_KEY_MINUTES) -> tuple[str, dt.datetime]:
        """Make this node a secondary that ``primary_address`` may set up;
        returns the new one-time setup key (shown once) and when it expires."""
        node = self.node()
        if node.role not in (SECONDARY, Role.STANDALONE):
            raise Invalid(f"this node is already {node.role} in a cluster")
        ClusterService(self.dbsession).grant(address_host(primary_address))
        key = new_setup_key()
        expires = utcnow() + dt.timedelta(minutes=minutes)
        self.dbsession.execute(delete(SecondarySetup))
        self.dbsession.add(SecondarySetup(id=1, primary_address=primary_address,
                                          setup_key_encrypted=self.secret_box.encrypt(key),
                                          expires_at=expires))
        node.role = SECONDARY
        self.dbsession.flush()
        return key, expires

    def hello(self) -> dict:
        hello = ClusterService(self.dbsession).hello()
        hello["key_check"] = self.secret_box.fingerprint()
        hello["broker_url"] = ""  # given at begin, once the primary proved it holds the key
        return hello

    def _replaying(self):
        self.dbsession.info[REPLAYING] = True
        return self.dbsession.connection()

    def begin(self, primary: dict) -> None:
        """Clear whatever an earlier attempt left and note the primary."""
        for field in ("id", "address", "broker_url"):
            if not primary.get(field):
                raise Invalid(f"the primary did not say its {field}")
        self.pending().used_at = utcnow()  # the key begins one Add only
        connection = self._replaying()
        clear_replicated(connection)
        connection.execute(delete(OutboxEntry.__table__))
        self.dbsession.execute(delete(ClusterPeer))
        self.dbsession.add(ClusterPeer(
            id=primary["id"], name=primary.get("name", ""), address=primary["address"],
            broker_url_encrypted=self.secret_box.encrypt(primary["broker_url"]), secret_encrypted="",
            role=Role.MASTER,
            epoch=int(primary.get("epoch", 1)), link=Link.CONNECTED, applier_state="being set up"))
        self.dbsession.flush()

    def load(self, table: str, rows: list[dict]) -> int:
        load_chunk(self._replaying(), Chunk(table, rows))
        return len(rows)

    def finish(self, body: dict, setup_key: str) -> str | None:
        """Check the copy, take the cluster's secret and key, become slave.
        Returns the key to write to this node's key file after commit (None
        when this node's key is fixed by the environment and already equal)."""
        box = transfer_box(setup_key)
        try:
            secret = box.decrypt(body["secret"].encode()).decode()
            data_key = box.decrypt(body["data_key"].encode()).decode()
            vector = VersionVector.from_json(body["vector"])
            counts = dict(body["counts"])
            epoch = int(body["epoch"])
        except (KeyError, TypeError, ValueError, InvalidToken, AttributeError):
            raise Invalid("the finishing request could not be read with this node's setup key") from None
        connection = self._replaying()
        have = table_counts(connection)
        wrong = {t: (have.get(t), n) for t, n in counts.items() if have.get(t) != n}
        if wrong:
            details = ", ".join(f"{t}: {h} here, {n} sent" for t, (h, n) in sorted(wrong.items()))
            raise Invalid(f"the copy is incomplete ({details})")
        cluster_box = SecretBox([data_key])
        replace = None
        if cluster_box.fingerprint() != self.secret_box.fingerprint():
            if not hasattr(self.secret_box, "replace_key"):
                raise Invalid("this node's secret key is fixed (EZPYR_SECRET_KEY) and differs from "
                              "the primary's: give both nodes the same key")
            replace = data_key
        set_vector(connection, vector)
        peer = self.dbsession.scalars(select(ClusterPeer)).one()
        peer.secret_encrypted = cluster_box.encrypt(secret)
        # kept under the key this node holds from now on
        peer.broker_url_encrypted = cluster_box.encrypt(self.secret_box.decrypt(peer.broker_url_encrypted))
        peer.peer_vector = vector.dumps()
        peer.applier_state = ""
        node = self.node()
        node.role = Role.SLAVE
        node.epoch = epoch
        self.dbsession.execute(delete(SecondarySetup))
        self.dbsession.flush()
        return replace

    def adopt_key(self, key: str, transaction) -> None:
        """The cluster's key becomes this node's key, as ``transaction``
        (the one ``finish`` wrote in) commits. This node's other processes
        (its worker) read the key file at each use and may read the peer's
        secret, encrypted under the new key, the moment the commit lands:
        so the file holds both keys (the new one first) before the commit,
        and only the new one after it; only the old one if it fails."""
        box = self.secret_box
        old = box.export_key()
        box.replace_key(key, old)

        def settle(success: bool) -> None:
            box.replace_key(key) if success else box.replace_key(old)

        transaction.addAfterCommitHook(settle)
        transaction.addAfterAbortHook(lambda: box.replace_key(old))

    def abort(self) -> None:
        """Clear what an Add sent; the setup key dies with it."""
        connection = self._replaying()
        clear_replicated(connection)
        self.dbsession.execute(delete(ClusterPeer))
        self.dbsession.execute(delete(SecondarySetup))
        self.dbsession.flush()


