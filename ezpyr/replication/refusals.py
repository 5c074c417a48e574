"""Broker messages the applier refused, as the status page, the log and
metrics see them.

A refused message (unsigned, forged, re-labelled, malformed) never reaches
the database. It is *rejected* on the broker without requeueing (RabbitMQ
drops it: the queues have no dead-letter exchange, and a forged message is
not worth keeping), and recorded here by what identifies it, never by its
content. A genuine message refused by mistake (a secret that differs
between the nodes) is not lost: it is still in its origin's outbox, and the
next message's gap makes the applier ask for it again once the secrets agree.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from ezpyr.meta import utcnow
from ezpyr.replication.messages import Refusal
from ezpyr.replication.models import RefusedChange

REFUSED = RefusedChange.__table__
REFUSALS_KEPT = 1000


def record_refusal(connection: Connection, reason: Refusal, detail: str, body: bytes) -> int:
    """Record one refused message; returns the count of refusals ever."""
    result = connection.execute(insert(REFUSED).values(
        refused_at=utcnow(), reason=reason.value, detail=detail[:500], size=len(body),
        digest=hashlib.sha256(body).hexdigest()))
    newest = result.inserted_primary_key[0]
    if newest % 100 == 0:  # now and then: keep the newest REFUSALS_KEPT
        connection.execute(REFUSED.delete().where(REFUSED.c.id <= newest - REFUSALS_KEPT))
    return newest


@dataclass
class RefusalSummary:
    total: int  # every refusal since the node was set up (a counter: only grows)
    last_at: dt.datetime | None
    last_reason: str
    last_detail: str

    def as_dict(self) -> dict:
        return {"total": self.total, "last_at": self.last_at.isoformat() + "Z" if self.last_at else None,
                "last_reason": self.last_reason, "last_detail": self.last_detail}

    @property
    def words(self) -> str:
        if not self.total:
            return ""
        try:
            why = Refusal(self.last_reason).words
        except ValueError:
            why = self.last_reason
        return (f"{self.total} change message{'s' if self.total != 1 else ''} refused and kept out of "
                f"this node's database; the last at {self.last_at:%Y-%m-%d %H:%M:%S} UTC: {why}")


def refusal_summary(connection: Connection) -> RefusalSummary:
    newest = connection.execute(select(func.max(REFUSED.c.id))).scalar()
    if newest is None:
        return RefusalSummary(0, None, "", "")
    last = connection.execute(select(REFUSED).where(REFUSED.c.id == newest)).one()
    return RefusalSummary(newest, last.refused_at, last.reason, last.detail)
