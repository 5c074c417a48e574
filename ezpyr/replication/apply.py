"""Applying a peer's change messages to this node's database.

A message is one committed transaction of the origin: its stream
(origin, epoch), its seq, and the ordered row changes. Applying it and
advancing the version vector happen in one transaction, so a message
delivered twice is a no-op the second time, and a message whose seq skips
ahead is not applied at all (the caller asks the origin to resend).
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ezpyr.meta import replicated_tables
from ezpyr.replication.models import VersionVectorEntry
from ezpyr.replication.rows import decode_row


@dataclass
class ChangeMessage:
    origin: str
    epoch: int
    seq: int
    changes: list[dict]
    actor: str = ""
    schema_revision: str = ""
    created_at: str = ""
    context: dict = field(default_factory=dict)  # the origin's vector when it made the change

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "ChangeMessage":
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @classmethod
    def from_outbox(cls, entry) -> "ChangeMessage":
        return cls(
            origin=entry.origin, epoch=entry.epoch, seq=entry.seq,
            changes=json.loads(entry.changes), actor=entry.actor,
            schema_revision=entry.schema_revision,
            created_at=entry.created_at.isoformat() if entry.created_at else "",
            context=json.loads(entry.context or "{}"),
        )


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already applied: acknowledge and drop
    GAP = "gap"  # an earlier seq is missing: ask for a resend


@dataclass
class ApplyResult:
    outcome: Outcome
    expected_seq: int = 0  # for GAP: the first seq this node lacks
    rows: int = 0
    notes: list[str] = field(default_factory=list)


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


def apply_message(connection: Connection, message: ChangeMessage) -> ApplyResult:
    """Apply one message inside the caller's transaction on ``connection``."""
    have = applied_seq(connection, message.origin, message.epoch)
    if message.seq <= have:
        return ApplyResult(Outcome.DUPLICATE)
    if message.seq > have + 1:
        return ApplyResult(Outcome.GAP, expected_seq=have + 1)
    tables = _tables()
    for change in message.changes:
        table = tables.get(change["table"])
        if table is None:
            raise UnknownTable(f"change names {change['table']!r}, which is not a replicated table")
        if change["op"] == "delete":
            connection.execute(delete(table).where(table.c.id == change["pk"]))
        else:
            upsert_row(connection, table, decode_row(table, change["row"]))
    _advance(connection, message.origin, message.epoch, message.seq, have)
    return ApplyResult(Outcome.APPLIED, rows=len(message.changes))


def upsert_row(connection: Connection, table, values: dict) -> None:
    pk = values["id"]
    changed = connection.execute(update(table).where(table.c.id == pk).values(**values))
    if changed.rowcount == 0:
        connection.execute(insert(table).values(**values))


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


def version_vector(connection: Connection) -> dict[tuple[str, int], int]:
    table = VersionVectorEntry.__table__
    return {(r.origin, r.epoch): r.seq for r in connection.execute(select(table))}


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    gap: tuple | None = None  # (origin, epoch, first missing seq): the rest was not applied
    conflict: str = ""  # the origin did not know changes held here: split-brain, nothing more applied
    conflict_epoch: int = 0  # the epoch of the stream whose change was refused
    applied_messages: list = field(default_factory=list)


def unknown_to_origin(vector: dict, message: "ChangeMessage") -> dict:
    """Streams where this node holds more than the origin knew when it made
    the change (its own stream excepted). Non-empty means the two nodes
    changed data concurrently: applying would merge silently."""
    context = {}
    for key, seq in (message.context or {}).items():
        origin, _, epoch = key.rpartition(":")
        context[(origin, int(epoch))] = int(seq)
    own = (message.origin, message.epoch)
    return {stream: seq for stream, seq in vector.items()
            if stream != own and seq > context.get(stream, 0)}


def _upsert_statement(connection: Connection, table):
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
    same rules as apply_message: duplicates are skipped, and at the first
    gap the rest is left unapplied. Runs of row changes to one table go in
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
            result.conflict = (
                f"the other node made change {message.seq} of its stream without knowing "
                + ", ".join(f"{seq - message.context.get(f'{o}:{e}', 0)} change(s) of stream "
                            f"{o[:8]}:{e}" for (o, e), seq in unknown.items())
                + " held here")
            result.conflict_epoch = message.epoch
            break
        for change in message.changes:
            table = tables.get(change["table"])
            if table is None:
                raise UnknownTable(f"change names {change['table']!r}, which is not a replicated table")
            if change["op"] == "delete":
                ops.append((table, "delete", {"pk": change["pk"]}))
            else:
                ops.append((table, "upsert", decode_row(table, change["row"])))
        vector[stream] = message.seq
        result.applied += 1
        result.applied_messages.append(message)
    _run_ops(connection, ops)
    for stream, seq in vector.items():
        if seq != known[stream]:
            _advance(connection, stream[0], stream[1], seq, known[stream])
    return result


def _run_ops(connection: Connection, ops: list[tuple]) -> None:
    from sqlalchemy import bindparam
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
                connection.execute(_upsert_statement(connection, table), run)
            else:
                for values in run:
                    connection.execute(_upsert_statement(connection, table), [values])
        start = end
