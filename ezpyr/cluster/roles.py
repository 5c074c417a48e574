"""Who is master: Make master (graceful switchover or forced takeover),
the old master's handing over, and what two nodes do when they meet again.

Epochs only grow. A node writes only as master and only into its current
stream (its id, its epoch). When two nodes compare version vectors:

* neither is ahead, or only one is: no conflict. A master with the lower
  epoch steps down to slave; whatever it holds that the other lacks reaches
  the other through replication, so nothing is lost;
* both are ahead (each holds changes the other lacks): split-brain. Both
  nodes record it, neither applies the other's changes, and the node with
  the lower epoch takes no changes until an admin resolves it.
"""
from __future__ import annotations

import datetime as dt
import enum
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerTls, PeerUnreachable
from ezpyr.cluster.models import ClusterPeer
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity, Role
from ezpyr.replication.capture import sequence_pending
from ezpyr.replication.apply import applied_seq, version_vector
from ezpyr.replication.models import VersionVectorEntry
from ezpyr.replication.vector import Ordering, VersionVector
from ezpyr.validation import Invalid

NODE = NodeIdentity.__table__
PEER = ClusterPeer.__table__
VECTOR = VersionVectorEntry.__table__
DEMOTING = Role.DEMOTING


def _node(conn: Connection, lock: bool = False):
    stmt = select(NODE)
    if lock:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().one()


def _peer(conn: Connection):
    return conn.execute(select(PEER)).mappings().first()


def lock_stream(conn: Connection, origin: str, epoch: int) -> int:
    """Lock this node's stream row (sequencers queue behind it) and read
    its seq as last committed (a locking read, whatever the snapshot)."""
    seq = conn.execute(select(VECTOR.c.seq).where(VECTOR.c.origin == origin, VECTOR.c.epoch == epoch)
                       .with_for_update()).scalar()
    if seq is None:
        conn.execute(insert(VECTOR).values(origin=origin, epoch=epoch, seq=0))
        return 0
    return seq


# -- on the master, asked by the slave ------------------------------------

def demote(conn: Connection) -> dict:
    """Stop taking changes and say where this node's stream ends. The
    node row's lock waits for writers still committing (they hold it
    shared); later ones see the new role and are refused. What they wrote
    is numbered here, so the end includes it."""
    node = _node(conn, lock=True)
    if node["role"] not in (Role.MASTER, DEMOTING):
        raise Invalid(f"this node is {node['role']}, not master")
    sequence_pending(conn)
    seq = lock_stream(conn, node["id"], node["epoch"])
    conn.execute(update(NODE).values(role=DEMOTING))
    return {"origin": node["id"], "epoch": node["epoch"], "seq": seq}


def undemote(conn: Connection) -> None:
    """The switchover did not complete: take changes again."""
    conn.execute(update(NODE).where(NODE.c.role == DEMOTING).values(role=Role.MASTER))


def handed_over(conn: Connection, new_master: str, epoch: int) -> None:
    """The other node is master now, at ``epoch``: this node follows."""
    node = _node(conn, lock=True)
    if epoch <= node["epoch"]:
        raise Invalid(f"epoch {epoch} is not newer than this node's {node['epoch']}")
    peer = _peer(conn)
    if peer is None or peer["id"] != new_master:
        raise Invalid("that is not this node's other node")
    conn.execute(update(NODE).values(role=Role.SLAVE))
    conn.execute(update(PEER).values(role=Role.MASTER, epoch=epoch, updated_at=utcnow()))


# -- on the slave ---------------------------------------------------------------

@dataclass
class TakeoverRisk:
    last_seen: dt.datetime | None  # when the master last answered this node (UTC)
    unapplied: int  # changes the master held then that this node has not applied

    def warning(self, address: str, now: dt.datetime | None = None) -> str:
        """Never states an old figure as the present: it says how old it is,
        and that the master may hold more now."""
        if self.last_seen is None:
            return (f"The master at {address} does not answer, and this node has never heard from it: "
                    "how many changes it holds that this node lacks is unknown. If you take over, they "
                    "stay on that node and come back as a split-brain to resolve when it returns.")
        age = max(0, int(((now or utcnow()) - self.last_seen).total_seconds()))
        changes = f"{self.unapplied} change{'s' if self.unapplied != 1 else ''}"
        return (f"The master at {address} does not answer. When it last answered, {_duration(age)} ago "
                f"({self.last_seen:%Y-%m-%d %H:%M:%S} UTC), it held {changes} this node has not applied; "
                "it holds at least that many now, and any made since are unknown. If you take over, they "
                "stay on that node and come back as a split-brain to resolve when it returns.")


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def takeover_risk(conn: Connection) -> TakeoverRisk:
    peer = _peer(conn)
    theirs = VersionVector({stream: seq for stream, seq in VersionVector.from_json(peer["peer_vector"]).items()
                            if stream[0] == peer["id"]})
    unapplied = version_vector(conn).lacks(theirs)
    return TakeoverRisk(peer["last_heartbeat_at"], unapplied)


def become_master(conn: Connection, peer_epoch: int) -> int:
    """Take a new epoch above both nodes' and start a new stream."""
    node = _node(conn, lock=True)
    epoch = max(node["epoch"], peer_epoch) + 1
    conn.execute(update(NODE).values(role=Role.MASTER, epoch=epoch))
    conn.execute(insert(VECTOR).values(origin=node["id"], epoch=epoch, seq=0))
    conn.execute(update(PEER).values(role=Role.SLAVE, updated_at=utcnow()))
    return epoch


def make_master(engine, secret_box, *, force: bool = False, progress=None,
                drain_timeout: float = 120.0, tls: PeerTls | None = None) -> dict:
    """On the slave. Graceful when the master answers: it stops taking
    changes, its backlog drains here, then the roles swap, nothing lost.
    When it does not answer, only with ``force`` (after the warning).
    Its preconditions are checked by ``ClusterActions.make_master``."""
    progress = progress or (lambda done, total, message=None: None)
    with engine.connect() as conn:
        node = _node(conn)
        peer = _peer(conn)
    client = ClusterClient(peer["address"], node["id"], secret_box.decrypt(peer["secret_encrypted"]), tls=tls)
    progress(0, 1, "asking the master to stop taking changes")
    try:
        end = client.call("POST", "/cluster/api/demote", {})
    except (PeerUnreachable, PeerRefused) as error:
        if not force:
            with engine.connect() as conn:
                risk = takeover_risk(conn)
            raise TakeoverNeedsConfirmation(risk.warning(peer["address"]), risk, str(error)) from None
        with engine.begin() as conn:
            epoch = become_master(conn, peer["epoch"])
        return {"mode": "forced", "epoch": epoch}
    origin, their_epoch, last = end["origin"], int(end["epoch"]), int(end["seq"])
    deadline = time.monotonic() + drain_timeout
    while True:
        with engine.connect() as conn:
            have = applied_seq(conn, origin, their_epoch)
        progress(min(have, last), max(last, 1), f"applying the master's last changes ({have} of {last})")
        if have >= last:
            break
        if time.monotonic() > deadline:
            try:
                client.call("POST", "/cluster/api/undemote", {})
            except (PeerUnreachable, PeerRefused):
                pass
            raise Invalid(f"The master's backlog did not drain in {int(drain_timeout)} s "
                          f"({have} of {last} applied); nothing was switched. Check that this node's "
                          "worker runs, then try again.")
        time.sleep(0.05)
    with engine.begin() as conn:
        epoch = become_master(conn, their_epoch)
    try:
        client.call("POST", "/cluster/api/handed-over", {"master": node["id"], "epoch": epoch})
    except (PeerUnreachable, PeerRefused):
        pass  # it stays read-only and follows once its worker sees this node's epoch
    progress(1, 1, "done")
    return {"mode": "graceful", "epoch": epoch, "applied_through": last}


class TakeoverNeedsConfirmation(Invalid):
    def __init__(self, warning: str, risk: TakeoverRisk, reason: str):
        super().__init__(warning)
        self.risk = risk
        self.reason = reason


# -- when the two nodes meet (the worker's heartbeat) ----------------------

def declare_split_brain(conn: Connection, detail: str, their_epoch: int | None = None) -> str:
    """Record a split-brain; the node with the lower epoch stops taking
    changes (on a tie, the lower node id)."""
    node = _node(conn, lock=True)
    peer = _peer(conn)
    if peer["split_brain_since"] is None:
        conn.execute(update(PEER).values(split_brain_since=utcnow(), split_brain_detail=detail[:2000]))
    # the newest epoch known of the other node: the peer row can lag behind
    # what its changes (or its status) just said
    their_epoch = max(peer["epoch"] or 0, their_epoch or 0)
    if their_epoch > (peer["epoch"] or 0):
        conn.execute(update(PEER).values(epoch=their_epoch))
    if node["epoch"] < their_epoch or (node["epoch"] == their_epoch and node["id"] < peer["id"]):
        conn.execute(update(NODE).values(role=Role.SLAVE))
        return f"split-brain: {detail}; this node (lower epoch) takes no changes"
    return f"split-brain: {detail}"

class Meeting(enum.Enum):
    """What meeting the other node changed here."""

    NOTHING = "nothing"
    SPLIT_BRAIN = "split-brain"
    STEPPED_DOWN = "stepped down"


@dataclass
class MeetOutcome:
    kind: Meeting
    message: str = ""

    def __bool__(self) -> bool:
        return self.kind is not Meeting.NOTHING


def meet(conn: Connection, mine: dict, status: dict, *, lock: bool = False) -> MeetOutcome:
    """Settle roles after seeing the other node's status (its vector read
    after ``mine``). Reads without locking; only when something must
    change does it lock this node's row and decide again."""
    node = _node(conn, lock=lock)
    peer = _peer(conn)
    mine = VersionVector(mine)
    theirs = VersionVector.from_json(status.get("vector", {}))
    their_role, their_epoch = status.get("role"), int(status.get("epoch", 0))
    ordering = mine.compare(theirs)
    if peer["split_brain_since"] is not None:
        return MeetOutcome(Meeting.NOTHING)  # stays until an admin resolves it
    split = ordering is Ordering.CONCURRENT
    step_down = (node["role"] in (Role.MASTER, DEMOTING) and their_role == Role.MASTER
                 and their_epoch > node["epoch"])
    if not (split or step_down):
        return MeetOutcome(Meeting.NOTHING)
    if not lock:
        return meet(conn, mine, status, lock=True)
    if split:
        detail = (f"this node holds {theirs.lacks(mine)} change(s) the other lacks, "
                  f"and lacks {mine.lacks(theirs)} the other holds")
        return MeetOutcome(Meeting.SPLIT_BRAIN, declare_split_brain(conn, detail, their_epoch))
    conn.execute(update(NODE).values(role=Role.SLAVE))
    conn.execute(update(PEER).values(role=Role.MASTER, epoch=their_epoch))
    return MeetOutcome(Meeting.STEPPED_DOWN,
                       f"the other node is master at epoch {their_epoch}: this node is slave now"
                       + ("; its own newer changes are sent there" if ordering is Ordering.AHEAD else ""))
