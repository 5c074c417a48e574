"""The cluster page over the API: its state, and its buttons through the
same ClusterActions as the page and ezpyr-cluster (the same refusals, the
same activity entries). The long actions answer 202 with their job and a
Location that GET /jobs/{id} reads until the job ends; a Verify's result
names the rows that differ. Verify, Make master and Disconnect/Connect are
allowed on a slave, as on its panel."""
from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
import webtest
from pyramid.paster import get_app
from sqlalchemy import select, update

from ezpyr.activity.models import ActivityEntry
from ezpyr.cluster.models import ClusterPeer, GrantedHost
from ezpyr.jobs.models import Job, JobState
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.writes import applying
from ezpyr.users.models import UserGroup
from support.net import free_port
from tests.cluster_nodes import make_cluster, pair

PEER_ID = "11111111-2222-3333-4444-555555555555"


def nowhere() -> str:
    """A loopback address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def peer(dbsession, this_node, secret_box):
    peer = ClusterPeer(id=PEER_ID, name="node-b", address=nowhere(), role="slave", epoch=1,
                       broker_url_encrypted=secret_box.encrypt("amqp://unused//"),
                       secret_encrypted=secret_box.encrypt("cluster-secret-for-tests"))
    dbsession.add(peer)
    dbsession.commit()
    return peer


def follow(app, started, headers) -> dict:
    """The job a 202 named, once it has ended."""
    assert started.status_int == 202
    location = started.json["location"]
    assert location == f"/api/v1/jobs/{started.json['job']['id']}"
    assert urlsplit(started.headers["Location"]).path == location
    for _ in range(400):
        job = app.get(location, headers=headers).json
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"the job did not end: {job}")


def cluster_entries(dbsession) -> list[tuple]:
    dbsession.expire_all()
    return [(e.action, e.target, e.details, e.username) for e in dbsession.scalars(
        select(ActivityEntry).where(ActivityEntry.action.like("cluster.%")).order_by(ActivityEntry.id))]


def test_the_cluster_state(testapp, tokens, peer):
    state = testapp.get("/api/v1/cluster", headers=tokens.ro).json
    assert state["node"]["name"] == "node-a" and state["other_node"]["address"] == peer.address
    assert set(state) == {"node", "other_node", "status", "split_brain", "backlog", "backlog_unsent",
                          "backlog_queued", "lag_seconds", "warnings"}


def test_refusals_are_the_pages_and_change_nothing(testapp, tokens, dbsession, this_node):
    for path, body, words, field in (
            ("/cluster/verify", {}, "No other node is configured", "body"),
            ("/cluster/disconnect", {}, "No other node is configured", "body"),
            ("/cluster/make-master", {}, "No other node is configured", "body"),
            ("/cluster/add", {"address": "nowhere", "setup_key": "k"}, "That is not an address", "address"),
            ("/cluster/add", {"address": "127.0.0.1:6544", "setup_key": " "}, "The setup key is required",
             "setup_key"),
            ("/cluster/add", {"address": "127.0.0.1:6544", "setup_key": "k"}, "127.0.0.1 is not granted",
             "address"),
            ("/cluster/resolve/preview", {"verify_job": "nope", "keep": "here"}, "No such Verify result",
             "verify_job"),
            ("/cluster/resolve", {"verify_job": "nope"}, "No such Verify result", "verify_job")):
        answer = testapp.post_json("/api/v1" + path, body, headers=tokens.rw, status=422)
        assert words in answer.json["error"] and field in answer.json["fields"], path
    answer = testapp.post_json("/api/v1/cluster/add", {"address": "x"}, headers=tokens.rw, status=422)
    assert set(answer.json["fields"]) == {"setup_key"}
    assert dbsession.scalars(select(Job)).first() is None and cluster_entries(dbsession) == []


def test_verify_is_a_job_that_get_jobs_follows(testapp, tokens, dbsession, peer):
    started = testapp.post("/api/v1/cluster/verify", headers=tokens.rw, status=202)
    assert started.json["job"]["kind"] == "verify" and started.json["job"]["created_by"] == "root_admin"
    job = follow(testapp, started, tokens.ro)
    # nothing answers at the peer's address: the job says so, and changed nothing
    assert job["state"] == "failed" and job["refused"] is True and job["error"].startswith("Cannot verify:")
    assert cluster_entries(dbsession) == [("cluster.verify", peer.address, "via API token script-rw", "root_admin")]
    assert testapp.post("/api/v1/cluster/verify", headers=tokens.ro, status=403)
    missing = testapp.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000", headers=tokens.ro, status=404)
    assert "no job" in missing.json["error"]


def test_a_finished_verify_reads_back_with_its_differences(testapp, tokens, dbsession, this_node):
    result = {"in_sync": False, "tables": [{"table": "user_groups", "rows_here": 1, "rows_there": 1,
                                            "in_sync": False, "differing": [
                                                {"id": "g1", "here": {"name": "ops"}, "there": {"name": "ops2"}}]}]}
    job = Job(kind="verify", state=JobState.DONE, done=3, total=3, message="compared", result=json.dumps(result),
              created_by="cli")
    dbsession.add(job)
    dbsession.commit()
    read = testapp.get(f"/api/v1/jobs/{job.id}", headers=tokens.ro).json
    assert (read["state"], read["percent"], read["title"], read["result"]) == ("done", 100, "Verify", result)


def test_add_is_the_masters_job(testapp, tokens, dbsession, this_node):
    dbsession.add(GrantedHost(address="127.0.0.1"))
    dbsession.commit()
    address = nowhere()
    job = follow(testapp, testapp.post_json("/api/v1/cluster/add", {"address": address, "setup_key": "the-key"},
                                            headers=tokens.rw), tokens.ro)
    assert job["kind"] == "add" and job["state"] == "failed"
    assert cluster_entries(dbsession) == [("cluster.add", address, "via API token script-rw", "root_admin")]
    assert dbsession.scalars(select(ClusterPeer)).first() is None


def test_the_slave_may_disconnect_verify_and_ask_to_become_master(testapp, tokens, dbsession, peer, this_node):
    this_node.role, peer.role = "slave", "master"
    dbsession.commit()
    off = testapp.post("/api/v1/cluster/disconnect", headers=tokens.rw).json
    assert off["status"] == "disconnected"
    dbsession.expire_all()
    assert dbsession.get(ClusterPeer, PEER_ID).link == "disconnected"
    assert testapp.post("/api/v1/cluster/connect", headers=tokens.rw).json["status"] != "disconnected"
    verify = follow(testapp, testapp.post("/api/v1/cluster/verify", headers=tokens.rw), tokens.ro)
    assert verify["refused"] is True
    # the master does not answer: a graceful switch cannot happen, and the job asks first
    asked = follow(testapp, testapp.post_json("/api/v1/cluster/make-master", {}, headers=tokens.rw), tokens.ro)
    assert asked["state"] == "done" and asked["result"]["needs_confirmation"] is True
    dbsession.expire_all()
    assert dbsession.get(NodeIdentity, this_node.id).role == "slave"
    assert [a for a, *_ in cluster_entries(dbsession)] == [
        "cluster.disconnect", "cluster.connect", "cluster.verify", "cluster.make_master"]
    assert cluster_entries(dbsession)[-1][2] == "graceful; via API token script-rw"
    # Add is the master's: the slave refuses it before looking at the body
    refused = testapp.post_json("/api/v1/cluster/add", {}, headers=tokens.rw, status=409)
    assert "Nothing was changed" in refused.json["error"]
    preview = testapp.post_json("/api/v1/cluster/resolve/preview", {"verify_job": verify["id"]}, headers=tokens.rw,
                                status=422)
    assert "No such Verify result" in preview.json["error"]  # a failed Verify decides nothing


def token_on(node) -> dict:
    made = json.loads(node.run("ezpyr-admin", "tokens", "add", "api", "--owner", "admin", "--read-write",
                               "--json").stdout)
    return {"Authorization": f"Bearer {made['secret']}"}


def api_of(node) -> webtest.TestApp:
    return webtest.TestApp(get_app(str(node.ini)), extra_environ={"REMOTE_ADDR": "127.0.0.1"})


@pytest.mark.slow
def test_verify_against_a_real_peer_names_the_row_that_differs(tmp_path, backend, tmp_path_factory):
    a, b = make_cluster(tmp_path, backend, tmp_path_factory)
    try:
        headers = token_on(a)
        with a.env.session() as s:
            s.add(UserGroup(name="ops", description=""))
        pair(a, b)  # b holds the token and "ops" too
        b.start_panel()
        master = api_of(a)
        clean = follow(master, master.post("/api/v1/cluster/verify", headers=headers), headers)
        assert clean["state"] == "done" and clean["result"]["in_sync"] is True
        table = UserGroup.__table__
        with b.env.engine.begin() as conn, applying(conn):  # behind replication's back
            conn.execute(update(table).values(description="changed on b"))
        differ = follow(master, master.post("/api/v1/cluster/verify", headers=headers), headers)
        assert differ["result"]["in_sync"] is False
        [groups] = [t for t in differ["result"]["tables"] if t["table"] == "user_groups"]
        [row] = groups["differing"]
        assert (row["here"]["description"], row["there"]["description"]) == ("", "changed on b")

        # the slave verifies too (its panel's Verify is node-local)
        b.stop()
        a.start_panel()
        slave = api_of(b)
        seen = follow(slave, slave.post("/api/v1/cluster/verify", headers=headers), headers)
        assert seen["state"] == "done" and seen["result"]["in_sync"] is False
    finally:
        a.close()
        b.close()
