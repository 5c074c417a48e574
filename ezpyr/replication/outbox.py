"""The outbox as the relay and the panel see it: what is unsent, marking
entries sent once the broker confirmed them, resends, retention, and which
change made a row (provenance, for Resolve)."""
from __future__ import annotations

import json

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from ezpyr.meta import utcnow
from ezpyr.replication.models import OutboxEntry

OUTBOX = OutboxEntry.__table__


def unsent(connection: Connection, limit: int = 500) -> list:
    """Numbered entries not yet confirmed by the broker, each stream in seq
    order (older epochs first). Not in id order: the sequencer numbers
    entries as their commits become visible, so an entry written first can
    get the later seq; sent in id order, the other node would see a gap,
    and every resend would send the same gap again."""
    return list(connection.execute(
        select(OUTBOX).where(OUTBOX.c.sent_at.is_(None), OUTBOX.c.seq.is_not(None))
        .order_by(OUTBOX.c.origin, OUTBOX.c.epoch, OUTBOX.c.seq).limit(limit)
    ))


def unsent_count(connection: Connection, numbered_only: bool = False) -> int:
    """Entries not yet confirmed by the broker (with those not numbered
    yet, unless ``numbered_only``)."""
    stmt = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at.is_(None))
    if numbered_only:
        stmt = stmt.where(OUTBOX.c.seq.is_not(None))
    return connection.execute(stmt).scalar_one()


def mark_sent(connection: Connection, ids: list[int]) -> None:
    if ids:
        connection.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(sent_at=utcnow()))


class ResendImpossible(LookupError):
    """The outbox no longer holds the entries asked for."""


def resend_from(connection: Connection, origin: str, epoch: int, seq: int) -> int:
    """Queue the stream's entries from ``seq`` on to be published again;
    returns how many. Raises ResendImpossible when ``seq`` was pruned."""
    first = connection.execute(
        select(func.min(OUTBOX.c.seq)).where(OUTBOX.c.origin == origin, OUTBOX.c.epoch == epoch)
    ).scalar()
    last = connection.execute(
        select(func.max(OUTBOX.c.seq)).where(OUTBOX.c.origin == origin, OUTBOX.c.epoch == epoch)
    ).scalar()
    if last is None or seq > last:
        return 0
    if first is None or first > seq:
        raise ResendImpossible(
            f"the outbox starts at seq {first} of this stream; seq {seq} is gone: a full resync is needed"
        )
    result = connection.execute(
        update(OUTBOX)
        .where(OUTBOX.c.origin == origin, OUTBOX.c.epoch == epoch, OUTBOX.c.seq >= seq)
        .values(sent_at=None)
    )
    return result.rowcount


def prune(connection: Connection, peer_applied: dict[tuple[str, int], int], *,
          keep_days: float = 7.0, keep_rows: int = 100_000) -> int:
    """Retention: delete outbox entries the peer has applied (per its last
    reported vector) that are older than ``keep_days`` or beyond the newest
    ``keep_rows``. Entries the peer may still need are never deleted.
    Returns how many were deleted."""
    import datetime as dt

    newest = connection.execute(select(func.max(OUTBOX.c.id))).scalar() or 0
    cutoff = utcnow() - dt.timedelta(days=keep_days)
    deleted = 0
    for (origin, epoch), seq in peer_applied.items():
        result = connection.execute(
            OUTBOX.delete().where(
                OUTBOX.c.origin == origin, OUTBOX.c.epoch == epoch, OUTBOX.c.seq <= seq,
                OUTBOX.c.sent_at.is_not(None),
                (OUTBOX.c.created_at < cutoff) | (OUTBOX.c.id <= newest - keep_rows),
            )
        )
        deleted += result.rowcount
    return deleted


def provenance(connection: Connection, table: str, ids: list[str], scan: int = 20000) -> dict:
    """For each id, the newest change of this node's own outbox that wrote
    it: when, who, which stream. Rows not found were last written before the
    entries kept, or by the other node."""
    wanted = set(ids)
    found = {}
    rows = connection.execute(select(OUTBOX).order_by(OUTBOX.c.id.desc()).limit(scan))
    for entry in rows:
        if not wanted - set(found):
            break
        for change in json.loads(entry.changes):
            if change["table"] == table and change["pk"] in wanted and change["pk"] not in found:
                found[change["pk"]] = {"at": entry.created_at.isoformat() + "Z", "actor": entry.actor,
                                       "origin": entry.origin, "epoch": entry.epoch, "seq": entry.seq,
                                       "op": change["op"]}
    return found
