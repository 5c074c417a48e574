"""The reconciliation view: rows named as admins know them, versions field
by field (differing fields marked, equal ones folded), provenance in words,
node names in the banner, a filter, a choice for every row shown, pages."""
from __future__ import annotations

import json

from ezpyr.cluster.reconcile import made_by, reconciliation, row_label
from ezpyr.jobs.models import Job, JobState
from ezpyr.meta import utcnow
from tests.cluster.conftest import PEER_ID
from tests.factories import csrf_from


def server(i: int, host: str, name: str | None = None) -> dict:
    return {"id": f"s-{i:04d}", "name": name or f"web{i}", "host": host, "port": 22, "remote_user": "root",
            "auth_method": "password", "password_encrypted": f"gAAAA{host}", "description": ""}


def verify_result(node_id: str, count: int = 1) -> dict:
    at = utcnow().isoformat() + "Z"
    differing = [{"id": f"s-{i:04d}", "here": server(i, f"10.3.0.{i % 250}"), "there": server(i, f"10.2.0.{i % 250}"),
                  "here_change": {"at": at, "actor": "alice", "origin": node_id, "epoch": 3, "seq": 1, "op": "upsert"},
                  "there_change": {"at": at, "actor": "bob", "origin": PEER_ID, "epoch": 2, "seq": 4, "op": "upsert"}}
                 for i in range(count)]
    return {"in_sync": False, "tables": [
        {"table": "servers", "rows_here": count, "rows_there": count, "in_sync": False, "differing": differing},
        {"table": "users", "rows_here": 1, "rows_there": 1, "in_sync": True, "differing": []}]}


def test_rows_are_named_and_compared_field_by_field():
    assert row_label("users", {"username": "alice"}, None, "u1") == "user alice"
    assert row_label("servers", {"name": "web1"}, {"name": "web-1"}, "s1") == "server web1 / web-1"
    assert row_label("access_rules", {"user_id": "x"}, None, "abcdef123456") == "access rule abcdef12"
    result = verify_result("n-here")
    view = reconciliation(result, here="node-a", there="node-b", node_names={"n-here": "node-a", PEER_ID: "node-b"})
    [row] = view.rows
    assert row.label == "server web0" and row.state == "differs"
    assert [f.name for f in row.differing] == ["host", "password_encrypted"]
    assert row.differing[1].here == "(secret)"  # never the stored value
    assert "port" in [f.name for f in row.equal]
    assert row.here_made.startswith("made on node-a, then master, by alice at ")
    assert row.there_made.startswith("made on node-b, then master, by bob at ")
    assert made_by(None, {}).startswith("made before the changes this node keeps")
    only_here = {**result["tables"][0]["differing"][0], "there": None}
    lonely = reconciliation({"in_sync": False, "tables": [{**result["tables"][0], "differing": [only_here]}]},
                            here="node-a", there="node-b", node_names={}).rows[0]
    assert lonely.state == "only on node-a" and lonely.there_made == "no such row"
    assert made_by({"at": "2020-01-02T03:04:05", "actor": "", "origin": "zz", "op": "delete"}, {}) == \
        "deleted on node zz, then master, by an unknown user at 2020-01-02 03:04:05 UTC"


def test_many_rows_are_filtered_and_paged():
    result = verify_result("n-here", count=120)
    view = reconciliation(result, here="a", there="b", node_names={})
    assert (view.matching, view.pages, len(view.rows)) == (120, 3, 50)
    assert reconciliation(result, here="a", there="b", node_names={}, page=3).rows[-1].label == "server web119"
    only = reconciliation(result, here="a", there="b", node_names={}, text="WEB11")
    assert only.matching == 11  # web11, web110 … web119
    assert reconciliation(result, here="a", there="b", node_names={}, table="users").matching == 0


def split_brain_verify(dbsession, this_node, peer, count=1) -> Job:
    peer.split_brain_since, peer.split_brain_detail = utcnow(), "this node holds 1 change(s) the other lacks"
    job = Job(kind="verify", state=JobState.DONE, result=json.dumps(verify_result(this_node.id, count)))
    dbsession.add(job)
    dbsession.commit()
    return job


def test_the_verify_page_reads_as_the_admin_knows_the_data(admin_app, dbsession, this_node, peer):
    job = split_brain_verify(dbsession, this_node, peer)
    page = admin_app.get(f"/jobs/{job.id}")
    banner = page.html.select_one("[data-banner=split-brain]").text
    assert "Split-brain between node-a (this node) and node-b" in banner and "stream" not in banner
    row = page.html.select_one("[data-row='servers:s-0000']")
    assert row.h3.text.startswith("server web0")
    assert [tr["data-field"] for tr in row.select("tr.differs")] == ["host", "password_encrypted"]
    assert row.select_one("details summary").text.strip().endswith("equal fields")
    assert "gAAAA" not in page.text
    words = row.select_one("[data-field=provenance]").text
    assert "made on node-a, then master, by alice at" in words and "made on node-b, then master, by bob" in words
    assert "stream" not in row.text


def test_one_choice_for_every_row_shown_then_the_losses_named(admin_app, dbsession, this_node, peer):
    job = split_brain_verify(dbsession, this_node, peer, count=60)
    page = admin_app.get(f"/jobs/{job.id}?page=2")
    shown = page.html.select_one("input[name=shown_rows]")["value"].split()
    assert len(shown) == 10 and page.html.select_one("[data-field=pager]") is not None
    form = {"csrf_token": csrf_from(page), "shown": "there", "shown_rows": " ".join(shown),
            "table:servers": "here", "row:servers:s-0055": "here"}
    review = admin_app.post(f"/cluster/resolve/{job.id}", form)
    lost = review.html.select("[data-field=lost] tbody tr")
    assert len(lost) == 60
    kept_there = [tr for tr in lost if "node-b's" in tr.text]
    assert len(kept_there) == 9  # the rows shown on page 2 but the one chosen by itself
    assert "server web50" in review.text and "10.2.0.55" in review.text
