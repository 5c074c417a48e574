"""The front page: an overview for admins, their servers for users."""
import datetime as dt
from urllib.parse import urlparse

from ezpyr.cluster.models import WorkerState
from ezpyr.jobs.models import Job
from ezpyr.meta import utcnow
from ezpyr.servers.models import Server
from tests.cluster.conftest import peer, this_node  # noqa: F401 - fixtures
from tests.factories import make_user_group


def test_admins_get_an_overview(admin_app, dbsession, this_node, peer):
    make_user_group(dbsession, "ops")
    dbsession.add(Server(name="web1", host="10.0.0.5"))
    dbsession.add(WorkerState(pid=1, relay_state="idle"))  # this node's worker reports
    peer.reachable, peer.last_heartbeat_at = True, utcnow()
    peer.queue_consumers, peer.backlog_unsent, peer.backlog_queued = 1, 2, 1
    dbsession.commit()
    page = admin_app.get("/")
    assert page.status_int == 200
    assert "<h1>Overview</h1>" in page
    node = page.html.select_one('[data-field="node-state"]').text
    assert "node-a" in node and "master" in node
    assert "192.0.2.20:6543 (slave)" in page.html.select_one('[data-field="other-node"]').text
    assert page.html.select_one('[data-field="status"]').text.strip() == "connected"
    assert page.html.select_one('[data-field="backlog"]').text.startswith("3 changes")
    counts = {c["data-count"]: int(c.text) for c in page.html.select("[data-count]")}
    assert counts["users"] == 1 and counts["servers"] == 1 and counts["user groups"] == 1
    # recent activity of this node: the admin's own sign-in
    assert "auth.login" in page.html.select_one("table.activity").text
    assert page.html.select_one('[data-attention="none"]') is not None


def test_the_overview_shows_what_waits_for_the_admin(admin_app, dbsession, this_node, peer):
    long_ago = utcnow() - dt.timedelta(minutes=5)
    peer.split_brain_since, peer.split_brain_detail = long_ago, "both hold changes"
    dbsession.add(WorkerState(pid=1, started_at=long_ago, heartbeat_at=long_ago))  # silent since
    dbsession.add(Job(kind="verify", state="failed", error="the other node refused: bad signature",
                      finished_at=utcnow()))
    dbsession.commit()
    page = admin_app.get("/")
    waiting = {p["data-attention"]: p.text for p in page.html.select("[data-attention]")}
    assert set(waiting) >= {"split_brain", "worker_down", "job_failed"}
    assert "Split-brain since" in waiting["split_brain"]
    assert "has not reported for" in waiting["worker_down"]
    assert "bad signature" in waiting["job_failed"]
    assert page.html.select_one('[data-field="status"]').text.strip() == "split-brain"


def test_the_overview_of_a_lone_node(admin_app, dbsession, this_node):
    this_node.role = "standalone"
    dbsession.commit()
    page = admin_app.get("/")
    assert "master (standalone)" in page.html.select_one('[data-field="node-state"]').text
    assert "not configured" in page.html.select_one('[data-field="other-node"]').text
    assert page.html.select_one('[data-attention="none"]') is not None


def test_users_land_on_their_servers_with_how_to_reach_the_gateway(user_app):
    res = user_app.get("/")
    assert res.status_int == 303 and urlparse(res.location).path == "/profile/servers"
    page = res.follow()
    line = page.html.select_one('[data-gateway="ssh"]').text
    assert "ssh plainuser@localhost" in line
