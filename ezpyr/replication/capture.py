"""Change capture: the one place where changes to replicated tables become
outbox entries.

Mapper events record every row the unit of work inserts, updates or deletes
on a :class:`~ezpyr.meta.Replicated` class, in the order the flush runs them
(so parents come before children). When the session commits, the recorded
changes become one outbox entry in the same database transaction, with the
next seq of this node's current stream. A session that applies a peer's
changes sets ``session.info[REPLAYING] = True`` and is not captured.

A node that is not allowed to write (a slave) refuses the commit with
:class:`NodeIsReadOnly`: no code path can change replicated data there.
"""
from __future__ import annotations

import json

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Mapper, Session, attributes

from ezpyr.meta import Replicated, utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.models import OutboxEntry, VersionVectorEntry
from ezpyr.replication.rows import encode_row
from ezpyr.replication.schema import code_revision
from ezpyr.replication.wake import wake_relay

CHANGES = "ezpyr.changes"
WAKE = "ezpyr.wake_relay"  # the node id whose relay to wake once the session commits
REPLAYING = "ezpyr.replaying"
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


def _record(op: str, mapper, connection, target) -> None:
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
            else:
                missing = True
        if missing:  # expired or deferred attributes: read the row as written
            stored = connection.execute(select(table).where(table.c.id == target.id)).mappings().one()
            values = dict(stored)
        row = encode_row(table, values)
    session.info.setdefault(CHANGES, []).append(
        {"table": table.name, "op": op, "pk": target.id, "row": row}
    )


@event.listens_for(Mapper, "after_insert")
def _after_insert(mapper, connection, target):
    _record("upsert", mapper, connection, target)


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
    node = connection.execute(select(NodeIdentity.__table__)).mappings().first()
    if node is None:
        return  # before ezpyr-init made the node: nothing to replicate to yet
    if node["role"] not in WRITABLE_ROLES:
        session.info[CHANGES] = changes  # keep them for the error report
        raise NodeIsReadOnly(node["role"])
    seq = next_seq(connection, node["id"], node["epoch"])
    # Read the role again now that the stream is locked, with a locking read
    # (the latest committed row, not the transaction's snapshot): a demote
    # that committed meanwhile is seen, and this commit refused.
    table = NodeIdentity.__table__
    current = connection.execute(
        select(table.c.role, table.c.epoch).where(table.c.id == node["id"]).with_for_update()
    ).first()
    if current.role not in WRITABLE_ROLES or current.epoch != node["epoch"]:
        session.info[CHANGES] = changes
        raise NodeIsReadOnly(current.role)
    actor = session.info.get(ACTOR, "")
    if callable(actor):
        actor = actor()
    insert_entry(connection, node["id"], node["epoch"], seq, changes, actor,
                 session.info.get(SCHEMA_REVISION) or code_revision())
    session.info[WAKE] = node["id"]


def wake_after_commit(session: Session, node_id: str) -> None:
    """Wake this node's relay once ``session`` commits (for outbox changes
    made with Core statements, such as a resend)."""
    session.info[WAKE] = node_id


@event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    node_id = session.info.pop(WAKE, None)
    if node_id:
        wake_relay(node_id)


def insert_entry(connection, origin: str, epoch: int, seq: int, changes: list, actor: str,
                 schema_revision: str) -> None:
    """One outbox entry, with the origin's vector as its context."""
    vv = VersionVectorEntry.__table__
    context = {f"{r.origin}:{r.epoch}": r.seq for r in connection.execute(select(vv)) if r.seq}
    connection.execute(insert(OutboxEntry.__table__).values(
        origin=origin, epoch=epoch, seq=seq,
        changes=json.dumps(changes, separators=(",", ":")),
        context=json.dumps(context, separators=(",", ":")),
        actor=(actor or "")[:64],
        schema_revision=schema_revision,
        created_at=utcnow(),
    ))


def record_changes(connection, changes: list, actor: str) -> int:
    """Write changes made with Core statements (not captured) as this
    node's next outbox entry; returns its seq. The caller made the changes
    on ``connection`` in the same transaction."""
    node = connection.execute(select(NodeIdentity.__table__)).mappings().one()
    if node["role"] not in WRITABLE_ROLES:
        raise NodeIsReadOnly(node["role"])
    seq = next_seq(connection, node["id"], node["epoch"])
    insert_entry(connection, node["id"], node["epoch"], seq, changes, actor, code_revision())
    return seq


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(CHANGES, None)
    session.info.pop(WAKE, None)


def next_seq(connection, origin: str, epoch: int) -> int:
    """Allocate the next seq of a stream. The UPDATE locks the vector row
    until commit, so concurrent writers queue up and seqs have no gaps."""
    table = VersionVectorEntry.__table__
    done = connection.execute(
        update(table)
        .where(table.c.origin == origin, table.c.epoch == epoch)
        .values(seq=table.c.seq + 1)
    )
    if done.rowcount == 0:
        connection.execute(insert(table).values(origin=origin, epoch=epoch, seq=1))
        return 1
    return connection.execute(
        select(table.c.seq).where(table.c.origin == origin, table.c.epoch == epoch)
    ).scalar_one()
