"""The JSON shapes of jobs (Verify, Add, Make master, Resolve, Reconcile):
written by the API and described in the OpenAPI document."""
from __future__ import annotations

import json

from pydantic import BaseModel, Field

from ezpyr.api.schemas import UtcTime


class JobOut(BaseModel):
    id: str
    kind: str = Field(description="verify, add, make-master, resolve, accounts.reconcile or servers-import")
    title: str
    state: str = Field(description="queued, running, done or failed")
    done: int
    total: int
    percent: int
    message: str
    seconds_left: int | None = Field(description="at the pace so far; null while it cannot be told")
    refused: bool = Field(description="the job failed on a refusal (a precondition): nothing was changed")
    error: str
    result: dict | None = Field(description="what the job found or did, once done (a Verify: every table, "
                                            "in sync or the rows that differ)")
    created_by: str
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None

    @classmethod
    def of(cls, job) -> dict:
        """``job`` as JSON data."""
        return cls(id=job.id, kind=job.kind, title=job.title, state=job.state, done=job.done,
                   total=job.total, percent=job.percent, message=job.message,
                   seconds_left=job.seconds_left(), refused=job.refused, error=job.error,
                   result=json.loads(job.result) if job.result else None, created_by=job.created_by,
                   created_at=job.created_at, started_at=job.started_at,
                   finished_at=job.finished_at).model_dump(mode="json")


class JobStartedOut(BaseModel):
    """A job an action started (or the running one it follows): read it at
    ``location`` until its state is done or failed."""

    job: JobOut
    location: str = Field(description="the job's API path, also in the Location header")
