"""The Verify button: a job with a progress page, then the report, against
a real peer panel over the signed cluster API."""
import time

import pytest
import webtest
from pyramid.paster import get_app
from sqlalchemy import update

from ezpyr.users.groups import UserGroupService
from ezpyr.users.models import UserGroup
from tests.cluster_nodes import ADMIN_PASSWORD, make_cluster
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
    a.run("ezpyr-cluster", "pair-local", str(b.ini))
    b.start_panel()
    app = webtest.TestApp(get_app(str(a.ini)), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    login(app, "admin", ADMIN_PASSWORD)
    page, data = run_verify(app)
    assert data["state"] == "done" and data["result"]["in_sync"] is True
    assert "Every table is in sync." in page and 'value="100"' in page
    table = UserGroup.__table__
    with b.env.engine.begin() as conn:
        conn.execute(update(table).values(description="changed on b"))
    page, data = run_verify(app)
    assert data["result"]["in_sync"] is False
    assert "The nodes differ." in page and "changed on b" in page and "1 row differ" in page
