"""Long work (Verify, Add, Resolve) recorded as jobs: node-local."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, LongText, Timestamp, new_uuid, utcnow


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued running done failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(LongText, default="")  # JSON
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        return int(100 * self.done / self.total) if self.total else 0
