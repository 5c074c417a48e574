"""Panel-wide settings, one row per setting (replicated)."""
from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, Replicated


class Setting(Replicated, Base):
    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    value: Mapped[str] = mapped_column(Text)
