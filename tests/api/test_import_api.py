"""The CSV import over the API: the same job as the panel's and
ezpyr-admin's, answered with 202 and followed with GET /jobs/{id}."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from ezpyr.activity.models import ActivityEntry
from ezpyr.servers.csvio import COLUMNS
from ezpyr.servers.models import Server

HEADER = ",".join(COLUMNS)


def csv_rows(n: int, bad_last: bool = False) -> bytes:
    lines = [HEADER]
    for i in range(n):
        row = {"name": f"imp{i:04d}", "host": "10.2.0.1", "port": "22", "remote_user": "root",
               "auth_method": "key", "group": "", "description": ""}
        if bad_last and i == n - 1:
            row["port"] = "99999"
        lines.append(",".join(row.get(c, "") for c in COLUMNS))
    return ("\n".join(lines) + "\n").encode()


def follow(testapp, headers, location: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = testapp.get(location, headers=headers).json
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"the import job did not end: {job}")


def servers(dbsession) -> int:
    dbsession.expire_all()
    return dbsession.scalar(select(func.count()).select_from(Server))


def test_an_import_is_a_job_that_adds_every_row(testapp, tokens, dbsession):
    answer = testapp.post("/api/v1/servers/import", csv_rows(300), headers={**tokens.rw, "Content-Type": "text/csv"},
                          status=202)
    assert answer.headers["Location"].endswith(answer.json["location"])
    assert answer.json["location"] == f"/api/v1/jobs/{answer.json['job']['id']}"
    job = follow(testapp, tokens.rw, answer.json["location"])
    assert job["state"] == "done" and job["kind"] == "servers-import" and job["result"]["added"] == 300
    assert servers(dbsession) == 300
    entries = [(e.action, e.target, e.details) for e in dbsession.scalars(
        select(ActivityEntry).where(ActivityEntry.action == "server.import"))]
    assert entries == [("server.import", "300 servers", "via API token script-rw")]


def test_a_bad_row_adds_nothing_and_the_job_names_it(testapp, tokens, dbsession):
    answer = testapp.post("/api/v1/servers/import", csv_rows(200, bad_last=True),
                          headers={**tokens.rw, "Content-Type": "text/csv"}, status=202)
    job = follow(testapp, tokens.rw, answer.json["location"])
    assert job["state"] == "failed" and job["refused"] is True
    assert job["result"]["error_count"] == 1 and "port" in job["result"]["errors"][0].lower()
    assert servers(dbsession) == 0


def test_an_unreadable_file_is_422_and_makes_no_job(testapp, tokens, dbsession):
    for body in (b"", b"\xff\xfe not utf-8", b"name,colour\nweb1,blue\n"):
        answer = testapp.post("/api/v1/servers/import", body, headers={**tokens.rw, "Content-Type": "text/csv"},
                              status=422)
        assert answer.content_type == "application/json" and answer.json["error"]
    assert testapp.get("/api/v1/servers", headers=tokens.rw).json["items"] == []
    assert servers(dbsession) == 0
