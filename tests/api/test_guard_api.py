"""The API's command guard rules and "test a command": round trips through
the panel's services, 404, 422 per field with nothing changed (duplicates
and patterns that backtrack catastrophically included), 412 on a stale
ETag, keyset paging; the test changes nothing, so read-only tokens and the
slave answer it."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ezpyr.activity.models import ActivityEntry
from ezpyr.guard.models import CommandRule
from ezpyr.guard.services import GuardService
from tests.factories import make_user, make_user_group

MADE_UP = "00000000-0000-4000-8000-000000000000"
RULES = "/api/v1/guard-rules"
TEST = "/api/v1/guard/test"


@pytest.fixture
def ops(dbsession):
    return make_user_group(dbsession, "ops")


@pytest.fixture
def dev(dbsession):
    return make_user_group(dbsession, "dev")


def rules(dbsession) -> list[tuple[str, str, str]]:
    dbsession.expire_all()
    return sorted((r.user_group.name, r.pattern, r.description) for r in dbsession.scalars(select(CommandRule)))


def test_rules_round_trip_through_the_services(testapp, tokens, dbsession, ops, dev):
    made = testapp.post_json(RULES, {"user_group": "ops", "pattern": r"^rm\s+-rf", "description": "no wiping"},
                             headers=tokens.rw, status=201)
    body = made.json
    assert {k: body[k] for k in ("user_group", "pattern", "description")} == {
        "user_group": "ops", "pattern": r"^rm\s+-rf", "description": "no wiping"}
    assert made.headers["ETag"]
    assert [r.id for r in GuardService(dbsession).check(ops, "rm -rf /")] == [body["id"]]

    one = testapp.get(f"{RULES}/{body['id']}", headers=tokens.ro)
    assert one.json == body and one.headers["ETag"] == made.headers["ETag"]
    changed = testapp.patch_json(f"{RULES}/{body['id']}", {"user_group": "dev", "pattern": r"^rm\s+-r"},
                                 headers={**tokens.rw, "If-Match": one.headers["ETag"]})
    assert (changed.json["user_group"], changed.json["pattern"], changed.json["description"]) == (
        "dev", r"^rm\s+-r", "no wiping")
    assert changed.headers["ETag"] != one.headers["ETag"]
    assert rules(dbsession) == [("dev", r"^rm\s+-r", "no wiping")]
    # the first script's ETag is stale now: its edit is refused, nothing changes
    stale = testapp.patch_json(f"{RULES}/{body['id']}", {"description": "mine"},
                               headers={**tokens.rw, "If-Match": one.headers["ETag"]}, status=412)
    assert "ETag" in stale.json["error"]
    testapp.delete(f"{RULES}/{body['id']}", headers={**tokens.rw, "If-Match": one.headers["ETag"]}, status=412)
    assert rules(dbsession) == [("dev", r"^rm\s+-r", "no wiping")]
    gone = testapp.delete(f"{RULES}/{body['id']}", headers={**tokens.rw, "If-Match": changed.headers["ETag"]})
    assert gone.json == {"deleted": body["id"], "removed": {}}
    testapp.get(f"{RULES}/{body['id']}", headers=tokens.ro, status=404)
    assert rules(dbsession) == []
    entries = [(e.action, e.target, e.details) for e in
               dbsession.scalars(select(ActivityEntry).where(ActivityEntry.action.like("guard.%")))]
    via = "via API token script-rw"
    assert sorted(entries) == sorted([
        ("guard.create", r"ops: ^rm\s+-rf", via),
        ("guard.update", r"dev: ^rm\s+-r", rf"was ops: ^rm\s+-rf; {via}"),
        ("guard.delete", r"dev: ^rm\s+-r", via)])


def test_unknown_ids_are_404(testapp, tokens, ops):
    for method, body in (("GET", None), ("PATCH", {"description": "x"}), ("DELETE", None)):
        answer = testapp.request(f"{RULES}/{MADE_UP}", method=method, headers={**tokens.rw,
                                 "Content-Type": "application/json"},
                                 body=b'{"description": "x"}' if body else b"", expect_errors=True)
        assert answer.status_int == 404 and "no command rule" in answer.json["error"], method


@pytest.mark.parametrize("body, field, says", [
    ({"user_group": "ops", "pattern": "^rm "}, "pattern", "User group ops already has a rule with this pattern."),
    ({"user_group": "ops", "pattern": "(a|aa)+$"}, "pattern", "exponential time"),
    ({"user_group": "ops", "pattern": "rm ("}, "pattern", "This is not a valid regular expression"),
    ({"user_group": "ops", "pattern": "   "}, "pattern", "A pattern is required."),
    ({"user_group": "ops", "pattern": "x" * 501}, "pattern", "500"),
    ({"user_group": "nope", "pattern": "^halt"}, "user_group", "There is no user group named 'nope'."),
    ({"pattern": "^halt"}, "user_group", "required"),
    ({"user_group": "ops", "pattern": "^halt", "description": "d" * 2001}, "description", "2000"),
])
def test_invalid_input_is_422_per_field_and_changes_nothing(testapp, tokens, dbsession, ops, body, field, says):
    GuardService(dbsession).create(ops.id, "^rm ")
    dbsession.commit()
    answer = testapp.post_json(RULES, body, headers=tokens.rw, status=422)
    assert list(answer.json["fields"]) == [field] and says in answer.json["fields"][field], answer.json
    assert rules(dbsession) == [("ops", "^rm ", "")]


def test_a_patch_is_checked_as_a_new_rule_is(testapp, tokens, dbsession, ops, dev):
    service = GuardService(dbsession)
    service.create(ops.id, "^a")
    b = service.create(ops.id, "^b")
    dbsession.commit()
    for body, field in (({"pattern": "^a"}, "pattern"), ({"pattern": "(a|aa)+$"}, "pattern"),
                        ({"user_group": "nope"}, "user_group"), ({"pattern": None, "colour": 1}, "colour")):
        answer = testapp.patch_json(f"{RULES}/{b.id}", body, headers=tokens.rw, status=422)
        assert field in answer.json["fields"], answer.json
    assert rules(dbsession) == [("ops", "^a", ""), ("ops", "^b", "")]
    # the same pattern in another group is another rule
    testapp.patch_json(f"{RULES}/{b.id}", {"user_group": "dev", "pattern": "^a"}, headers=tokens.rw)
    assert rules(dbsession) == [("dev", "^a", ""), ("ops", "^a", "")]


def test_paging_with_limit_and_cursor(testapp, tokens, dbsession, ops, dev):
    service = GuardService(dbsession)
    for group in (ops, dev):
        for pattern in ("^c", "^a", "^b", "^RM", "^rm"):
            service.create(group.id, pattern)
    dbsession.commit()
    everything = testapp.get(RULES, {"limit": 500}, headers=tokens.ro).json["items"]
    assert [r["user_group"] for r in everything] == ["dev"] * 5 + ["ops"] * 5
    ids, cursor = [], None
    while True:
        page = testapp.get(RULES, {"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=tokens.ro).json
        ids += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert ids == [r["id"] for r in everything]
    assert [r["pattern"] for r in testapp.get(RULES, {"q": "^c"}, headers=tokens.ro).json["items"]] == ["^c", "^c"]
    for bad in ({"limit": 501}, {"cursor": "@@@"}, {"q": "x" * 201}):
        assert testapp.get(RULES, bad, headers=tokens.ro, status=422).json["fields"]


def test_testing_a_command(testapp, tokens, dbsession, passwords, ops):
    rule = GuardService(dbsession).create(ops.id, r"\bshutdown\b", "no shutdowns")
    make_user(dbsession, passwords, "alice", group=ops)
    make_user(dbsession, passwords, "loner")
    dbsession.commit()
    refused = testapp.post_json(TEST, {"command": "echo hi; shutdown now", "user": "alice"},
                                headers=tokens.ro).json  # a read: a read-only token may
    assert (refused["allowed"], refused["user_group"], refused["user"], refused["rules_checked"]) == (
        False, "ops", "alice", 1)
    assert [(r["id"], r["pattern"]) for r in refused["refused_by"]] == [(rule.id, r"\bshutdown\b")]
    allowed = testapp.post_json(TEST, {"command": "ls -la", "user_group": "ops"}, headers=tokens.ro).json
    assert (allowed["allowed"], allowed["user"], allowed["refused_by"]) == (True, None, [])
    loner = testapp.post_json(TEST, {"command": "shutdown", "user": "loner"}, headers=tokens.ro).json
    assert (loner["allowed"], loner["user_group"], loner["rules_checked"]) == (True, None, 0)
    for body, field in (({"command": "ls", "user": "ghost"}, "user"),
                        ({"command": "ls", "user_group": "nope"}, "user_group"),
                        ({"command": "  ", "user_group": "ops"}, "command"),
                        ({"command": "ls"}, "body"),
                        ({"command": "ls", "user": "alice", "user_group": "ops"}, "body")):
        answer = testapp.post_json(TEST, body, headers=tokens.ro, status=422)
        assert field in answer.json["fields"], (body, answer.json)
    actions = [e.action for e in dbsession.scalars(select(ActivityEntry))]
    assert "api.api.guard_test" in actions and not [a for a in actions if a.startswith("guard.")]


def test_the_slave_answers_a_test_and_refuses_a_rule(testapp, tokens, dbsession, this_node, ops):
    from ezpyr.cluster.models import ClusterPeer
    GuardService(dbsession).create(ops.id, "^halt")
    dbsession.commit()
    this_node.role = "slave"
    dbsession.add(ClusterPeer(id="11111111-2222-3333-4444-555555555555", name="node-b", address="10.0.0.1:6543",
                              broker_url_encrypted="", secret_encrypted="", role="master", epoch=1))
    dbsession.commit()
    answer = testapp.post_json(TEST, {"command": "halt", "user_group": "ops"}, headers=tokens.rw).json
    assert answer["allowed"] is False
    refused = testapp.post_json(RULES, {"user_group": "ops", "pattern": "^reboot"}, headers=tokens.rw, status=409)
    assert refused.json["master"] == "10.0.0.1:6543"
    assert dbsession.scalar(select(func.count()).select_from(CommandRule)) == 1
