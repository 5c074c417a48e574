"""System accounts' bookkeeping (node-local, never replicated): the account
tasks waiting for each node, and each node's pinned SSH host key."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, Timestamp, utcnow

TARGETS = ("this", "other")


class AccountTask(Base):
    """One request for the account agent of one node, applied in id order.
    ``waiting`` until applied (then deleted), or ``failed`` when the agent
    refused it (the error says why)."""

    __tablename__ = "account_tasks"
    __table_args__ = (Index("ix_account_tasks_target_state_id", "target", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(8))  # this | other
    username: Mapped[str] = mapped_column(String(32), index=True)
    request: Mapped[str] = mapped_column(Text)  # JSON
    state: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class PinnedHostKey(Base):
    """A node's SSH host key fingerprint, pinned on first use. ``presented``
    is the different one it showed last, if any (the Reset page shows both)."""

    __tablename__ = "pinned_host_keys"

    target: Mapped[str] = mapped_column(String(8), primary_key=True)  # this | other
    address: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(100))
    presented: Mapped[str] = mapped_column(String(100), default="")
    pinned_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    presented_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
