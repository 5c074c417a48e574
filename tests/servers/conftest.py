"""Rows and requests the server tests build."""
from __future__ import annotations

from ezpyr.jobs.models import Job
from ezpyr.jobs.services import run_job, wait_for
from ezpyr.servers.imports import Importer, ServerImports
from ezpyr.servers.services import ServerGroupService, ServerInput, ServerService
from tests.factories import csrf_from

HEADER = "name,host,port,remote_user,auth_method,group,description\n"


def make_server_group(dbsession, name="web", description=""):
    group = ServerGroupService(dbsession).create(name, description)
    dbsession.commit()
    return group


def make_server(dbsession, secret_box, name="web1", **fields):
    fields.setdefault("host", f"{name}.example.net")
    group = fields.pop("group", None)
    server = ServerService(dbsession, secret_box).create(
        ServerInput(name=name, group_id=group.id if group else None, **fields)
    )
    dbsession.commit()
    return server


def server_form(**fields) -> dict:
    """A filled-in server form (a new key-authenticated server)."""
    data = {"name": "web1", "host": "web1.example.net", "port": "22", "remote_user": "root",
            "auth_method": "key", "password": "", "group_id": "", "description": ""}
    data.update(fields)
    return data


def upload(testapp, content, *, filename="servers.csv", status=None):
    """Send ``content`` (str or bytes) as the import form's file."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    page = testapp.get("/servers/import")
    return testapp.post("/servers/import", {"csrf_token": csrf_from(page)},
                        upload_files=[("file", filename, content)], status=status)


def csv_rows(count: int, *, start: int = 0, group: str = "") -> str:
    """``count`` good rows (servers s00000, s00001 …), without the header."""
    return "".join(f"s{i:05d},10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256},22,root,key,{group},\n"
                   for i in range(start, start + count))


def follow_import(testapp, res, engine=None):
    """The job page the upload's answer ``res`` leads to, once the job has
    ended (``engine``: the app's, by default)."""
    assert res.status_int == 303, res.text[:2000]
    assert "/jobs/" in res.location, res.location
    job_id = res.location.rsplit("/", 1)[1]
    wait_for(engine if engine is not None else testapp.app.registry["db_engine"], job_id, interval=0.05)
    return testapp.get(f"/jobs/{job_id}")


def imported(testapp, content, **kwargs):
    """Upload ``content`` and follow its job to its page."""
    return follow_import(testapp, upload(testapp, content, **kwargs))


def run_import(dbsession, secret_box, content, *, source="servers.csv", username="tester") -> Job:
    """The import job, started as the page and the command start it, run in
    this thread; returns the finished job."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    importer = Importer(username=username, remote_addr="192.0.2.10", actor=username)
    launch = ServerImports(dbsession, secret_box, "node-test", importer).start(content, source)
    dbsession.commit()
    run_job(dbsession.get_bind(), launch.job.id, launch.work)
    dbsession.expire_all()
    return dbsession.get(Job, launch.job.id)
