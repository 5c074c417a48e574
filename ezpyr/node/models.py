"""This node's own identity (node-local, never replicated)."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, Timestamp, new_uuid, utcnow


class Role(enum.StrEnum):
    """What a node is in its cluster."""

    STANDALONE = "standalone"  # master with no other node
    MASTER = "master"
    SLAVE = "slave"
    SECONDARY = "secondary"  # installed with --secondary, awaiting Add
    DEMOTING = "demoting"  # a master handing over in a graceful switchover


class NodeIdentity(Base):
    """Exactly one row: who this node is."""

    __tablename__ = "node_identity"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(32), default=Role.STANDALONE)
    epoch: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
