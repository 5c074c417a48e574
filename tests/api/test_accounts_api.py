"""The cluster page's account section over the API: the nodes' pins and
tasks, Reconcile as a job, and Reset fingerprint confirmed with the key the
node presented, through the same service as the page and ezpyr-accounts
(the same refusals, the same activity entries)."""
from __future__ import annotations

import time

import pytest
import webtest
from sqlalchemy import delete, select

from ezpyr import main
from ezpyr.accounts.models import AccountTask, PinnedHostKey
from ezpyr.activity.models import ActivityEntry
from ezpyr.jobs.models import Job
from support.net import free_port
from tests.conftest import app_settings

OLD, NEW = "SHA256:" + "o" * 43, "SHA256:" + "n" * 43


@pytest.fixture
def configured(engine, database_url, tmp_path, tokens):
    """The panel with this node's account settings: an SSH address where
    nothing listens, and a provisioning key file."""
    key = tmp_path / "provisioning_ed25519"
    key.write_text("not a key: nothing is reached\n")
    return webtest.TestApp(main({}, **app_settings(database_url, **{
        "ezpyr.engine": engine, "ezpyr.accounts.ssh_address": f"127.0.0.1:{free_port()}",
        "ezpyr.accounts.key_file": str(key)})))


def account_entries(dbsession) -> list[tuple]:
    dbsession.expire_all()
    return [(e.action, e.target, e.details) for e in dbsession.scalars(
        select(ActivityEntry).where(ActivityEntry.action.like("accounts.%")).order_by(ActivityEntry.id))]


def pinned(dbsession, target="this", presented=NEW) -> PinnedHostKey:
    """``target``'s pinned key, refused for another it presents; alice's task waits."""
    pin = PinnedHostKey(target=target, address="127.0.0.1:22", fingerprint=OLD, presented=presented)
    dbsession.execute(delete(AccountTask))  # those the tokens' owners queued
    dbsession.add_all([pin, AccountTask(target=target, username="alice", request="{}", state="waiting",
                                        error=f"the node presents {NEW}")])
    dbsession.commit()
    return pin


def test_the_nodes_pins_and_tasks(testapp, tokens, dbsession):
    pinned(dbsession)
    state = testapp.get("/api/v1/accounts", headers=tokens.ro).json
    assert state["provisioning_user"] == "root"
    assert state["nodes"]["this"] == {
        "ssh_address": "", "problem": "ezpyr.accounts.ssh_address is not set in this node's config",
        "pinned": OLD, "presented": NEW, "waiting": 1, "failed": 0, "last_error": f"the node presents {NEW}"}
    assert state["nodes"]["other"]["pinned"] is None


def test_reset_fingerprint_needs_the_presented_key(testapp, tokens, dbsession):
    pinned(dbsession)
    for body, field, words in (({"node": "this", "presented": OLD}, "presented", "not the one the node presents"),
                               ({"node": "other", "presented": NEW}, "node", "No host key is pinned"),
                               ({"node": "both", "presented": NEW}, "node", "")):
        answer = testapp.post_json("/api/v1/accounts/reset-fingerprint", body, headers=tokens.rw, status=422)
        assert field in answer.json["fields"] and words in answer.json["error"], body
    dbsession.expire_all()
    assert dbsession.get(PinnedHostKey, "this").fingerprint == OLD and account_entries(dbsession) == []
    testapp.post_json("/api/v1/accounts/reset-fingerprint", {"node": "this", "presented": NEW}, headers=tokens.ro,
                      status=403)

    done = testapp.post_json("/api/v1/accounts/reset-fingerprint", {"node": "this", "presented": NEW},
                             headers=tokens.rw).json
    assert done == {"node": "this", "old": OLD, "new": NEW}
    dbsession.expire_all()
    pin = dbsession.get(PinnedHostKey, "this")
    assert (pin.fingerprint, pin.presented) == (NEW, "")
    assert dbsession.scalars(select(AccountTask.error)).one() == ""  # its waiting tasks go on
    assert account_entries(dbsession) == [("accounts.reset_fingerprint", "this",
                                           f"{OLD} -> {NEW}; via API token script-rw")]


def test_reconcile_is_refused_when_no_node_can_be_reached(testapp, tokens, dbsession, this_node):
    answer = testapp.post("/api/v1/accounts/reconcile", headers=tokens.rw, status=422)
    assert "ezpyr.accounts.ssh_address is not set" in answer.json["error"]
    assert dbsession.scalars(select(Job)).first() is None and account_entries(dbsession) == []


def test_reconcile_is_a_job(configured, tokens, dbsession, this_node):
    started = configured.post("/api/v1/accounts/reconcile", headers=tokens.rw, status=202)
    assert started.json["job"]["kind"] == "accounts.reconcile"
    for _ in range(400):
        job = configured.get(started.json["location"], headers=tokens.ro).json
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["state"] == "failed" and "cannot connect" in job["error"]
    assert account_entries(dbsession) == [("accounts.reconcile", "this", "via API token script-rw")]


def test_a_slave_leaves_account_work_to_the_master(testapp, tokens, dbsession, this_node):
    pinned(dbsession)
    this_node.role = "slave"
    dbsession.commit()
    for path, body in (("/api/v1/accounts/reconcile", {}),
                       ("/api/v1/accounts/reset-fingerprint", {"node": "this", "presented": NEW})):
        assert "Nothing was changed" in testapp.post_json(path, body, headers=tokens.rw, status=409).json["error"]
    assert testapp.get("/api/v1/accounts", headers=tokens.rw).json["nodes"]["this"]["pinned"] == OLD
