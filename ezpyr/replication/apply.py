"""Applying the other node's change messages to this node's database: the
one apply path (the applier's).

A message is one committed transaction of the origin (see ``messages``).
Applying a batch and advancing the version vector happen in one transaction,
so a message delivered twice is a no-op the second time, a message whose seq
skips ahead is not applied at all (the caller asks the origin to resend),
and a message whose origin did not know changes held here is a split-brain:
nothing of the batch is applied.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from ezpyr.meta import replicated_tables
from ezpyr.replication.messages import ChangeMessage
from ezpyr.replication.models import VersionVectorEntry
from ezpyr.replication.rows import decode_row
from ezpyr.replication.vector import VersionVector
from ezpyr.replication.writes import applying


class UnknownTable(ValueError):
    pass


def _tables():
    return {t.name: t for t in replicated_tables()}


def applied_seq(connection: Connection, origin: str, epoch: int) -> int:
    table = VersionVectorEntry.__table__
    seq = connection.execute(
        select(table.c.seq).where(table.c.origin == origin, table.c.epoch == epoch)
    ).scalar()
    return seq or 0


def _advance(connection: Connection, origin: str, epoch: int, seq: int, had: int) -> None:
    table = VersionVectorEntry.__table__
    if had == 0 and not connection.execute(
        select(table.c.seq).where(table.c.origin == origin, table.c.epoch == epoch)
    ).first():
        connection.execute(insert(table).values(origin=origin, epoch=epoch, seq=seq))
    else:
        connection.execute(
            update(table).where(table.c.origin == origin, table.c.epoch == epoch).values(seq=seq)
        )


def take_in(connection: Connection, vector: Mapping) -> None:
    """Raise this node's vector to hold ``vector`` too (each stream at the
    higher of the two seqs)."""
    here = version_vector(connection)
    for (origin, epoch), seq in vector.items():
        if seq > here.seq((origin, epoch)):
            _advance(connection, origin, epoch, seq, here.seq((origin, epoch)))


def version_vector(connection: Connection) -> VersionVector:
    return VersionVector.read(connection)


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    gap: tuple | None = None  # (origin, epoch, first missing seq): the rest was not applied
    conflict: str = ""  # the origin did not know changes held here: split-brain, nothing more applied
    conflict_epoch: int = 0  # the epoch of the stream whose change was refused
    applied_messages: list = field(default_factory=list)


def unknown_to_origin(vector: Mapping, message: ChangeMessage) -> dict:
    """Streams where this node holds more than the origin knew when it made
    the change (its own stream excepted). Non-empty means the two nodes
    changed data concurrently: applying would merge silently."""
    return VersionVector(vector).beyond(message.known, besides=message.stream)


def upsert_statement(connection: Connection, table):
    """INSERT … that updates the row when its key exists (one statement,
    so a run of rows goes in one executemany)."""
    if connection.dialect.name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert
        stmt = mysql_insert(table)
        return stmt.on_duplicate_key_update({c.name: stmt.inserted[c.name] for c in table.columns
                                             if c.name != "id"})
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    stmt = sqlite_insert(table)
    return stmt.on_conflict_do_update(index_elements=[table.c.id],
                                      set_={c.name: stmt.excluded[c.name] for c in table.columns
                                            if c.name != "id"})


def apply_batch(connection: Connection, messages: list[ChangeMessage]) -> BatchResult:
    """Apply many messages in the caller's transaction, in order, with the
    duplicates skipped, and at the first gap, or the first change whose origin
    did not know what is held here (a split-brain), the rest is left unapplied. Runs of row changes to one table go in
    one executemany, and the vector is written once per stream."""
    result = BatchResult()
    here = version_vector(connection)
    vector: dict[tuple, int] = {}
    known: dict[tuple, int] = {}
    ops: list[tuple] = []  # (table, op, values)
    tables = _tables()
    for message in messages:
        stream = (message.origin, message.epoch)
        if stream not in vector:
            known[stream] = vector[stream] = here.get(stream, 0)
        have = vector[stream]
        if message.seq <= have:
            result.duplicates += 1
            continue
        if message.seq > have + 1:
            result.gap = (message.origin, message.epoch, have + 1)
            break
        unknown = unknown_to_origin({**here, **vector}, message)
        if unknown:
            known = message.known
            missed = sum(seq - known.seq(stream) for stream, seq in unknown.items())
            result.conflict = (f"the other node made a change without knowing {missed} "
                               f"change{'s' if missed != 1 else ''} held here")
            result.conflict_epoch = message.epoch
            break
        for change in message.changes:
            table = tables.get(change.table)
            if table is None:
                raise UnknownTable(f"change names {change.table!r}, which is not a replicated table")
            if change.op == "delete":
                ops.append((table, "delete", {"pk": change.pk}))
            else:
                ops.append((table, "upsert", decode_row(table, change.row or {})))
        vector[stream] = message.seq
        result.applied += 1
        result.applied_messages.append(message)
    with applying(connection):
        _run_ops(connection, ops)
    for stream, seq in vector.items():
        if seq != known[stream]:
            _advance(connection, stream[0], stream[1], seq, known[stream])
    return result


def _run_ops(connection: Connection, ops: list[tuple]) -> None:
    start = 0
    while start < len(ops):
        table, op = ops[start][0], ops[start][1]
        end = start
        while end < len(ops) and ops[end][0] is table and ops[end][1] == op:
            end += 1
        run = [values for _, _, values in ops[start:end]]
        if op == "delete":
            connection.execute(delete(table).where(table.c.id == bindparam("pk")), run)
        else:
            # rows of one run may carry different column sets (older schema): group by keys
            by_keys: dict[tuple, list] = {}
            for values in run:
                by_keys.setdefault(tuple(sorted(values)), []).append(values)
            if len(by_keys) == 1:
                connection.execute(upsert_statement(connection, table), run)
            else:
                for values in run:
                    connection.execute(upsert_statement(connection, table), [values])
        start = end
