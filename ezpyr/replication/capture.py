"""Change capture: the one place where changes to replicated tables become
outbox entries.

Mapper events record every row the unit of work inserts, updates or deletes
on a :class:`~ezpyr.meta.Replicated` class, in the order the flush runs them
(so parents come before children). When the session commits, the recorded
changes become one outbox entry in the same database transaction, with the
next seq of this node's current stream. A session that applies a peer's
changes sets ``session.info[REPLAYING] = True`` and is not captured. Writes
that bypass the unit of work (Core statements, ORM bulk statements) are
refused by the engine-level guard in ``writes`` unless marked.

A node that is not allowed to write (a slave) refuses the commit with
:class:`NodeIsReadOnly`: no code path can change replicated data there.

An entry is written without a seq; :func:`sequence_pending` numbers the
committed ones in the order they were written (the relay runs it before it
publishes, a demote before it says where the stream ends). Writers hold no
lock that another writer waits for, so commits run side by side.
"""
from __future__ import annotations

import json

from sqlalchemy import bindparam, event, insert, literal, select, union_all, update
from sqlalchemy.orm import Mapper, Session, attributes

from ezpyr.meta import Replicated, utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.models import OutboxEntry, VersionVectorEntry
from ezpyr.replication.rows import encode_row
from ezpyr.replication.schema import code_revision
from ezpyr.replication.vector import VersionVector
from ezpyr.replication.wake import wake_relay
from ezpyr.replication.writes import REPLAYING  # noqa: F401 - also installs the engine-level guard

CHANGES = "ezpyr.changes"
WAKE = "ezpyr.wake_relay"  # the node id whose relay to wake once the session commits
ACTOR = "ezpyr.actor"  # a str, or a callable returning one
SCHEMA_REVISION = "ezpyr.schema_revision"

WRITABLE_ROLES = ("standalone", "master")


class NodeIsReadOnly(RuntimeError):
    """This node may not change replicated data now."""

    def __init__(self, role: str, master_address: str = ""):
        self.role = role
        self.master_address = master_address
        where = f" Make changes on the master at {master_address}." if master_address else ""
        super().__init__(f"This node is {role}; it does not accept changes.{where}")


def _record(op: str, mapper, connection, target, inserted: bool = False) -> None:
    if not isinstance(target, Replicated):
        return
    session = attributes.instance_state(target).session
    if session is None or session.info.get(REPLAYING):
        return
    table = mapper.local_table
    if op == "delete":
        row = None
    else:
        state = attributes.instance_state(target)
        values = {}
        missing = False
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            if prop.key in state.dict:
                values[column.name] = state.dict[prop.key]
            elif inserted and _null_unless_set(column):
                # a new row's column nobody set, without a default the database
                # fills in: the INSERT left it out, so it is NULL (no read back)
                values[column.name] = None
            else:
                missing = True
        if missing:  # expired or deferred attributes: read the row as written
            stored = connection.execute(select(table).where(table.c.id == target.id)).mappings().one()
            values = dict(stored)
        row = encode_row(table, values)
    session.info.setdefault(CHANGES, []).append(
        {"table": table.name, "op": op, "pk": target.id, "row": row}
    )


def _null_unless_set(column) -> bool:
    """Whether an INSERT that leaves ``column`` out stores NULL: nothing on
    the database's side (a server default, a computed or autoincrement
    column) gives it a value."""
    return (column.nullable and column.server_default is None and column.server_onupdate is None
            and column.computed is None and column.identity is None and not column.primary_key)


@event.listens_for(Mapper, "after_insert")
def _after_insert(mapper, connection, target):
    _record("upsert", mapper, connection, target, inserted=True)


@event.listens_for(Mapper, "after_update")
def _after_update(mapper, connection, target):
    # also fired for objects whose only change was a collection: skip those
    state = attributes.instance_state(target)
    if any(state.attrs[prop.key].history.has_changes() for prop in mapper.column_attrs):
        _record("upsert", mapper, connection, target)


@event.listens_for(Mapper, "after_delete")
def _after_delete(mapper, connection, target):
    _record("delete", mapper, connection, target)


@event.listens_for(Session, "before_commit")
def _write_outbox(session: Session) -> None:
    if session.info.get(REPLAYING):
        return
    session.flush()
    changes = session.info.pop(CHANGES, None)
    if not changes:
        return
    connection = session.connection()
    node, known = _node_and_vector(connection)
    if node is None:
        return  # before ezpyr-init made the node: nothing to replicate to yet
    if node["role"] not in WRITABLE_ROLES:
        session.info[CHANGES] = changes  # keep them for the error report
        raise NodeIsReadOnly(node["role"])
    # Read the role again with a shared lock (the latest committed row, not
    # the transaction's snapshot), held until this commit: writers do not
    # wait for each other, a demote waits for them, and a writer after a
    # demote sees it and is refused.
    table = NodeIdentity.__table__
    current = connection.execute(
        select(table.c.role, table.c.epoch).where(table.c.id == node["id"]).with_for_update(read=True)
    ).first()
    if current.role not in WRITABLE_ROLES or current.epoch != node["epoch"]:
        session.info[CHANGES] = changes
        raise NodeIsReadOnly(current.role)
    actor = session.info.get(ACTOR, "")
    if callable(actor):
        actor = actor()
    # The seq is given after the commit by the sequencer (the relay), so
    # that concurrent writers never queue for it.
    insert_entry(connection, node["id"], node["epoch"], None, changes, actor,
                 session.info.get(SCHEMA_REVISION) or code_revision(), known=known)
    session.info[WAKE] = node["id"]


def _node_and_vector(connection) -> tuple[dict | None, VersionVector]:
    """This node's row (id, role, epoch) and its version vector as the
    transaction's snapshot holds them, read in one statement (one round
    trip instead of two); (None, empty) before ezpyr-init made the node."""
    node_t = NodeIdentity.__table__
    vv = VersionVectorEntry.__table__
    rows = connection.execute(union_all(
        select(literal("node").label("kind"), node_t.c.id.label("origin"), node_t.c.epoch.label("epoch"),
               literal(0).label("seq"), node_t.c.role.label("role")),
        select(literal("vector"), vv.c.origin, vv.c.epoch, vv.c.seq, literal("")),
    )).all()
    node = next(({"id": r.origin, "epoch": r.epoch, "role": r.role} for r in rows if r.kind == "node"), None)
    return node, VersionVector({(r.origin, r.epoch): r.seq for r in rows if r.kind == "vector"})


def wake_after_commit(session: Session, node_id: str) -> None:
    """Wake this node's relay once ``session`` commits (for outbox changes
    made with Core statements, such as a resend)."""
    session.info[WAKE] = node_id


@event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    node_id = session.info.pop(WAKE, None)
    if node_id:
        wake_relay(node_id)


def insert_entry(connection, origin: str, epoch: int, seq: int | None, changes: list, actor: str,
                 schema_revision: str, known: VersionVector | None = None) -> int:
    """One outbox entry, with the origin's vector (``known``, else read
    here) as its context; returns its id. ``seq`` None: the sequencer
    numbers it once committed."""
    if known is None:
        known = VersionVector.read(connection)
    context = VersionVector({stream: seq for stream, seq in known.items() if seq})
    result = connection.execute(insert(OutboxEntry.__table__).values(
        origin=origin, epoch=epoch, seq=seq,
        changes=json.dumps(changes, separators=(",", ":")),
        context=context.dumps(),
        actor=(actor or "")[:64],
        schema_revision=schema_revision,
        created_at=utcnow(),
    ))
    return result.inserted_primary_key[0]


def record_pending(connection, changes: list, actor: str) -> str | None:
    """Write changes made with Core statements on ``connection`` (marked
    ``recording``) as an outbox entry of this node, numbered by the
    sequencer once the transaction has committed, as the unit of work's
    entries are: a long transaction writing many entries (a CSV import)
    holds no lock that the sequencer or other writers wait for. As at a
    captured commit, the role is read again with a shared lock held until
    the commit (a demote waits; after one, this is refused). Returns this
    node's id, whose relay to wake once committed (``wake_after_commit``);
    None before ezpyr-init made the node (nothing to replicate to)."""
    table = NodeIdentity.__table__
    node = connection.execute(
        select(table.c.id, table.c.role, table.c.epoch).with_for_update(read=True)).first()
    if node is None:
        return None
    if node.role not in WRITABLE_ROLES:
        raise NodeIsReadOnly(node.role)
    insert_entry(connection, node.id, node.epoch, None, changes, actor, code_revision())
    return node.id


def record_changes(connection, changes: list, actor: str) -> int:
    """Write changes made with Core statements (not captured) as this
    node's next outbox entry, numbered at once; returns its seq. The
    caller made the changes on ``connection`` in the same transaction."""
    node = connection.execute(select(NodeIdentity.__table__)).mappings().one()
    if node["role"] not in WRITABLE_ROLES:
        raise NodeIsReadOnly(node["role"])
    entry_id = insert_entry(connection, node["id"], node["epoch"], None, changes, actor, code_revision())
    return sequence_pending(connection)[entry_id]


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(CHANGES, None)
    session.info.pop(WAKE, None)


def sequence_pending(connection, *, every_epoch: bool = True) -> dict[int, int]:
    """Number this node's committed outbox entries that have no seq yet,
    in the order they were written, gap-free in their stream; advances this
    node's version vector to match. Returns {entry id: seq}.

    The stream's vector row is locked (sequencers queue there, writers
    never do); the entries are read with a locking read, so the latest
    committed ones are seen whatever the transaction's snapshot.

    ``every_epoch`` False looks only at the node's current epoch, whose
    unnumbered entries one index seek finds (the relay's round): finding
    every epoch with unnumbered entries reads the index of all this node's
    kept entries, so it is left to the worker's start, a demote, Add and
    Resolve. Writers only write into the current epoch, and whatever
    changes the epoch numbers what was written before (a demote does)."""
    table = NodeIdentity.__table__
    node = connection.execute(select(table.c.id, table.c.epoch)).first()
    if node is None:
        return {}
    outbox = OutboxEntry.__table__
    vv = VersionVectorEntry.__table__
    if every_epoch:
        epochs = [row.epoch for row in connection.execute(
            select(outbox.c.epoch).where(outbox.c.origin == node.id, outbox.c.seq.is_(None)).distinct())]
    else:
        epochs = [node.epoch]
    sqlite = connection.dialect.name == "sqlite"
    assigned = {}
    for epoch in sorted(epochs):
        stream_row = (vv.c.origin == node.id) & (vv.c.epoch == epoch)
        # Lock the stream first: sequencers queue here, so no two hand out
        # the same seq. On MariaDB a locking read of its row (the latest
        # committed seq, whatever the snapshot); SQLite takes the database's
        # write lock with a write, before anything is read.
        if sqlite:
            locked = connection.execute(update(vv).where(stream_row).values(seq=vv.c.seq)).rowcount
            last = connection.execute(select(vv.c.seq).where(stream_row)).scalar() if locked else None
        else:
            last = connection.execute(select(vv.c.seq).where(stream_row).with_for_update()).scalar()
        # one index seek (origin, epoch, seq NULL): only the unnumbered entries are read
        pending = [row.id for row in connection.execute(
            select(outbox.c.id).where(outbox.c.origin == node.id, outbox.c.epoch == epoch,
                                      outbox.c.seq.is_(None)).order_by(outbox.c.id).with_for_update())]
        if not pending:
            continue
        first = (last or 0) + 1
        numbered = {entry_id: first + i for i, entry_id in enumerate(pending)}
        # each row by its id (an equality on the key locks that row only, no
        # gap that a writer inserts into)
        connection.execute(update(outbox).where(outbox.c.id == bindparam("entry_id"))
                           .values(seq=bindparam("new_seq")),
                           [{"entry_id": k, "new_seq": v} for k, v in numbered.items()])
        if last is None:
            connection.execute(insert(vv).values(origin=node.id, epoch=epoch, seq=first + len(pending) - 1))
        else:
            connection.execute(update(vv).where(stream_row).values(seq=first + len(pending) - 1))
        assigned.update(numbered)
    return assigned


def read_committed(connection) -> None:
    """Make the transaction just begun on ``connection`` (before its first
    statement) read the latest committed rows without gap locks, on
    MariaDB. The level holds for this one transaction only, so nothing is
    reset when the connection goes back to the pool."""
    if connection.dialect.name in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


def sequence_committed(engine) -> int:
    """Number this node's committed entries (``sequence_pending``) in a
    transaction of its own; returns how many. On MariaDB it reads committed
    rows without gap locks, so writers inserting entries never wait for it."""
    with engine.begin() as conn:
        read_committed(conn)
        return len(sequence_pending(conn))
