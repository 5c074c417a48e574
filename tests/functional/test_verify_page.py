"""The Verify button: a job with a progress page, then the report, against
a real peer panel over the signed cluster API."""
import time

import pytest
import webtest
from pyramid.paster import get_app
from sqlalchemy import delete, insert, select, update

from ezpyr.meta import utcnow
from ezpyr.users.groups import UserGroupService
from ezpyr.users.models import UserGroup
from ezpyr.replication.writes import applying
from tests.cluster_nodes import ADMIN_PASSWORD, make_cluster, pair
from tests.factories import login

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path, backend, tmp_path_factory):
    a, b = make_cluster(tmp_path, backend, tmp_path_factory)
    yield a, b
    a.close()
    b.close()


def run_verify(app):
    page = app.get("/cluster")
    res = page.forms[[k for k, f in page.forms.items() if f.action.endswith("/cluster/verify")][0]].submit()
    assert res.status_int == 303 and "/jobs/" in res.location
    job_url = res.location
    for _ in range(200):
        data = app.get(job_url + ".json").json
        if data["state"] in ("done", "failed"):
            return app.get(job_url), data
        time.sleep(0.05)
    raise AssertionError("verify did not finish")


def test_verify_button_shows_in_sync_then_the_differing_row(cluster):
    a, b = cluster
    with a.env.session() as s:
        UserGroupService(s).create("ops")
    # pair again so that b holds a copy of "ops" too
    pair(a, b)
    b.start_panel()
    app = webtest.TestApp(get_app(str(a.ini)), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    login(app, "admin", ADMIN_PASSWORD)
    page, data = run_verify(app)
    assert data["state"] == "done" and data["result"]["in_sync"] is True
    assert "Every table is in sync." in page and 'value="100"' in page
    table = UserGroup.__table__
    with b.env.engine.begin() as conn, applying(conn):  # behind replication's back
        conn.execute(update(table).values(description="changed on b"))
    page, data = run_verify(app)
    assert data["result"]["in_sync"] is False
    assert "The nodes differ." in page and "changed on b" in page and "1 row differ" in page


CHUNK_ROWS = 7  # so a table of 60 rows takes many requests (the other node hashes at most 7 rows each)


def small_pages(node):
    node.ini.write_text(node.ini.read_text().replace(
        "[app:main]\n", f"[app:main]\nezpyr.verify.chunk_rows = {CHUNK_ROWS}\n", 1))


def test_verify_pages_a_large_table_through_the_cluster_api_and_names_exactly_the_rows_that_differ(
        cluster):
    a, b = cluster
    with a.env.session() as s:
        s.add_all(UserGroup(name=f"g{i:02d}", description="") for i in range(60))
    pair(a, b)  # b gets a copy
    small_pages(a)
    b.start_panel()
    clean = a.cluster("verify")
    assert clean["in_sync"] is True, clean
    assert {t["table"]: (t["rows_here"], t["rows_there"]) for t in clean["tables"]}["user_groups"] == (60, 60)

    table = UserGroup.__table__
    with b.env.engine.connect() as conn:
        ids = sorted(conn.execute(select(table.c.id)).scalars())
    changed, deleted = ids[10:13], ids[40]
    # 20 rows only on b inside one chunk of a's (more than the other node hashes per request),
    # and 2 past a's last row
    inside = [ids[3][:34] + x + y for x in "gh" for y in "ghijklmnop"]
    past = [f"ffffffff-ffff-4fff-8fff-fffffffffff{n}" for n in (1, 2)]
    with b.env.engine.begin() as conn, applying(conn):  # drift behind replication's back
        conn.execute(update(table).where(table.c.id.in_(changed)).values(description="changed on b"))
        conn.execute(delete(table).where(table.c.id == deleted))
        conn.execute(insert(table), [{"id": i, "name": f"only-b-{n}", "description": "",
                                      "created_at": utcnow()} for n, i in enumerate(inside + past)])
    expected = set(changed) | {deleted} | set(inside) | set(past)

    drift = a.cluster("verify")
    tables = {t["table"]: t for t in drift["tables"]}
    groups = tables.pop("user_groups")
    assert drift["in_sync"] is False and all(t["in_sync"] for t in tables.values())
    assert (groups["rows_here"], groups["rows_there"]) == (60, 60 - 1 + 22)
    assert {d["id"] for d in groups["differing"]} == expected
    by_id = {d["id"]: d for d in groups["differing"]}
    assert by_id[deleted]["there"] is None and by_id[past[0]]["here"] is None
    assert by_id[changed[0]]["there"]["description"] == "changed on b"

    # the panel's Verify job: the same answer, its progress counted in rows
    app = webtest.TestApp(get_app(str(a.ini)), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    login(app, "admin", ADMIN_PASSWORD)
    page, data = run_verify(app)
    assert data["state"] == "done", data
    rows_here = sum(t["rows_here"] for t in data["result"]["tables"])
    assert data["done"] == data["total"] == rows_here >= 60
    job_groups = {t["table"]: t for t in data["result"]["tables"]}["user_groups"]
    assert {d["id"] for d in job_groups["differing"]} == expected
