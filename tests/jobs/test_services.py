"""Jobs: one holder per lock (whichever process asks), a job whose process
died is found interrupted by whoever looks next, and building the app
writes nothing to the database."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select

from ezpyr.jobs.models import Job, JobState
from ezpyr.jobs import services
from ezpyr.jobs.services import JobBusy, JobService, run_job, start_job_thread, this_process, wait_for
from ezpyr.validation import Invalid
from tests.conftest import app_settings


def dead_owner() -> str:
    """The owner of a process that has ended (a real one, waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host, _, _ = this_process().split(":")
    return f"{host}:{child.pid}:"


def test_a_held_lock_refuses_a_second_job_and_names_the_first(dbsession):
    jobs = JobService(dbsession)
    first = jobs.create("add", "alice", "add the secondary at 127.0.0.1:6544", lock="cluster-change")
    dbsession.commit()
    with pytest.raises(JobBusy, match=r"Add is already running on this node \(started by alice at") as refused:
        jobs.create("make-master", "cli", lock="cluster-change")
    assert refused.value.holder.id == first.id
    assert isinstance(refused.value, Invalid)
    jobs.create("verify", "cli", lock="cluster-verify")  # another lock is free


def test_the_database_refuses_a_second_holder_that_passed_the_check(dbsession, engine, monkeypatch):
    """Two processes that both checked before either committed: the unique
    lock column refuses the second one."""
    JobService(dbsession).create("add", "alice", lock="cluster-change")
    dbsession.commit()
    monkeypatch.setattr(JobService, "holding", lambda self, lock: None)  # as if it checked first
    from ezpyr.database import make_session_factory
    other = make_session_factory(engine)()
    try:
        with pytest.raises(JobBusy, match="started at the same moment"):
            JobService(other).create("add", "cli", lock="cluster-change")
    finally:
        other.rollback()
        other.close()


def test_a_job_whose_process_died_is_failed_and_frees_its_lock(dbsession):
    dbsession.add(Job(kind="add", state=JobState.RUNNING, lock="cluster-change", owner=dead_owner()))
    dbsession.commit()
    jobs = JobService(dbsession)
    assert jobs.holding("cluster-change") is None
    job = dbsession.scalars(select(Job)).one()
    assert job.state == JobState.FAILED and job.lock is None and "interrupted" in job.error
    jobs.create("add", "alice", lock="cluster-change")  # free again


def test_a_live_job_of_another_process_is_left_alone(dbsession):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = this_process().split(":")[0]
        dbsession.add(Job(kind="add", state=JobState.RUNNING, lock="cluster-change",
                          owner=f"{host}:{live.pid}:"))
        dbsession.commit()
        assert JobService(dbsession).holding("cluster-change") is not None
    finally:
        live.kill()
        live.wait()
    assert JobService(dbsession).holding("cluster-change") is None


def test_a_refusal_is_recorded_as_one_and_the_lock_is_freed(dbsession, engine):
    jobs = JobService(dbsession)
    refused = jobs.create("add", "alice", lock="cluster-change")
    dbsession.commit()

    def work(progress):
        progress(1, 4, "rows copied to the secondary: 1 of 4")
        raise Invalid("The secondary refused the setup key.")

    run_job(engine, refused.id, work)
    job = wait_for(engine, refused.id)
    assert job.state == JobState.FAILED and job.refused and job.lock is None
    assert job.error == "The secondary refused the setup key."
    done = jobs.create("add", "alice", lock="cluster-change")
    dbsession.commit()
    run_job(engine, done.id, lambda progress: {"rows": 4})
    seen = []
    job = wait_for(engine, done.id, seen.append)
    assert job.state == JobState.DONE and not job.refused and json.loads(job.result) == {"rows": 4}
    assert seen[-1].percent == 100


def test_following_a_job_of_this_process_wakes_when_it_ends(dbsession, engine):
    """A command that follows its own job (ezpyr-cluster add, verify) returns
    when the job ends, not at its next look (an hour here)."""
    job = JobService(dbsession).create("verify", "cli", lock="cluster-verify")
    dbsession.commit()
    gate, looked, followed = threading.Event(), threading.Event(), []
    start_job_thread(engine, job.id, lambda progress: gate.wait(60) and {"rows": 4})
    follower = threading.Thread(target=lambda: followed.append(
        wait_for(engine, job.id, lambda seen: looked.set(), interval=3600)))
    follower.start()
    assert looked.wait(60)  # its first look found the job unfinished
    gate.set()
    follower.join(60)
    assert not follower.is_alive() and followed[0].state == JobState.DONE
    assert job.id not in services._ending  # nothing kept once it ended


def test_time_left_is_told_from_the_pace_so_far():
    import datetime as dt
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    job = Job(kind="add", state=JobState.RUNNING, started_at=start, done=250, total=1000)
    assert job.seconds_left(start + dt.timedelta(seconds=10)) == 30
    assert Job(kind="add", state=JobState.RUNNING, started_at=start, done=0, total=1000).seconds_left() is None


def test_building_the_app_in_another_process_leaves_a_running_job_alone(dbsession, database_url):
    """The panel's configuration writes nothing: a second panel (or any
    process building the app) starting while a job runs does not fail it."""
    jobs = JobService(dbsession)
    job = jobs.create("add", "alice", lock="cluster-change")
    job.state = JobState.RUNNING
    dbsession.commit()
    settings = app_settings(database_url)
    del settings["ezpyr.testing"]
    built = subprocess.run([sys.executable, "-c", "import json, sys; from ezpyr import main; "
                            "main({}, **json.loads(sys.argv[1])); print('built')", json.dumps(settings)],
                           capture_output=True, text=True, timeout=120)
    assert built.stdout.strip() == "built", built.stderr
    dbsession.expire_all()
    assert dbsession.get(Job, job.id).state == JobState.RUNNING
    assert JobService(dbsession).holding("cluster-change").id == job.id
