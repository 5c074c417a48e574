"""The cluster as this node sees it: its peer, granted hosts, the state the
panel shows. Reads only this node's database: no page waits on the peer."""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ezpyr import __version__
from ezpyr.cluster.client import is_plain_http_beyond_loopback
from ezpyr.cluster.models import ApiNonce, ClusterPeer, GrantedHost, Link, WorkerState
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity, Role
from ezpyr.replication.apply import version_vector
from ezpyr.replication.capture import wake_after_commit
from ezpyr.replication.outbox import unsent_count
from ezpyr.replication.refusals import RefusalSummary, refusal_summary
from ezpyr.replication.schema import database_revision
from ezpyr.replication.vector import VersionVector
from ezpyr.validation import Invalid

BUILD = "1"
# A peer whose last heartbeat is older than this is shown unreachable.
HEARTBEAT_STALE_SECONDS = 10
# This node's worker is taken for stopped when its own heartbeat is older.
WORKER_STALE_SECONDS = 15


@dataclass
class ClusterState:
    node: NodeIdentity
    peer: ClusterPeer | None
    status: str  # "not configured" | "connecting" | "connected" | "disconnected" | "unreachable"
    backlog: int
    lag_seconds: float | None
    heartbeat_age: float | None
    worker: "WorkerReport"
    refused: RefusalSummary | None = None  # change messages refused (unsigned, forged …)

    @property
    def node_state(self) -> str:
        if self.node.role == Role.SECONDARY:
            return "secondary awaiting setup"
        if self.node.role == Role.STANDALONE and self.peer is None:
            return "master (standalone)"
        return self.node.role

    @property
    def split_brain(self) -> bool:
        return bool(self.peer and self.peer.split_brain_since)

    @property
    def other_node(self) -> str:
        if self.peer is None:
            return "not configured"
        return f"{self.peer.address} ({self.peer.role})"

    @property
    def warnings(self) -> list[str]:
        """What an admin should fix about the channel between the nodes."""
        if self.peer is None or not is_plain_http_beyond_loopback(self.peer.address):
            return []
        return [f"The other node is called at {self.peer.address} over plain HTTP: every request "
                "is signed, but anyone on the network between the nodes can read what they say. "
                "Serve its cluster API over https:// and give that address instead."]

    def as_dict(self) -> dict:
        peer = self.peer
        return {
            "node": {"id": self.node.id, "name": self.node.name, "address": self.node.address,
                     "role": self.node.role, "state": self.node_state, "epoch": self.node.epoch},
            "other_node": None if peer is None else {
                "id": peer.id, "name": peer.name, "address": peer.address, "role": peer.role,
                "epoch": peer.epoch, "link": peer.link,
            },
            "status": "split_brain" if self.split_brain else self.status,
            "link": self.status,
            "split_brain": self.split_brain,
            "split_brain_detail": self.peer.split_brain_detail if self.split_brain else "",
            "backlog": self.backlog,
            "backlog_unsent": peer.backlog_unsent if peer else 0,
            "backlog_queued": peer.backlog_queued if peer else 0,
            "peer_worker_attached": None if not peer or peer.queue_consumers < 0
            else peer.queue_consumers > 0,
            "lag_seconds": self.lag_seconds,
            "last_heartbeat_at": peer.last_heartbeat_at.isoformat() + "Z"
            if peer and peer.last_heartbeat_at else None,
            "heartbeat_age_seconds": self.heartbeat_age,
            "applier": peer.applier_state if peer else "",
            "last_error": peer.last_error if peer else "",
            "worker": self.worker.as_dict(),
            "warnings": self.warnings,
            "refused_messages": (self.refused or RefusalSummary(0, None, "", "")).as_dict(),
            "secret_rotation": "" if peer is None or not (peer.next_secret_encrypted
                                                          or peer.previous_secret_encrypted)
            else "rolling: the old cluster secret is still accepted",
        }


@dataclass
class WorkerReport:
    """This node's worker, as its last heartbeat left it."""

    heartbeat_age: float | None  # None: it never ran
    stopped: bool
    relay: str

    @property
    def running(self) -> bool:
        return (not self.stopped and self.heartbeat_age is not None
                and self.heartbeat_age <= WORKER_STALE_SECONDS)

    @property
    def problem(self) -> str:
        """Empty while it runs; else what an admin should know."""
        if self.running:
            return ""
        if self.heartbeat_age is None:
            return "This node's replication worker has never run: start ezpyr-worker."
        if self.stopped:
            return "This node's replication worker was stopped: start ezpyr-worker."
        return (f"This node's replication worker has not reported for {int(self.heartbeat_age)} s: "
                "it is not running or is stuck; check ezpyr-worker and its log.")

    def as_dict(self) -> dict:
        return {"running": self.running, "heartbeat_age_seconds": self.heartbeat_age,
                "relay": self.relay if self.running else "", "problem": self.problem}


def check_address(address: str) -> str:
    """An IP address (the form the cluster API compares with the caller)."""
    try:
        return str(ipaddress.ip_address((address or "").strip()))
    except ValueError:
        raise Invalid(f"{address!r} is not an IP address.", "address") from None


class ClusterService:
    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def node(self) -> NodeIdentity:
        node = self.dbsession.scalars(select(NodeIdentity)).first()
        if node is None:
            raise RuntimeError("this node has no identity yet: run ezpyr-init CONFIG")
        return node

    def peer(self) -> ClusterPeer | None:
        return self.dbsession.scalars(select(ClusterPeer)).first()

    # -- grants ----------------------------------------------------------
    def grant(self, address: str) -> bool:
        """Allow ``address`` to call the cluster API; False if it already was."""
        address = check_address(address)
        if self.dbsession.get(GrantedHost, address) is not None:
            return False
        self.dbsession.add(GrantedHost(address=address))
        self.dbsession.flush()
        return True

    def revoke(self, address: str) -> bool:
        address = check_address(address)
        host = self.dbsession.get(GrantedHost, address)
        if host is None:
            return False
        self.dbsession.delete(host)
        self.dbsession.flush()
        return True

    def granted(self) -> list[str]:
        return list(self.dbsession.scalars(select(GrantedHost.address).order_by(GrantedHost.address)))

    def is_granted(self, address: str) -> bool:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            return False
        return self.dbsession.get(GrantedHost, address) is not None

    def remember_nonce(self, nonce: str, window_seconds: int) -> bool:
        """Record a nonce; False if it was seen within the window (a replay)."""
        cutoff = utcnow() - dt.timedelta(seconds=2 * window_seconds)
        self.dbsession.execute(delete(ApiNonce).where(ApiNonce.seen_at < cutoff))
        if self.dbsession.get(ApiNonce, nonce) is not None:
            return False
        self.dbsession.add(ApiNonce(nonce=nonce))
        self.dbsession.flush()
        return True

    # -- link --------------------------------------------------------------
    def set_link(self, link: Link) -> ClusterPeer:
        peer = self.peer()
        if peer is None:
            raise Invalid("No other node is configured.")
        if link not in tuple(Link):
            raise Invalid(f"unknown link state {link!r}")
        if link == Link.CONNECTED and peer.link != Link.CONNECTED:
            # "connecting" until the worker's first probe answers or fails
            peer.reachable, peer.last_error = False, ""
        peer.link = link
        peer.updated_at = utcnow()
        self.dbsession.flush()
        wake_after_commit(self.dbsession, self.node().id)  # the relay pauses or resumes at once
        return peer

    # -- reading -----------------------------------------------------------
    def vector(self) -> dict:
        return version_vector(self.dbsession.connection())

    def schema_revision(self) -> str:
        """The revision this node's database is at (what Add compares)."""
        return database_revision(self.dbsession.connection())

    def hello(self) -> dict:
        node = self.node()
        return {
            "node_id": node.id, "name": node.name, "address": node.address,
            "version": __version__, "build": BUILD, "schema_revision": self.schema_revision(),
            "role": node.role, "epoch": node.epoch,
            "vector": self.vector().to_json(),
            "unsent": unsent_count(self.dbsession.connection()),
            "time": utcnow().isoformat() + "Z",
        }

    def worker(self) -> WorkerReport:
        row = self.dbsession.get(WorkerState, 1)
        if row is None:
            return WorkerReport(None, False, "")
        age = max(0.0, (utcnow() - row.heartbeat_at).total_seconds())
        return WorkerReport(age, row.stopped_at is not None, row.relay_state)

    def state(self) -> ClusterState:
        node = self.node()
        peer = self.peer()
        worker = self.worker()
        refused = refusal_summary(self.dbsession.connection())
        if peer is None:
            return ClusterState(node, None, "not configured", 0, None, None, worker, refused)
        age = None
        if peer.last_heartbeat_at is not None:
            age = max(0.0, (utcnow() - peer.last_heartbeat_at).total_seconds())
        if peer.link == Link.DISCONNECTED:
            status = "disconnected"
        elif peer.reachable and age is not None and age <= HEARTBEAT_STALE_SECONDS:
            status = "connected"
        elif not peer.reachable and not peer.last_error and worker.running:
            status = "connecting"  # no probe has answered or failed since Add or Connect
        else:
            status = "unreachable"
        # both halves as the worker last measured them, at the same moment
        backlog = peer.backlog_unsent + peer.backlog_queued
        return ClusterState(node, peer, status, backlog, peer.lag_seconds, age, worker, refused)

    def peer_vector(self) -> VersionVector:
        peer = self.peer()
        return VersionVector.from_json(peer.peer_vector if peer else None)
