"""Command guard rules: per user group, patterns of commands the gateway
shell refuses. Replicated."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ezpyr.meta import Base, Replicated, Timestamp, utcnow
from ezpyr.users.models import UserGroup


class CommandRule(Replicated, Base):
    __tablename__ = "command_rules"

    user_group_id: Mapped[str] = mapped_column(ForeignKey("user_groups.id"), index=True)
    pattern: Mapped[str] = mapped_column(String(500))  # a Python regular expression
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    user_group: Mapped[UserGroup] = relationship()
