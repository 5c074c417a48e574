"""The API's access rules and effective access: round trips through the
panel's services, 404, 422 per field with nothing changed, 412 on a stale
ETag, keyset paging."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ezpyr.access.models import AccessRule
from ezpyr.activity.models import ActivityEntry
from tests.access.conftest import make_server, make_server_group
from tests.factories import make_rule, make_user, make_user_group

MADE_UP = "00000000-0000-4000-8000-000000000000"
RULES = "/api/v1/access-rules"


@pytest.fixture
def world(dbsession, passwords):
    """ops (user group) has alice; bob is in no group; web (server group)
    holds web1; db1 is in no group."""
    ops = make_user_group(dbsession, "ops")
    alice = make_user(dbsession, passwords, "alice", group=ops)
    bob = make_user(dbsession, passwords, "bob")
    web = make_server_group(dbsession, "web")
    web1 = make_server(dbsession, "web1", group=web, host="10.0.0.1")
    db1 = make_server(dbsession, "db1", host="10.0.0.9")
    return {"ops": ops, "alice": alice, "bob": bob, "web": web, "web1": web1, "db1": db1}


def rule_count(dbsession) -> int:
    return dbsession.scalar(select(func.count()).select_from(AccessRule))


def test_rules_round_trip_through_the_services(testapp, tokens, dbsession, world):
    made = testapp.post_json(RULES, {"subject": {"user_group": "ops"}, "target": {"server_group": "web"}},
                             headers=tokens.rw, status=201)
    body = made.json
    assert body["subject"] == {"kind": "user_group", "id": world["ops"].id, "name": "ops"}
    assert body["target"] == {"kind": "server_group", "id": world["web"].id, "name": "web"}
    assert body["label"] == "user group ops → server group web" and made.headers["ETag"]
    rule = dbsession.get(AccessRule, body["id"])
    assert (rule.user_group_id, rule.server_group_id, rule.user_id, rule.server_id) == (
        world["ops"].id, world["web"].id, None, None)
    # a single user to a single server, named in another case
    single = testapp.post_json(RULES, {"subject": {"user": "bob"}, "target": {"server": "DB1"}},
                               headers=tokens.rw, status=201).json
    assert (single["subject"]["name"], single["target"]["name"]) == ("bob", "db1")

    one = testapp.get(f"{RULES}/{body['id']}", headers=tokens.ro)
    assert one.json == body and one.headers["ETag"] == made.headers["ETag"]
    listed = testapp.get(RULES, headers=tokens.ro).json
    assert [r["label"] for r in listed["items"]] == ["user group ops → server group web", "user bob → server db1"]
    assert listed["next_cursor"] is None
    assert [r["label"] for r in testapp.get(RULES, {"q": "bo"}, headers=tokens.ro).json["items"]] == [
        "user bob → server db1"]

    # the group is renamed meanwhile: the first ETag is stale, nothing is removed
    world["ops"].name = "operations"
    dbsession.commit()
    stale = testapp.delete(f"{RULES}/{body['id']}", headers={**tokens.rw, "If-Match": one.headers["ETag"]},
                           status=412)
    assert "ETag" in stale.json["error"]
    assert rule_count(dbsession) == 2
    fresh = testapp.get(f"{RULES}/{body['id']}", headers=tokens.ro)
    assert fresh.json["label"] == "user group operations → server group web"
    gone = testapp.delete(f"{RULES}/{body['id']}", headers={**tokens.rw, "If-Match": fresh.headers["ETag"]})
    assert gone.json == {"deleted": body["id"], "removed": {}}
    testapp.get(f"{RULES}/{body['id']}", headers=tokens.ro, status=404)
    dbsession.expire_all()
    assert dbsession.get(AccessRule, body["id"]) is None and rule_count(dbsession) == 1
    entries = [(e.action, e.target, e.details) for e in
               dbsession.scalars(select(ActivityEntry).where(ActivityEntry.action.like("access.%"))
                                 .order_by(ActivityEntry.at, ActivityEntry.id))]
    assert sorted(entries) == sorted([
        ("access.create", "user group ops → server group web", "via API token script-rw"),
        ("access.create", "user bob → server db1", "via API token script-rw"),
        ("access.delete", "user group operations → server group web", "via API token script-rw")])


def test_unknown_ids_are_404(testapp, tokens, world):
    for method in ("GET", "DELETE"):
        answer = testapp.request(f"{RULES}/{MADE_UP}", method=method, headers=tokens.rw, expect_errors=True)
        assert answer.status_int == 404 and "no access rule" in answer.json["error"]
    answer = testapp.get(f"/api/v1/users/{MADE_UP}/effective-access", headers=tokens.ro, status=404)
    assert "no user" in answer.json["error"]


@pytest.mark.parametrize("body, fields", [
    ({"subject": {"user_group": "nope"}, "target": {"server_group": "web"}}, {"subject"}),
    ({"subject": {"user": "carol"}, "target": {"server": "db1"}}, {"subject"}),
    ({"subject": {"user_group": "ops"}, "target": {"server": "nope"}}, {"target"}),
    ({"subject": {"user_group": "ops", "user": "alice"}, "target": {"server": "db1"}}, {"subject"}),
    ({"subject": {}, "target": {}}, {"subject", "target"}),
    ({"subject": {"user_group": "ops"}}, {"target"}),
    ({"subject": {"group": "ops"}, "target": {"server": "db1"}}, {"subject.group"}),
    ({"subject": {"user_group": "ops"}, "target": {"server": "db1"}, "extra": 1}, {"extra"}),
])
def test_invalid_input_is_422_per_field_and_changes_nothing(testapp, tokens, dbsession, world, body, fields):
    answer = testapp.post_json(RULES, body, headers=tokens.rw, status=422)
    assert set(answer.json["fields"]) == fields, answer.json
    assert rule_count(dbsession) == 0


def test_a_rule_that_exists_already_is_422(testapp, tokens, dbsession, world):
    make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    answer = testapp.post_json(RULES, {"subject": {"user_group": "ops"}, "target": {"server_group": "web"}},
                               headers=tokens.rw, status=422)
    assert "This rule already exists" in answer.json["error"] and answer.json["fields"] == {
        "body": answer.json["error"]}
    assert rule_count(dbsession) == 1


def test_paging_with_limit_and_cursor(testapp, tokens, dbsession, world, passwords):
    groups = [make_user_group(dbsession, f"team{i}") for i in range(3)]
    for group in groups:
        make_rule(dbsession, user_group=group, server_group=world["web"])
        make_rule(dbsession, user_group=group, server=world["db1"])
    make_rule(dbsession, user=world["alice"], server=world["web1"])
    make_rule(dbsession, user=world["bob"], server_group=world["web"])
    everything = testapp.get(RULES, {"limit": 500}, headers=tokens.ro).json["items"]
    assert len(everything) == 8
    labels, cursor = [], None
    while True:
        page = testapp.get(RULES, {"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=tokens.ro).json
        labels += [r["label"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert labels == [r["label"] for r in everything]
    assert labels[:2] == ["user group team0 → server group web", "user group team0 → server db1"]
    assert labels[-2:] == ["user alice → server web1", "user bob → server group web"]
    from ezpyr.api.framework import encode_cursor
    for bad in ({"limit": 0}, {"cursor": "@@@"}, {"cursor": encode_cursor(["x", "a", "0", "b", "c"])},
                {"cursor": encode_cursor(["0", "a"])}, {"q": "x" * 201}):
        assert testapp.get(RULES, bad, headers=tokens.ro, status=422).json["fields"]


def test_effective_access(testapp, tokens, dbsession, world):
    by_group = make_rule(dbsession, user_group=world["ops"], server_group=world["web"])
    own = make_rule(dbsession, user=world["alice"], server=world["db1"])
    path = f"/api/v1/users/{world['alice'].id}/effective-access"
    answer = testapp.get(path, headers=tokens.ro).json
    assert (answer["user_id"], answer["user"], answer["suspended"]) == (world["alice"].id, "alice", False)
    assert [(s["name"], s["host"], s["via"], s["rules"]) for s in answer["servers"]] == [
        ("db1", "10.0.0.9", ["user alice → server db1"], [own.id]),
        ("web1", "10.0.0.1", ["user group ops → server group web"], [by_group.id])]
    assert [s["name"] for s in testapp.get(path, {"q": "10.0.0.1"}, headers=tokens.ro).json["servers"]] == ["web1"]
    world["alice"].suspended = True
    dbsession.commit()
    answer = testapp.get(path, headers=tokens.ro).json
    assert answer["suspended"] is True and answer["servers"] == []
    bob = testapp.get(f"/api/v1/users/{world['bob'].id}/effective-access", headers=tokens.ro).json
    assert bob["servers"] == []
