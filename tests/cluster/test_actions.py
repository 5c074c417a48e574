"""ClusterActions: each action's preconditions (refused with a clear
message, nothing changed), its job row and its activity entry, whether the
panel or ezpyr-cluster asks."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ezpyr.activity.models import ActivityEntry
from ezpyr.activity.services import ActivityLog
from ezpyr.cluster.actions import ClusterActions
from ezpyr.cluster.models import GrantedHost
from ezpyr.jobs.models import Job, JobState
from ezpyr.jobs.services import this_process
from ezpyr.meta import utcnow
from ezpyr.services import Activity, Actor
from ezpyr.validation import Invalid
from tests.conftest import app_settings
from tests.factories import csrf_from

SECONDARY = "127.0.0.1:6544"


def actions_for(dbsession, secret_box, actor="alice") -> ClusterActions:
    activity = Activity(ActivityLog(dbsession, "node-a"), lambda: Actor(username=actor))
    return ClusterActions(dbsession, secret_box, app_settings("sqlite://"), actor, activity)


def jobs(dbsession) -> list[Job]:
    dbsession.expire_all()
    return list(dbsession.scalars(select(Job)))


def test_add_checks_its_preconditions_before_any_job(dbsession, this_node, secret_box):
    actions = actions_for(dbsession, secret_box)
    for address, key, words in (("nowhere", "k", "That is not an address"),
                                (SECONDARY, " ", "The setup key is required"),
                                (SECONDARY, "k", "127.0.0.1 is not granted: run ezpyr-grant-host")):
        with pytest.raises(Invalid, match=words):
            actions.add(address, key)
    assert jobs(dbsession) == []
    assert dbsession.scalar(select(func.count()).select_from(ActivityEntry)) == 0


def test_add_records_its_job_and_activity(dbsession, this_node, secret_box):
    dbsession.add(GrantedHost(address="127.0.0.1"))
    launch = actions_for(dbsession, secret_box).add(SECONDARY, "the-key")
    dbsession.commit()
    assert launch.work is not None
    [job] = jobs(dbsession)
    assert (job.kind, job.state, job.created_by, job.lock) == ("add", JobState.QUEUED, "alice", "cluster-change")
    entry = dbsession.scalars(select(ActivityEntry)).one()
    assert (entry.action, entry.target, entry.username) == ("cluster.add", SECONDARY, "alice")


def test_a_second_add_is_refused_while_one_runs_whoever_asks(dbsession, this_node, secret_box):
    """The CLI's Add and the panel's Add take the same lock."""
    dbsession.add(GrantedHost(address="127.0.0.1"))
    actions_for(dbsession, secret_box, actor="cli").add(SECONDARY, "the-key")
    dbsession.commit()
    with pytest.raises(Invalid, match=r"^Add is already running on this node \(started by cli at "):
        actions_for(dbsession, secret_box, actor="alice").add(SECONDARY, "the-key")


def test_once_a_node_has_its_other_node_add_is_refused(dbsession, peer, secret_box):
    with pytest.raises(Invalid, match="already has another node"):
        actions_for(dbsession, secret_box).add(SECONDARY, "the-key")


def test_make_master_is_for_the_slave_outside_a_split_brain(dbsession, peer, secret_box, this_node):
    actions = actions_for(dbsession, secret_box)
    with pytest.raises(Invalid, match="This node is master; Make master is for the slave."):
        actions.make_master()
    this_node.role = "slave"
    peer.split_brain_since = utcnow()
    dbsession.commit()
    with pytest.raises(Invalid, match="resolve it first"):
        actions.make_master()
    peer.split_brain_since = None
    dbsession.commit()
    launch = actions.make_master(force=True)
    assert launch.job.message == "forced takeover" and launch.job.lock == "cluster-change"


def test_verify_follows_a_running_verify_instead_of_starting_another(dbsession, peer, secret_box):
    actions = actions_for(dbsession, secret_box)
    first = actions.verify()
    dbsession.commit()
    again = actions.verify()
    assert again.job.id == first.job.id and again.work is None


def test_verify_needs_the_other_node(dbsession, this_node, secret_box):
    with pytest.raises(Invalid, match="No other node is configured: there is nothing to verify against."):
        actions_for(dbsession, secret_box).verify()


REPORT = {"in_sync": False, "tables": [{"table": "user_groups", "rows_here": 1, "rows_there": 1,
                                        "in_sync": False, "differing": [
    {"id": "g1", "here": {"id": "g1", "name": "ops", "description": "here"},
     "there": {"id": "g1", "name": "ops", "description": "there"}}]}]}


def test_resolve_is_planned_in_one_place(dbsession, peer, secret_box):
    from ezpyr.cluster.resolve import Plan
    actions = actions_for(dbsession, secret_box)
    with pytest.raises(Invalid, match="There is no split-brain to resolve."):
        actions.resolve_plan(REPORT, Plan(all="here"))
    peer.split_brain_since = utcnow()
    dbsession.commit()
    with pytest.raises(Invalid, match="1 row has no choice yet"):
        actions.resolve_plan(REPORT, Plan())
    chosen = actions.resolve_plan(REPORT, Plan(all="there"))
    assert chosen.decided == 1 and chosen.lost[0]["lost"]["description"] == "here"
    assert jobs(dbsession) == []  # a preview starts nothing
    launch = actions.resolve(REPORT, Plan(all="there"))
    assert launch.job.kind == "resolve"


def test_the_panel_refuses_an_add_while_the_cli_runs_one(admin_app, dbsession, this_node):
    dbsession.add_all([GrantedHost(address="127.0.0.1"),
                       Job(kind="add", state=JobState.RUNNING, created_by="cli", lock="cluster-change",
                           owner=this_process())])
    dbsession.commit()
    page = admin_app.get("/cluster")
    answer = admin_app.post("/cluster/add", {"address": SECONDARY, "setup_key": "the-key",
                                             "csrf_token": csrf_from(page)})
    assert answer.status_int == 200
    assert "Add is already running on this node (started by cli at" in answer.text
    assert len(jobs(dbsession)) == 1
    assert dbsession.scalar(select(func.count()).select_from(ActivityEntry)
                            .where(ActivityEntry.action == "cluster.add")) == 0


def test_disconnect_and_connect_record_who_did_it(dbsession, peer, secret_box):
    """The page's buttons and ezpyr-cluster's commands: the link and one entry each."""
    actions = actions_for(dbsession, secret_box, actor="cli")
    assert actions.disconnect().link == "disconnected"
    assert actions.connect().link == "connected"
    dbsession.commit()
    entries = [(e.action, e.target, e.username) for e in dbsession.scalars(
        select(ActivityEntry).order_by(ActivityEntry.id))]
    assert entries == [("cluster.disconnect", peer.address, "cli"), ("cluster.connect", peer.address, "cli")]
