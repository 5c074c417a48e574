"""The CSV import as a job: the page follows it to its outcome, thousands of
rows are all added or none, one import runs at a time, the servers added
are recorded for the other node, and a change made while the file was being
checked is caught, never half-imported."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, func, select

from ezpyr.activity.models import ActivityEntry
from ezpyr.jobs.models import Job, JobInput, JobState
from ezpyr.jobs.services import JobService, wait_for
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.capture import NodeIsReadOnly
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.rows import encode_row
from ezpyr.servers import imports
from ezpyr.servers.imports import Importer, add_servers, import_servers
from ezpyr.servers.models import Server
from ezpyr.servers.services import ServerInput, ServerService
from tests.servers.conftest import (HEADER, csv_rows, follow_import, imported, make_server, make_server_group,
                                    run_import, upload)

ROWS = 5000


def count(dbsession, model=Server) -> int:
    dbsession.commit()  # a fresh snapshot: what the job committed
    return dbsession.scalar(select(func.count()).select_from(model))


def outbox(dbsession) -> list[OutboxEntry]:
    dbsession.commit()
    return list(dbsession.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


@pytest.fixture
def node(dbsession):
    """This node's identity (a standalone node): with it, changes are recorded for the other node."""
    node = NodeIdentity(name="node-test", address="127.0.0.1:6543", role="standalone", epoch=2)
    dbsession.add(node)
    dbsession.commit()
    return node


class Recorder:
    """Stands for the job's Progress: what it was told, in order."""

    def __init__(self):
        self.calls = []

    def __call__(self, done, total, message=None):
        self.calls.append((done, total, message))

    def messages(self) -> list[str]:
        return [m for _, _, m in self.calls if m]


# -- the page -------------------------------------------------------------------------

def test_the_upload_leads_to_the_job_page_with_its_outcome(admin_app, dbsession, engine):
    make_server_group(dbsession, "bulk")
    res = upload(admin_app, HEADER + csv_rows(ROWS, group="bulk"), filename="fleet.csv")
    page = follow_import(admin_app, res)
    assert page.html.select_one("h1").get_text() == "Import servers"
    assert page.html.select_one("[data-field=verdict]").get_text(strip=True) == "5,000 servers added."
    assert page.html.select_one("progress")["value"] == "100"
    assert page.html.select_one("[data-state]")["data-state"] == "done"
    assert 'http-equiv="refresh"' not in page  # finished: the page stops reloading
    assert page.html.find("a", string="Back to the servers")
    assert count(dbsession) == ROWS
    job_id = res.location.rsplit("/", 1)[1]
    status = admin_app.get(f"/jobs/{job_id}.json").json
    assert (status["kind"], status["state"], status["percent"], status["result"]) == (
        "servers-import", "done", 100, {"added": ROWS, "rows": ROWS})
    job = dbsession.get(Job, job_id)
    assert job.created_by == "root_admin" and job.message == "5,000 servers added from fleet.csv" and job.lock is None
    assert dbsession.query(JobInput).count() == 0  # the file is not kept
    entry = dbsession.scalars(select(ActivityEntry).where(ActivityEntry.action == "server.import")).one()
    assert (entry.target, entry.username, entry.remote_addr) == ("5,000 servers", "root_admin", "192.0.2.10")
    assert entry.user_id is not None


def test_a_running_import_shows_a_progress_bar_that_reloads(admin_app, dbsession):
    job = JobService(dbsession).create("servers-import", "root_admin", "import fleet.csv", lock=imports.LOCK)
    job.state, job.started_at = JobState.RUNNING, utcnow()
    job.done, job.total, job.message = 3000, 10000, "rows checked: 3,000 of 5,000"
    dbsession.commit()
    page = admin_app.get(f"/jobs/{job.id}")
    assert page.html.select_one("progress")["value"] == "30"
    assert page.html.select_one("[data-field=job-message]").get_text() == "rows checked: 3,000 of 5,000"
    assert 'http-equiv="refresh"' in page
    form = admin_app.get("/servers/import")
    assert "see its progress" in form.html.select_one("[data-field=running]").get_text()


def test_progress_counts_rows_checked_then_servers_added(dbsession, secret_box, engine):
    content = HEADER + csv_rows(2500)
    job = JobService(dbsession).create("servers-import", "tester", "import x.csv")
    JobService(dbsession).keep_input(job, [secret_box.encrypt(content)])
    dbsession.commit()
    progress = Recorder()
    result = import_servers(engine, secret_box, job.id, "x.csv", "node-test",
                            Importer("tester", "", "tester"), progress)
    assert result == {"added": 2500, "rows": 2500}
    messages = progress.messages()
    checked = [m for m in messages if m.startswith("rows checked")]
    assert checked == ["rows checked: 1,000 of 2,500", "rows checked: 2,000 of 2,500", "rows checked: 2,500 of 2,500"]
    added = [m for m in messages if m.startswith("servers added")]
    if engine.dialect.name == "sqlite":
        assert added == []  # one writer at a time: nothing is written during the insert
    else:
        assert added == ["servers added: 1,000 of 2,500", "servers added: 2,000 of 2,500",
                         "servers added: 2,500 of 2,500"]
    assert "adding 2,500 servers" in messages and messages[-1] == "2,500 servers added from x.csv"
    percents = [int(100 * done / total) for done, total, _ in progress.calls if total > 1]
    assert percents == sorted(percents) and percents[-1] == 100
    assert max(d for d, t, m in progress.calls if m and m.startswith("rows checked")) == 2500  # half the bar
    assert dbsession.query(JobInput).count() == 0  # taken when the job started


# -- all or nothing ----------------------------------------------------------------------

def test_one_bad_row_at_the_end_of_5000_adds_nothing(admin_app, dbsession, node):
    before = outbox(dbsession)
    content = HEADER + csv_rows(ROWS - 1) + "last,10.255.255.255,22,root,key,nosuchgroup,\n"
    page = imported(admin_app, content)
    assert [li.get_text() for li in page.html.select(".import-errors li")] == [
        "line 5001: there is no server group named 'nosuchgroup'; create it first or leave the group empty."]
    assert page.html.select_one("[data-state]")["data-state"] == "failed"
    assert "1 error in servers.csv; nothing was imported. Fix them and import the file again." in page
    assert count(dbsession) == 0
    assert outbox(dbsession) == before
    assert dbsession.query(ActivityEntry).filter_by(action="server.import").count() == 0


def test_the_first_100_errors_are_shown_with_a_count(admin_app, dbsession):
    content = HEADER + csv_rows(200) + "".join(f"bad{i},h{i}.example.net,0,root,key,,\n" for i in range(150))
    page = imported(admin_app, content)
    shown = [li.get_text() for li in page.html.select(".import-errors li")]
    assert len(shown) == 100 and shown[0] == "line 202: port must be a number from 1 to 65535."
    assert page.html.select_one("[data-field=more-errors]").get_text() == "… and 50 more not shown."
    assert "150 errors in servers.csv" in page
    assert count(dbsession) == 0


def test_a_name_taken_while_the_file_was_checked_adds_nothing(dbsession, secret_box, engine, node):
    """Another admin adds WEB1 between the check and the insert: the insert is refused whole
    (MariaDB: the caseless unique index; SQLite: the check inside the import's transaction)."""
    service = ServerService(dbsession, secret_box)
    values = [service.validate(ServerInput(name=name, host="10.0.0.1")) for name in ("web0", "web1", "web2")]
    rows = [service.new_row(v, utcnow()) for v in values]
    make_server(dbsession, secret_box, "WEB1")
    before = outbox(dbsession)
    with pytest.raises(Exception, match="while the file was being checked.*nothing was imported") as refused:
        add_servers(engine, rows, Importer("tester", "", "tester"), "node-test", Recorder())
    assert refused.type.__name__ == "Invalid"
    assert sorted(s.name for s in dbsession.scalars(select(Server))) == ["WEB1"]
    assert outbox(dbsession) == before


def test_a_group_deleted_while_the_file_was_checked_adds_nothing(dbsession, secret_box, engine):
    group = make_server_group(dbsession, "web")
    service = ServerService(dbsession, secret_box)
    rows = [service.new_row(service.validate(ServerInput(name=f"w{i}", host="10.0.0.1", group_name="web")),
                            utcnow()) for i in range(3)]
    dbsession.delete(group)
    dbsession.commit()
    with pytest.raises(Exception, match="changed while the file was being checked"):
        add_servers(engine, rows, Importer("tester", "", "tester"), "node-test", Recorder())
    assert count(dbsession) == 0


def test_a_node_demoted_before_the_insert_adds_nothing(dbsession, secret_box, engine, node):
    service = ServerService(dbsession, secret_box)
    rows = [service.new_row(service.validate(ServerInput(name="w1", host="10.0.0.1")), utcnow())]
    node.role = "slave"
    dbsession.commit()
    with pytest.raises(NodeIsReadOnly):
        add_servers(engine, rows, Importer("tester", "", "tester"), "node-test", Recorder())
    assert count(dbsession) == 0


def test_a_slave_refuses_the_import_before_any_job(dbsession, secret_box, node):
    node.role = "slave"
    dbsession.commit()
    with pytest.raises(NodeIsReadOnly):
        run_import(dbsession, secret_box, HEADER + csv_rows(3))
    dbsession.rollback()
    assert count(dbsession, Job) == 0


# -- one at a time ------------------------------------------------------------------------------

def test_a_second_import_while_one_runs_is_refused(admin_app, dbsession):
    running = JobService(dbsession).create("servers-import", "alice", "import big.csv", lock=imports.LOCK)
    running.state = JobState.RUNNING
    dbsession.commit()
    res = upload(admin_app, HEADER + csv_rows(3))
    assert res.status_int == 200
    refusal = res.html.select_one(".form-errors").get_text()
    assert refusal.startswith("Import servers is already running on this node (started by alice at ")
    assert "wait for it to finish, then try again." in refusal
    assert count(dbsession) == 0 and count(dbsession, Job) == 1
    assert dbsession.query(JobInput).count() == 0
    # once it has ended, the next import runs
    dbsession.execute(delete(Job))
    dbsession.commit()
    assert "3 servers added." in imported(admin_app, HEADER + csv_rows(3))


def test_an_import_whose_process_died_frees_the_lock_and_its_file(dbsession, secret_box):
    from tests.jobs.test_services import dead_owner

    job = JobService(dbsession).create("servers-import", "alice", "import big.csv", lock=imports.LOCK)
    JobService(dbsession).keep_input(job, [secret_box.encrypt(HEADER + csv_rows(3))])
    job.owner, job.state = dead_owner(), JobState.RUNNING
    dbsession.commit()
    assert run_import(dbsession, secret_box, HEADER + csv_rows(3)).state == "done"
    dbsession.refresh(job)
    assert (job.state, job.lock) == ("failed", None) and "interrupted" in job.error
    assert dbsession.query(JobInput).count() == 0


def test_the_stored_file_is_encrypted(dbsession, secret_box):
    content = "name,host,port,remote_user,auth_method,group,description,password\n" \
              "vault,10.0.0.9,22,root,password,,,Sup3r-secret-pw\n"
    launch = imports.ServerImports(dbsession, secret_box, "node-test",
                                   Importer("tester", "", "tester")).start(content.encode(), "v.csv")
    dbsession.flush()
    (stored,) = dbsession.scalars(select(JobInput.data)).all()
    assert "Sup3r-secret-pw" not in stored and "vault" not in stored
    assert secret_box.decrypt(stored) == content
    assert launch.job.state == JobState.QUEUED
    dbsession.rollback()


# -- replication ------------------------------------------------------------------------------

def test_the_servers_added_are_recorded_for_the_other_node(admin_app, dbsession, node, engine):
    before = outbox(dbsession)
    page = imported(admin_app, HEADER + csv_rows(2500))
    assert "2,500 servers added." in page
    added = [e for e in outbox(dbsession) if e.id not in {b.id for b in before}]
    assert [len(json.loads(e.changes)) for e in added] == [1000, 1000, 500]
    for entry in added:
        assert (entry.origin, entry.epoch, entry.actor) == (node.id, 2, "root_admin")
        assert entry.seq is None  # numbered after the commit, by the relay's sequencer
    changes = [c for e in added for c in json.loads(e.changes)]
    assert {(c["table"], c["op"]) for c in changes} == {("servers", "upsert")}
    table = Server.__table__
    with engine.connect() as conn:
        stored = {row["id"]: encode_row(table, dict(row)) for row in conn.execute(select(table)).mappings()}
    assert {c["pk"]: c["row"] for c in changes} == stored  # every row, exactly as stored


def test_wait_for_sees_the_job_end(dbsession, secret_box, engine):
    job = run_import(dbsession, secret_box, HEADER + csv_rows(3))
    assert wait_for(engine, job.id).state == "done"
