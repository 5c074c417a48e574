"""Replication bookkeeping (node-local, never replicated itself).

* ``outbox``: every committed change to replicated tables made on this node,
  one row per transaction, numbered gap-free within its stream
  (origin node, epoch). It is also the log that resends come from.
* ``version_vector``: for every stream this node's database contains, the
  highest seq it holds. This node's own current stream is advanced in the
  same transaction as the change; a peer's stream when its change is applied.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, LongText, Timestamp, utcnow


class OutboxEntry(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("origin", "epoch", "seq", name="uq_outbox_stream_seq"),
        # what is unsent, already in stream order: the relay reads its next
        # entries without sorting, and without walking the sent ones
        Index("ix_outbox_unsent", "sent_at", "origin", "epoch", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(36))
    epoch: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None until sequenced
    changes: Mapped[str] = mapped_column(LongText)  # JSON list of row changes
    # the origin's version vector when it made the change ({"origin:epoch": seq}):
    # a node that holds something the origin did not know has a conflict
    context: Mapped[str] = mapped_column(LongText, default="{}")
    actor: Mapped[str] = mapped_column(String(64), default="")
    schema_revision: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)


class VersionVectorEntry(Base):
    __tablename__ = "version_vector"

    origin: Mapped[str] = mapped_column(String(36), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class RefusedChange(Base):
    """A broker message the applier refused (unsigned, forged, re-labelled,
    malformed): kept out of the database and rejected on the broker, and
    recorded here. Only what identifies it is kept (what it claimed to be,
    its size and digest), never its content. The newest REFUSALS_KEPT rows
    are kept; ``id`` only grows, so the newest id counts every refusal."""

    __tablename__ = "refused_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    refused_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    reason: Mapped[str] = mapped_column(String(32))  # a messages.Refusal value
    detail: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64), default="")  # SHA-256 of the body
