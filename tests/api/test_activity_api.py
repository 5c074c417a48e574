"""The API's activity log (read only): newest first, paged with limit and
cursor, filtered by user and action, the same entries as the page."""
from __future__ import annotations

import datetime as dt

from ezpyr.activity.models import ActivityEntry
from ezpyr.api.framework import encode_cursor

URL = "/api/v1/activity"
T0 = dt.datetime(2026, 1, 2, 3, 4, 5)


def entries(dbsession):
    """Seven entries a second apart (alice's odd ones), and three at one instant."""
    dbsession.add_all(ActivityEntry(at=T0 + dt.timedelta(seconds=i), username="alice" if i % 2 else "bob",
                                    action="server.create" if i < 4 else "server.delete", target=f"web{i}",
                                    details="", remote_addr="192.0.2.1", node_name="node-a") for i in range(7))
    dbsession.add_all(ActivityEntry(at=T0 - dt.timedelta(seconds=1), username="carol", action="user.create",
                                    target=f"same{i}", node_name="node-a") for i in range(3))
    dbsession.commit()


def walk(testapp, headers, **query) -> list[dict]:
    items, cursor = [], None
    while True:
        page = testapp.get(URL, {**query, **({"cursor": cursor} if cursor else {})}, headers=headers).json
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_newest_first_page_by_page(testapp, tokens, dbsession):
    entries(dbsession)
    every = [e for e in walk(testapp, tokens.ro, limit=3) if e["username"] != "root_admin"]
    assert [e["target"] for e in every] == [f"web{i}" for i in range(6, -1, -1)] + ["same2", "same1", "same0"]
    assert every[0] == {"id": every[0]["id"], "at": "2026-01-02T03:04:11Z", "username": "bob",
                        "action": "server.delete", "target": "web6", "details": "", "remote_addr": "192.0.2.1",
                        "node": "node-a"}


def test_filters_by_user_and_action(testapp, tokens, dbsession):
    entries(dbsession)
    alice = walk(testapp, tokens.ro, username="alice", limit=2)
    assert [e["target"] for e in alice] == ["web5", "web3", "web1"]
    both = walk(testapp, tokens.ro, username="alice", action="server.create")
    assert [e["target"] for e in both] == ["web3", "web1"]
    assert testapp.get(URL, {"username": "nobody"}, headers=tokens.ro).json == {"items": [], "next_cursor": None}


def test_reads_are_logged_too(testapp, tokens, dbsession):
    testapp.get(URL, headers=tokens.ro)
    logged = testapp.get(URL, {"action": "api.api.activity"}, headers=tokens.ro).json["items"]
    assert logged and logged[0]["username"] == "root_admin" and logged[0]["details"] == "via API token script-ro"


def test_bad_paging_and_filters_are_422(testapp, tokens, dbsession):
    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "@@@"}, {"cursor": encode_cursor(["yesterday", "1"])},
                {"cursor": encode_cursor([T0.isoformat(), "x"])}, {"cursor": encode_cursor([T0.isoformat(), "9" * 40])},
                {"username": "x" * 65}, {"action": "a\x01"}):
        answer = testapp.get(URL, bad, headers=tokens.ro, status=422)
        assert answer.json["fields"], bad
    assert testapp.get(URL, headers=tokens.user, status=403).json["error"]  # admins only
