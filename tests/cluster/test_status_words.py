"""What the cluster page, `status --json` and every admin page say about
the link and this node's worker, read from what the worker last recorded."""
from __future__ import annotations

import datetime as dt

from ezpyr.cluster.models import WorkerState
from ezpyr.cluster.services import ClusterService
from ezpyr.meta import utcnow


def worker_seen(dbsession, seconds_ago: float, stopped: bool = False, relay: str = "connected"):
    at = utcnow() - dt.timedelta(seconds=seconds_ago)
    dbsession.merge(WorkerState(id=1, pid=1, started_at=at, heartbeat_at=at,
                                stopped_at=at if stopped else None, relay_state=relay))
    dbsession.commit()


def test_connect_reads_connecting_until_the_first_probe_answers(dbsession, peer):
    worker_seen(dbsession, 1)
    service = ClusterService(dbsession)
    peer.reachable, peer.last_error, peer.last_heartbeat_at = False, "the other node does not answer", None
    service.set_link("disconnected")
    assert service.state().status == "disconnected"
    service.set_link("connected")
    assert service.state().status == "connecting"
    peer.last_error = "the other node at http://192.0.2.20:6543 does not answer: no answer within 10 s"
    assert service.state().status == "unreachable"  # the first probe failed
    peer.reachable, peer.last_error, peer.last_heartbeat_at = True, "", utcnow()
    assert service.state().status == "connected"


def test_the_worker_is_reported_running_stopped_or_silent(dbsession, peer):
    service = ClusterService(dbsession)
    report = service.state().worker
    assert not report.running and "never run" in report.problem
    worker_seen(dbsession, 2, relay="connected to this node's broker")
    report = service.state().worker
    assert report.running and report.problem == ""
    assert service.state().as_dict()["worker"]["relay"] == "connected to this node's broker"
    worker_seen(dbsession, 153)
    report = service.state().worker
    assert not report.running and "has not reported for 153 s" in report.problem
    worker_seen(dbsession, 1, stopped=True)
    assert "was stopped" in service.state().worker.problem


def test_every_admin_page_says_when_the_worker_is_not_running(admin_app, dbsession, peer):
    worker_seen(dbsession, 153)
    page = admin_app.get("/servers")
    banner = page.html.select_one('[data-banner="worker-down"]')
    assert banner is not None and "has not reported for" in banner.text
    worker_seen(dbsession, 1)
    assert admin_app.get("/servers").html.select_one('[data-banner="worker-down"]') is None


def test_a_standalone_node_without_a_worker_shows_no_banner(admin_app, dbsession, this_node):
    assert admin_app.get("/servers").html.select_one('[data-banner="worker-down"]') is None


def test_the_takeover_warning_says_how_old_its_count_is(dbsession, peer):
    """Issue: a forced make-master said the old master held 0 changes this
    node lacked when it held 5 (a stale figure stated as fact)."""
    import json

    from ezpyr.cluster.roles import takeover_risk

    peer.last_heartbeat_at = utcnow() - dt.timedelta(minutes=7)
    peer.peer_vector = json.dumps({f"{peer.id}:1": 5})
    dbsession.commit()
    risk = takeover_risk(dbsession.connection())
    warning = risk.warning(peer.address)
    assert risk.unapplied == 5
    assert "When it last answered, 7 min ago" in warning
    assert "it held 5 changes this node has not applied; it holds at least that many now" in warning
    peer.last_heartbeat_at = None
    dbsession.commit()
    assert "has never heard from it" in takeover_risk(dbsession.connection()).warning(peer.address)
