"""Long work (Verify, Add, Make master, Resolve, a CSV import of servers)
recorded as jobs: node-local."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from ezpyr.meta import Base, LongText, Timestamp, new_uuid, utcnow


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


ACTIVE = (JobState.QUEUED, JobState.RUNNING)

# what each kind of job is called on its page, in the CLI and in refusals
TITLES = {"verify": "Verify", "add": "Add", "make-master": "Make master",
          "resolve": "Resolve the split-brain", "servers-import": "Import servers"}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(LongText, default="")  # JSON
    error: Mapped[str] = mapped_column(Text, default="")
    # the error is a refusal (bad input, a precondition the other node
    # checked): nothing was changed
    refused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, nullable=True)
    # held while the job is queued or running: no second job with the same
    # lock can be created (the database refuses it), whichever process asks
    lock: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    # the process that runs it (host:pid:start), so that a job whose
    # process died is seen as interrupted by whoever looks next
    owner: Mapped[str] = mapped_column(String(128), default="", server_default="")

    @property
    def title(self) -> str:
        return TITLES.get(self.kind, self.kind)

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED)

    @property
    def percent(self) -> int:
        if self.state == JobState.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    def seconds_left(self, now: dt.datetime | None = None) -> int | None:
        """Time left at the pace so far; None before there is a pace."""
        if self.finished or self.started_at is None or not self.total or self.done <= 0:
            return None
        elapsed = ((now or utcnow()) - self.started_at).total_seconds()
        return max(0, int(elapsed * (self.total - self.done) / self.done))

    @property
    def time_left(self) -> str:
        """"about 2 min left", or "" while it cannot be told."""
        left = self.seconds_left()
        if left is None:
            return ""
        if left < 60:
            return f"about {left} s left"
        if left < 3600:
            return f"about {round(left / 60)} min left"
        return f"about {left // 3600} h {left % 3600 // 60} min left"


class JobInput(Base):
    """What a job works on that its request or command handed over (the
    uploaded CSV file of an import), in parts, while the job is queued:
    the job takes it when it starts, and what a job never took goes when
    it ends. Encrypted with the node's secret key by whoever stores it
    (an import file may hold server passwords)."""

    __tablename__ = "job_inputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(LongText)
