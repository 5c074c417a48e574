"""Running a job in a thread of the process that created it (the panel,
or an ``ezpyr-cluster`` command), with its progress recorded in the jobs
table for the page that polls it and the terminal that draws it."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ezpyr.jobs.models import ACTIVE, Job, JobState
from ezpyr.meta import utcnow
from ezpyr.validation import Invalid

log = logging.getLogger(__name__)
JOBS = Job.__table__


# -- which process runs a job ---------------------------------------------------

def _start_ticks(pid: int) -> str:
    """When the process started (Linux: field 22 of /proc/PID/stat), so that a
    reused pid is not taken for the process that died; "" elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def this_process() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def process_alive(owner: str) -> bool:
    """Whether the process named by ``owner`` still runs. A process on
    another host cannot be looked at: it is taken to run."""
    host, _, rest = owner.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not ticks or _start_ticks(int(pid)) in ("", ticks)


# -- the jobs table ---------------------------------------------------------------

class JobBusy(Invalid):
    """A job holding the same lock is queued or running."""

    def __init__(self, holder: Job | None):
        if holder is None:
            message = "Another cluster action started at the same moment; wait for it to finish."
        else:
            message = (f"{holder.title} is already running on this node (started by "
                       f"{holder.created_by or 'someone'} at {holder.created_at:%H:%M:%S} UTC, job "
                       f"{holder.id[:8]}): wait for it to finish, then try again.")
        super().__init__(message)
        self.holder = holder


class JobService:
    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def create(self, kind: str, created_by: str = "", message: str = "", *,
               lock: str | None = None) -> Job:
        """A new queued job, owned by this process. With ``lock``, refused
        (JobBusy) while another job holds it: the unique lock column makes
        that hold for two processes asking at the same moment too."""
        if lock is not None:
            holder = self.holding(lock)
            if holder is not None:
                raise JobBusy(holder)
        job = Job(kind=kind, created_by=created_by, message=message, lock=lock, owner=this_process())
        self.dbsession.add(job)
        try:
            self.dbsession.flush()
        except IntegrityError:
            raise JobBusy(None) from None
        return job

    def get(self, job_id: str) -> Job | None:
        self.reap()
        return self.dbsession.get(Job, job_id)

    def latest(self, kind: str) -> Job | None:
        return self.dbsession.scalars(
            select(Job).where(Job.kind == kind).order_by(Job.created_at.desc())).first()

    def running(self, kind: str) -> Job | None:
        self.reap()
        return self.dbsession.scalars(select(Job).where(Job.kind == kind, Job.state.in_(ACTIVE))).first()

    def holding(self, lock: str) -> Job | None:
        self.reap()
        return self.dbsession.scalars(select(Job).where(Job.lock == lock)).first()

    def reap(self) -> int:
        """Jobs whose process died (a panel restarted, a CLI killed) failed:
        record it and free their lock. Returns how many."""
        dead = [job for job in self.dbsession.scalars(select(Job).where(Job.state.in_(ACTIVE)))
                if not process_alive(job.owner)]
        for job in dead:
            job.state, job.lock, job.finished_at = JobState.FAILED, None, utcnow()
            job.error = "interrupted: the process running it stopped"
        if dead:
            self.dbsession.flush()
        return len(dead)


# -- running one ----------------------------------------------------------------------

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


Work = Callable[[Progress], dict]


def run_job(engine, job_id: str, work: Work) -> None:
    """Run ``work`` and record its outcome. ``work`` undoes its own partial
    effects when it fails (it runs its changes in transactions)."""
    with engine.begin() as conn:
        conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(
            state=JobState.RUNNING, started_at=utcnow()))
    try:
        result = work(Progress(engine, job_id))
    except Invalid as error:
        outcome = {"state": JobState.FAILED, "error": error.message, "refused": True}
    except Exception as error:  # noqa: BLE001 - recorded for the admin to read
        log.warning("job %s failed: %s\n%s", job_id, error, traceback.format_exc())
        outcome = {"state": JobState.FAILED, "error": str(error) or error.__class__.__name__}
    else:
        outcome = {"state": JobState.DONE, "result": json.dumps(result or {})}
    with engine.begin() as conn:
        conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(
            **outcome, lock=None, finished_at=utcnow()))


def start_job_thread(engine, job_id: str, work: Work) -> threading.Thread:
    thread = threading.Thread(target=run_job, args=(engine, job_id, work),
                              name=f"job-{job_id[:8]}", daemon=True)
    thread.start()
    return thread


def start_after_commit(dbsession: Session, job_id: str, work: Work) -> None:
    """Start the job once the transaction that created it has committed
    (the request's, or a command's); never if it rolls back."""
    engine = dbsession.get_bind()

    def committed(_session):
        start_job_thread(engine, job_id, work)

    event.listen(dbsession, "after_commit", committed, once=True)


@dataclass
class Launch:
    """A job an action created (or the running one it follows). ``work`` is
    None when the job was already running: there is nothing to start."""

    job: Job
    work: Work | None = None

    def start_after_commit(self, dbsession: Session) -> None:
        if self.work is not None:
            start_after_commit(dbsession, self.job.id, self.work)


def wait_for(engine, job_id: str, show: Callable[[Job], None] | None = None,
             interval: float = 0.2) -> Job:
    """Follow a job (run by this process or another) until it ends."""
    while True:
        with Session(engine, expire_on_commit=False) as session:
            JobService(session).reap()
            job = session.get(Job, job_id)
            session.commit()
        if show is not None:
            show(job)
        if job.finished:
            return job
        time.sleep(interval)
