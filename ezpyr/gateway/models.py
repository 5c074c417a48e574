"""The gateway key pair (one per cluster, used to log in to target servers;
replicated) and the gateway shell's sessions (node-local)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, Replicated, Timestamp, new_uuid, utcnow


class GatewayKey(Replicated, Base):
    __tablename__ = "gateway_keys"

    public_key: Mapped[str] = mapped_column(Text)  # OpenSSH one-line form
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class GatewaySession(Base):
    """One session of the gateway shell on this node (node-local: logs stay
    where the session ran). ``ended_at`` is empty while it is live."""

    __tablename__ = "gateway_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    username: Mapped[str] = mapped_column(String(32), index=True)
    client_address: Mapped[str] = mapped_column(String(100), default="")
    server_name: Mapped[str] = mapped_column(String(100), index=True)
    server_address: Mapped[str] = mapped_column(String(300), default="")  # user@host:port
    command: Mapped[str] = mapped_column(Text, default="")  # empty: an interactive shell
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)  # from the user
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)  # to the user
    exit_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    guard_refusals: Mapped[int] = mapped_column(Integer, default=0)
    recording: Mapped[str] = mapped_column(String(255), default="")  # file name in the log directory
    end_reason: Mapped[str] = mapped_column(String(255), default="")
    terminate_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def live(self) -> bool:
        return self.ended_at is None
