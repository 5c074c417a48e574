"""Running a job in a thread owned by this node's panel (or a CLI), with
its progress recorded for the page that polls it."""
from __future__ import annotations

import json
import logging
import threading
import traceback
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ezpyr.jobs.models import Job
from ezpyr.meta import utcnow

log = logging.getLogger(__name__)
JOBS = Job.__table__


class Progress:
    """Handed to the job's function: report how far it got."""

    def __init__(self, engine, job_id: str):
        self.engine = engine
        self.job_id = job_id

    def __call__(self, done: int, total: int, message: str | None = None) -> None:
        values = {"done": done, "total": total}
        if message is not None:
            values["message"] = message
        with self.engine.begin() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == self.job_id).values(**values))


class JobService:
    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def create(self, kind: str, created_by: str = "", message: str = "") -> Job:
        job = Job(kind=kind, created_by=created_by, message=message)
        self.dbsession.add(job)
        self.dbsession.flush()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.dbsession.get(Job, job_id)

    def latest(self, kind: str) -> Job | None:
        return self.dbsession.scalars(
            select(Job).where(Job.kind == kind).order_by(Job.created_at.desc())).first()

    def running(self, kind: str) -> Job | None:
        return self.dbsession.scalars(
            select(Job).where(Job.kind == kind, Job.state.in_(("queued", "running")))).first()


def run_job(engine, job_id: str, work: Callable[[Progress], dict]) -> None:
    """Run ``work`` and record its outcome. ``work`` undoes its own partial
    effects when it fails (it runs its changes in transactions)."""
    with engine.begin() as conn:
        conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(state="running"))
    try:
        result = work(Progress(engine, job_id))
    except Exception as error:  # noqa: BLE001 - recorded for the admin to read
        log.warning("job %s failed: %s\n%s", job_id, error, traceback.format_exc())
        with engine.begin() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(
                state="failed", error=str(error) or error.__class__.__name__, finished_at=utcnow()))
        return
    with engine.begin() as conn:
        conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(
            state="done", result=json.dumps(result or {}), finished_at=utcnow()))


def start_job_thread(engine, job_id: str, work: Callable[[Progress], dict]) -> threading.Thread:
    thread = threading.Thread(target=run_job, args=(engine, job_id, work),
                              name=f"job-{job_id[:8]}", daemon=True)
    thread.start()
    return thread


def after_commit_start(request, job_id: str, work) -> None:
    """Start the job once the request that created it has committed."""
    engine = request.registry["db_engine"]

    def hook(success: bool):
        if success:
            start_job_thread(engine, job_id, work)

    request.tm.get().addAfterCommitHook(hook)


def fail_interrupted_jobs(engine) -> None:
    """At panel start: jobs the previous panel process left running died with it."""
    try:
        with engine.begin() as conn:
            conn.execute(update(JOBS).where(JOBS.c.state.in_(("queued", "running")))
                         .values(state="failed", finished_at=utcnow(),
                                 error="interrupted: the panel process running it stopped"))
    except Exception as error:  # noqa: BLE001 - a database not initialised yet
        log.info("could not check for interrupted jobs: %s", error)
