"""Running a job in a thread of the process that created it (the panel,
or an ``ezpyr-cluster`` / ``ezpyr-admin`` command), with its progress
recorded in the jobs table for the page that polls it and the terminal that
draws it."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ezpyr.jobs.models import ACTIVE, Job, JobInput, JobState
from ezpyr.meta import utcnow
from ezpyr.validation import Invalid

log = logging.getLogger(__name__)
JOBS = Job.__table__
INPUTS = JobInput.__table__
# The jobs this process runs, until each has recorded its outcome: what
# wait_for wakes on, so that a command following its own job (ezpyr-cluster
# add, verify …) returns when the job ends, not at its next look.
_ending: dict[str, threading.Event] = {}


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

    def __init__(self, holder: Job | None, what: str = "cluster action"):
        if holder is None:
            message = f"Another {what} started at the same moment; wait for it to finish."
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
               lock: str | None = None, what: str = "cluster action") -> Job:
        """A new queued job, owned by this process. With ``lock``, refused
        (JobBusy) while another job holds it: the unique lock column makes
        that hold for two processes asking at the same moment too (``what``
        names the other one then)."""
        if lock is not None:
            holder = self.holding(lock)
            if holder is not None:
                raise JobBusy(holder)
        job = Job(kind=kind, created_by=created_by, message=message, lock=lock, owner=this_process())
        self.dbsession.add(job)
        try:
            self.dbsession.flush()
        except IntegrityError:
            raise JobBusy(None, what) from None
        return job

    def keep_input(self, job: Job, parts: Iterable[str]) -> None:
        """Hand ``parts`` (text, in order) to the job, in the transaction
        that creates it: the job finds them with :func:`take_input`."""
        for number, part in enumerate(parts):
            self.dbsession.add(JobInput(job_id=job.id, part=number, data=part))
        self.dbsession.flush()

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
            self.dbsession.execute(delete(JobInput).where(JobInput.job_id.in_([job.id for job in dead])))
            self.dbsession.flush()
        return len(dead)


def take_input(engine, job_id: str) -> list[str]:
    """The parts handed to the job (:meth:`JobService.keep_input`), removed
    from the database as they are read (one transaction): a job takes its
    input once, when it starts."""
    with engine.begin() as conn:
        parts = list(conn.execute(select(INPUTS.c.data).where(INPUTS.c.job_id == job_id)
                                  .order_by(INPUTS.c.part)).scalars())
        conn.execute(delete(INPUTS).where(INPUTS.c.job_id == job_id))
    return parts


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


class JobRefused(Invalid):
    """A refusal whose details the job's page and command show beside the
    message (the rows of a file in error): kept as the job's result."""

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = details


def run_job(engine, job_id: str, work: Work) -> None:
    """Run ``work`` and record its outcome. ``work`` undoes its own partial
    effects when it fails (it runs its changes in transactions)."""
    try:
        _run_job(engine, job_id, work)
    finally:
        ended = _ending.pop(job_id, None)
        if ended is not None:
            ended.set()


def _run_job(engine, job_id: str, work: Work) -> None:
    with engine.begin() as conn:
        conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(
            state=JobState.RUNNING, started_at=utcnow()))
    try:
        result = work(Progress(engine, job_id))
    except Invalid as error:
        outcome = {"state": JobState.FAILED, "error": error.message, "refused": True}
        if getattr(error, "details", None):
            outcome["result"] = json.dumps(error.details)
    except Exception as error:  # noqa: BLE001 - recorded for the admin to read
        log.warning("job %s failed: %s\n%s", job_id, error, traceback.format_exc())
        outcome = {"state": JobState.FAILED, "error": str(error) or error.__class__.__name__}
    else:
        outcome = {"state": JobState.DONE, "result": json.dumps(result or {})}
    with engine.begin() as conn:
        conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(
            **outcome, lock=None, finished_at=utcnow()))
        conn.execute(delete(INPUTS).where(INPUTS.c.job_id == job_id))  # what it never took


def start_job_thread(engine, job_id: str, work: Work) -> threading.Thread:
    _ending[job_id] = threading.Event()
    thread = threading.Thread(target=run_job, args=(engine, job_id, work),
                              name=f"job-{job_id[:8]}", daemon=True)
    thread.start()
    return thread


@dataclass
class Launch:
    """A job an action created (or the running one it follows). ``work`` is
    None when the job was already running: there is nothing to start."""

    job: Job
    work: Work | None = None

    def start_after_commit(self, dbsession: Session) -> None:
        if self.work is not None:
            start_after_commit(dbsession, self.job.id, self.work)


def start_after_commit(dbsession: Session, job_id: str, work: Work) -> None:
    """Start the job once the transaction that created it has committed
    (the request's, or a command's); never if it rolls back."""
    engine = dbsession.get_bind()

    def committed(_session):
        start_job_thread(engine, job_id, work)

    event.listen(dbsession, "after_commit", committed, once=True)


def wait_for(engine, job_id: str, show: Callable[[Job], None] | None = None,
             interval: float = 0.2) -> Job:
    """Follow a job (run by this process or another) until it ends: a look
    every ``interval`` seconds, and one as soon as a job of this process ends."""
    ended = _ending.get(job_id)
    while True:
        with Session(engine, expire_on_commit=False) as session:
            JobService(session).reap()
            job = session.get(Job, job_id)
            session.commit()
        if show is not None:
            show(job)
        if job.finished:
            return job
        if ended is None:
            time.sleep(interval)
        else:
            ended.wait(interval)
