"""Sign-in bookkeeping (node-local: a slave keeps its own)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, Timestamp


class EndedSession(Base):
    """A signed-out session: its cookie must not sign anyone in again. Kept
    until the session would have expired anyway."""

    __tablename__ = "ended_sessions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[dt.datetime] = mapped_column(Timestamp, index=True)


class TotpLastStep(Base):
    """The time step of the last TOTP code each user signed in with here, so
    that a code works once."""

    __tablename__ = "totp_last_steps"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    step: Mapped[int] = mapped_column(Integer)


class LoginThrottle(Base):
    """Failed sign-ins counted under one key in a window of
    ``lockout_minutes`` (node-local). Keys: ``pair:<username>|<address>``,
    ``address:<address>``, ``account:<username>``, ``all``. See
    :mod:`ezpyr.auth.throttle`."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[dt.datetime] = mapped_column(Timestamp)
