"""Servers users reach through the gateway, and server groups (replicated)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ezpyr.meta import Base, Replicated, Timestamp, utcnow

AUTH_METHODS = ("key", "password")

# Server names are unique whatever their case. On MariaDB the column compares
# without case, so its unique index says so itself and finding a name in any
# case is one index seek (names are ASCII letters, digits, '.', '_', '-', for
# which this collation is exactly lower-casing).
CASELESS_NAME = "utf8mb4_general_ci"
ServerName = String(100).with_variant(mysql.VARCHAR(100, collation=CASELESS_NAME), "mysql", "mariadb")


class ServerGroup(Replicated, Base):
    __tablename__ = "server_groups"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    servers: Mapped[list["Server"]] = relationship(back_populates="group")


class Server(Replicated, Base):
    __tablename__ = "servers"

    name: Mapped[str] = mapped_column(ServerName, unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=22)
    remote_user: Mapped[str] = mapped_column(String(32), default="root")
    # "key": the gateway key pair; "password": password_encrypted below.
    auth_method: Mapped[str] = mapped_column(String(16), default="key")
    password_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("server_groups.id"), nullable=True, index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    # The server's SSH host key ("type base64"), pinned by the gateway on its
    # first connection; a different key is refused until an admin resets it.
    host_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    group: Mapped[ServerGroup | None] = relationship(back_populates="servers")
