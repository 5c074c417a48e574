"""API tokens (replicated: a token made on the master works on both nodes).
Only a hash of the secret is stored; the secret is shown once."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ezpyr.meta import Base, Replicated, Timestamp, utcnow


class ApiToken(Replicated, Base):
    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the secret (hex): the secret has 256 bits of randomness, so a
    # fast hash is enough, and every API call can check it cheaply
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists, to recognise a token
    read_only: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)

    owner = relationship("User")

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())
