"""The gateway key pair: one per cluster, used to log in to target servers."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, Replicated, Timestamp, utcnow


class GatewayKey(Replicated, Base):
    __tablename__ = "gateway_keys"

    public_key: Mapped[str] = mapped_column(Text)  # OpenSSH one-line form
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
