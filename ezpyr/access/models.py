"""Access rules: who (a user group or one user) may reach what (a server
group or one server). Replicated."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ezpyr.meta import Base, Replicated, Timestamp, utcnow
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.users.models import User, UserGroup


class AccessRule(Replicated, Base):
    __tablename__ = "access_rules"
    __table_args__ = (
        CheckConstraint(
            "(user_group_id IS NULL) <> (user_id IS NULL)", name="one_subject"
        ),
        CheckConstraint(
            "(server_group_id IS NULL) <> (server_id IS NULL)", name="one_target"
        ),
    )

    user_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("user_groups.id"), nullable=True, index=True
    )
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    server_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("server_groups.id"), nullable=True, index=True
    )
    server_id: Mapped[str | None] = mapped_column(
        ForeignKey("servers.id"), nullable=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    user_group: Mapped[UserGroup | None] = relationship()
    user: Mapped[User | None] = relationship()
    server_group: Mapped[ServerGroup | None] = relationship()
    server: Mapped[Server | None] = relationship()

    @property
    def subject_label(self) -> str:
        if self.user_group is not None:
            return f"user group {self.user_group.name}"
        return f"user {self.user.username}"

    @property
    def target_label(self) -> str:
        if self.server_group is not None:
            return f"server group {self.server_group.name}"
        return f"server {self.server.name}"
