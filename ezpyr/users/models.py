"""Users, user groups and users' SSH public keys (replicated)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ezpyr.meta import Base, Replicated, Timestamp, utcnow

ROLES = ("admin", "user")


class UserGroup(Replicated, Base):
    __tablename__ = "user_groups"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    users: Mapped[list["User"]] = relationship(back_populates="group")


class User(Replicated, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[str] = mapped_column(String(16), default="user")
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("user_groups.id"), nullable=True, index=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    # Changes whenever the password changes or the account is suspended:
    # sessions carry it and die when it no longer matches.
    auth_stamp: Mapped[str] = mapped_column(String(36))
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # encrypted
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    group: Mapped[UserGroup | None] = relationship(back_populates="users")
    keys: Mapped[list["UserKey"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserKey.created_at"
    )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class UserKey(Replicated, Base):
    """An SSH public key a user logs in to the gateway with."""

    __tablename__ = "user_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    key_type: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)  # "type base64" without comment
    fingerprint: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    user: Mapped[User] = relationship(back_populates="keys")
