"""The API's users, SSH keys, user groups, sign-in lockouts and tokens:
round trips read back through the panel's own services, 404, 422 per field
with nothing changed, 412 on a stale ETag, paging; each change recorded by
the service, naming the token."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ezpyr.accounts.models import AccountTask
from ezpyr.activity.models import ActivityEntry
from ezpyr.api.models import ApiToken
from ezpyr.auth.models import LoginThrottle
from ezpyr.meta import utcnow
from ezpyr.users.keys import UserKeyService
from ezpyr.users.models import User, UserGroup, UserKey
from ezpyr.users.services import UserService
from tests.api.test_api import MADE_UP
from tests.factories import PASSWORD, make_rule, make_user, make_user_group
from tests.users.conftest import ed25519_line

VIA = "via API token script-rw"


def activity(dbsession) -> list[tuple[str, str, str]]:
    dbsession.expire_all()
    return [(e.action, e.target, e.details)
            for e in dbsession.scalars(select(ActivityEntry).order_by(ActivityEntry.at, ActivityEntry.id))
            if not e.action.startswith("api.")]


def snapshot(dbsession) -> list:
    """What the users area holds (to show that a refusal changed nothing)."""
    dbsession.expire_all()
    return [sorted((u.username, u.role, u.full_name, u.email, u.group_id, u.suspended, u.password_hash)
                   for u in dbsession.scalars(select(User))),
            sorted((g.name, g.description) for g in dbsession.scalars(select(UserGroup))),
            sorted(k.fingerprint for k in dbsession.scalars(select(UserKey))),
            sorted(t.name for t in dbsession.scalars(select(ApiToken)))]


def lock(dbsession, username: str = "", address: str = "203.0.113.9", failures: int = 100) -> None:
    kind = "pair" if username else "address"
    key = f"pair:{username}|{address}" if username else f"address:{address}"
    dbsession.add(LoginThrottle(key=key, kind=kind, username=username, address=address, failures=failures,
                                window_started_at=utcnow()))
    dbsession.commit()


# -- users ----------------------------------------------------------------------------------

def test_users_round_trip_through_the_panels_services(testapp, tokens, dbsession, passwords):
    make_user_group(dbsession, "ops")
    made = testapp.post_json("/api/v1/users", {"username": "alice", "full_name": "Alice A",
                                               "email": "alice@example.org", "group": "ops"},
                             headers=tokens.rw, status=201).json
    generated, user = made["password"], made["user"]
    assert generated and user["group"] == "ops" and user["role"] == "user" and user["keys"] == 0
    assert "password_hash" not in str(made)
    stored = UserService(dbsession, passwords).by_username("alice")
    assert passwords.verify(stored.password_hash, generated) and stored.group.name == "ops"

    given = testapp.post_json("/api/v1/users", {"username": "bob", "password": "Bob-pass-2024", "role": "admin"},
                              headers=tokens.rw, status=201).json
    assert given["password"] is None  # a given password is never echoed
    assert passwords.verify(UserService(dbsession, passwords).by_username("bob").password_hash, "Bob-pass-2024")

    one = testapp.get(f"/api/v1/users/{user['id']}", headers=tokens.ro)
    assert one.json == user and one.headers["ETag"]
    changed = testapp.patch_json(f"/api/v1/users/{user['id']}", {"username": "alice2", "group": ""},
                                 headers={**tokens.rw, "If-Match": one.headers["ETag"]})
    assert changed.json["username"] == "alice2" and changed.json["group"] is None
    assert changed.json["full_name"] == "Alice A"  # what is not sent stays
    assert changed.headers["ETag"] != one.headers["ETag"]
    dbsession.expire_all()
    assert dbsession.get(User, user["id"]).username == "alice2"

    stale = testapp.patch_json(f"/api/v1/users/{user['id']}", {"full_name": "Lost update"},
                               headers={**tokens.rw, "If-Match": one.headers["ETag"]}, status=412)
    assert "ETag" in stale.json["error"]
    refused = testapp.delete(f"/api/v1/users/{user['id']}", headers={**tokens.rw, "If-Match": one.headers["ETag"]},
                             status=412)
    assert refused.json["error"]
    dbsession.expire_all()
    assert dbsession.get(User, user["id"]).full_name == "Alice A"

    UserKeyService(dbsession).add(dbsession.get(User, user["id"]), ed25519_line())
    dbsession.commit()
    gone = testapp.delete(f"/api/v1/users/{user['id']}", headers=tokens.rw).json
    assert gone == {"deleted": "alice2", "removed": {"SSH keys": 1, "access rules": 0}}
    assert testapp.get(f"/api/v1/users/{user['id']}", headers=tokens.rw, status=404).json["error"]
    assert UserService(dbsession, passwords).by_username("alice2") is None

    assert activity(dbsession) == [
        ("user.create", "alice", VIA), ("user.create", "bob", VIA),
        ("user.update", "alice2", f"renamed from alice; {VIA}"),
        ("user.delete", "alice2", f"1 SSH key and 0 access rules removed; {VIA}"),
    ]
    entry = dbsession.scalars(select(ActivityEntry).where(ActivityEntry.action == "user.create")).first()
    assert entry.username == "root_admin" and entry.user_id == tokens.admin.id


def test_a_user_made_over_the_api_gets_a_system_account(testapp, tokens, dbsession):
    """The account hook follows the users table whatever face wrote it:
    the API's user is queued for its system account like the panel's."""
    def requests():
        dbsession.expire_all()
        return [(t.target, t.state, json.loads(t.request)) for t in dbsession.scalars(
            select(AccountTask).where(AccountTask.username == "carol").order_by(AccountTask.id))]

    made = testapp.post_json("/api/v1/users", {"username": "carol"}, headers=tokens.rw, status=201).json
    assert requests() == [("this", "waiting", {"op": "ensure", "username": "carol", "keys": [], "locked": False})]
    testapp.post_json(f"/api/v1/users/{made['user']['id']}/suspend", {}, headers=tokens.rw)
    testapp.delete(f"/api/v1/users/{made['user']['id']}", headers=tokens.rw)
    assert [r for _, _, r in requests()][1:] == [
        {"op": "ensure", "username": "carol", "keys": [], "locked": True}, {"op": "remove", "username": "carol"}]


def test_bad_user_input_is_422_per_field_and_changes_nothing(testapp, tokens, dbsession, passwords):
    make_user(dbsession, passwords, "alice")
    before = snapshot(dbsession)
    for body, field in (
            ({"username": "Bad Name"}, "username"),
            ({"username": "x" * 33}, "username"),
            ({"username": "alice"}, "username"),  # taken
            ({"username": "dave", "password": "short"}, "password"),
            ({"username": "dave", "group": "nope"}, "group"),
            ({"username": "dave", "role": "root"}, "role"),
            ({"username": "dave", "email": "not-an-address"}, "email"),
            ({"username": "dave", "suspended": True}, "suspended"),  # not a field
            ({}, "username")):
        answer = testapp.post_json("/api/v1/users", body, headers=tokens.rw, status=422)
        assert field in answer.json["fields"], (body, answer.json)
    alice = UserService(dbsession, passwords).by_username("alice")
    for body, field in (({"username": "root_admin"}, "username"), ({"group": "nope"}, "group"),
                        ({"role": None, "email": "x@"}, "email")):
        answer = testapp.patch_json(f"/api/v1/users/{alice.id}", body, headers=tokens.rw, status=422)
        assert field in answer.json["fields"], (body, answer.json)
    answer = testapp.post_json(f"/api/v1/users/{alice.id}/reset-password", {"password": "short"},
                               headers=tokens.rw, status=422)
    assert "password" in answer.json["fields"]
    assert snapshot(dbsession) == before
    assert activity(dbsession) == []


def test_unknown_ids_are_404(testapp, tokens, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    for method, path in (("GET", f"/users/{MADE_UP}"), ("PATCH", f"/users/{MADE_UP}"),
                         ("DELETE", f"/users/{MADE_UP}"), ("POST", f"/users/{MADE_UP}/suspend"),
                         ("POST", f"/users/{MADE_UP}/reset-password"), ("GET", f"/users/{MADE_UP}/keys"),
                         ("POST", f"/users/{MADE_UP}/keys"), ("DELETE", f"/users/{alice.id}/keys/{MADE_UP}"),
                         ("GET", f"/user-groups/{MADE_UP}"), ("DELETE", f"/user-groups/{MADE_UP}"),
                         ("GET", f"/tokens/{MADE_UP}"), ("DELETE", f"/tokens/{MADE_UP}")):
        answer = testapp.request(f"/api/v1{path}", method=method, body=b"{}", expect_errors=True,
                                 headers={**tokens.rw, "Content-Type": "application/json"})
        assert answer.status_int == 404 and answer.json["error"], (method, path, answer.status)


def test_suspend_reinstate_reset_2fa_and_reset_password(testapp, tokens, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    alice.totp_enabled, alice.totp_secret = True, "encrypted"
    dbsession.commit()
    base = f"/api/v1/users/{alice.id}"
    assert testapp.post_json(f"{base}/suspend", {}, headers=tokens.rw).json["suspended"] is True
    again = testapp.post_json(f"{base}/suspend", {}, headers=tokens.rw, status=422)
    assert "already suspended" in again.json["error"]
    assert testapp.post_json(f"{base}/reinstate", {}, headers=tokens.rw).json["suspended"] is False
    assert testapp.post_json(f"{base}/reset-2fa", {}, headers=tokens.rw).json["totp_enabled"] is False
    generated = testapp.post_json(f"{base}/reset-password", {}, headers=tokens.rw).json
    assert generated["user"]["username"] == "alice" and len(generated["password"]) >= 20
    dbsession.expire_all()
    assert passwords.verify(dbsession.get(User, alice.id).password_hash, generated["password"])
    typed = testapp.post_json(f"{base}/reset-password", {"password": "Typed-pass-2024"}, headers=tokens.rw).json
    assert typed["password"] is None
    dbsession.expire_all()
    assert passwords.verify(dbsession.get(User, alice.id).password_hash, "Typed-pass-2024")

    # the token's owner is the actor: the same refusals as in the panel
    own = testapp.post_json(f"/api/v1/users/{tokens.admin.id}/suspend", {}, headers=tokens.rw, status=422)
    assert "last active admin" in own.json["error"] or "your own" in own.json["error"]
    demote = testapp.patch_json(f"/api/v1/users/{tokens.admin.id}", {"role": "user"}, headers=tokens.rw,
                                status=422)
    assert "role" in demote.json["fields"]
    assert testapp.delete(f"/api/v1/users/{tokens.admin.id}", headers=tokens.rw, status=422).json["error"]

    assert activity(dbsession) == [
        ("user.suspend", "alice", VIA), ("user.reinstate", "alice", VIA), ("user.reset_2fa", "alice", VIA),
        ("user.password_reset", "alice", f"generated; {VIA}"),
        ("user.password_reset", "alice", f"typed by an admin; {VIA}"),
    ]


def test_lockouts_are_listed_unlocked_and_released(testapp, tokens, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    refused = testapp.post_json(f"/api/v1/users/{alice.id}/unlock", {}, headers=tokens.rw, status=422)
    assert "not locked" in refused.json["error"]
    lock(dbsession, "alice", "198.51.100.7", failures=5)
    lock(dbsession, address="203.0.113.9")
    assert testapp.get(f"/api/v1/users/{alice.id}", headers=tokens.ro).json["locked"] is True
    held = testapp.get("/api/v1/lockouts", headers=tokens.ro).json
    assert [(h["kind"], h["username"], h["address"]) for h in held["items"]] == [
        ("address", "", "203.0.113.9"), ("pair", "alice", "198.51.100.7")]
    first = testapp.get("/api/v1/lockouts", {"limit": 1}, headers=tokens.ro).json
    rest = testapp.get("/api/v1/lockouts", {"limit": 1, "cursor": first["next_cursor"]}, headers=tokens.ro).json
    assert first["items"] + rest["items"] == held["items"] and rest["next_cursor"] is None

    assert testapp.post_json(f"/api/v1/users/{alice.id}/unlock", {}, headers=tokens.rw).json["locked"] is False
    assert testapp.post_json("/api/v1/lockouts/release", {"address": " 203.0.113.9 "},
                             headers=tokens.rw).json == {"released": "203.0.113.9"}
    assert testapp.get("/api/v1/lockouts", headers=tokens.ro).json == {"items": [], "next_cursor": None}
    for address in ("203.0.113.9", "", "a b"):
        answer = testapp.post_json("/api/v1/lockouts/release", {"address": address}, headers=tokens.rw,
                                   status=422)
        assert "address" in answer.json["fields"]
    assert activity(dbsession) == [("user.unlock", "alice", VIA), ("auth.release_address", "203.0.113.9", VIA)]


def test_paging_users_with_limit_cursor_and_search(testapp, tokens, dbsession, passwords):
    for name in ("dave", "carol", "erin", "bob"):
        make_user(dbsession, passwords, name, email=f"{name}@example.org")
    names, cursor = [], None
    while True:
        page = testapp.get("/api/v1/users", {"limit": 2, **({"cursor": cursor} if cursor else {})},
                           headers=tokens.ro).json
        names += [u["username"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["bob", "carol", "dave", "erin", "plainuser", "root_admin"]
    assert [u["username"] for u in testapp.get("/api/v1/users", {"q": "ar"}, headers=tokens.ro).json["items"]] \
        == ["carol"]
    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "@@@"}, {"q": "x" * 201}):
        assert testapp.get("/api/v1/users", bad, headers=tokens.ro, status=422).json["fields"]


# -- SSH keys ---------------------------------------------------------------------------------

def test_keys_round_trip(testapp, tokens, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    bob = make_user(dbsession, passwords, "bob")
    base = f"/api/v1/users/{alice.id}/keys"
    lines = [ed25519_line(f"k{i}@laptop") for i in range(3)]
    made = [testapp.post_json(base, {"public_key": line}, headers=tokens.rw, status=201).json for line in lines]
    assert [k["name"] for k in made] == ["k0@laptop", "k1@laptop", "k2@laptop"]
    assert all(k["fingerprint"].startswith("SHA256:") and k["type"] == "ssh-ed25519" for k in made)
    assert [k.fingerprint for k in UserKeyService(dbsession).keys_of(alice)] == [k["fingerprint"] for k in made]

    listed, cursor = [], None
    while True:
        page = testapp.get(base, {"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=tokens.ro).json
        listed += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed == made

    # a key of one user cannot be reached as another's
    testapp.delete(f"/api/v1/users/{bob.id}/keys/{made[0]['id']}", headers=tokens.rw, status=404)
    gone = testapp.delete(f"{base}/{made[0]['id']}", headers=tokens.rw).json
    assert gone == {"deleted": made[0]["fingerprint"], "removed": {}}
    assert len(UserKeyService(dbsession).keys_of(alice)) == 2

    before = snapshot(dbsession)
    for body, field in (({"public_key": "ssh-ed25519 AAAAnotakey"}, "public_key"),
                        ({"public_key": lines[1]}, "public_key"),  # registered already
                        ({"public_key": ed25519_line(), "name": "n" * 101}, "name"),
                        ({"name": "x"}, "public_key")):
        answer = testapp.post_json(base, body, headers=tokens.rw, status=422)
        assert field in answer.json["fields"], (body, answer.json)
    assert snapshot(dbsession) == before
    assert [(a, t) for a, t, _ in activity(dbsession)] == [("user.key_add", "alice")] * 3 + [
        ("user.key_delete", "alice")]
    assert activity(dbsession)[-1][2] == f"{made[0]['fingerprint']}; {VIA}"


# -- user groups ------------------------------------------------------------------------------

def test_user_groups_round_trip(testapp, tokens, dbsession, passwords):
    made = testapp.post_json("/api/v1/user-groups", {"name": "ops", "description": "Operations"},
                             headers=tokens.rw, status=201)
    group = made.json
    assert group == {"id": group["id"], "name": "ops", "description": "Operations", "members": 0}
    assert dbsession.get(UserGroup, group["id"]).description == "Operations"
    one = testapp.get(f"/api/v1/user-groups/{group['id']}", headers=tokens.ro)
    assert one.headers["ETag"] == made.headers["ETag"]
    renamed = testapp.patch_json(f"/api/v1/user-groups/{group['id']}", {"name": "operators"},
                                 headers={**tokens.rw, "If-Match": one.headers["ETag"]}).json
    assert renamed["name"] == "operators" and renamed["description"] == "Operations"
    testapp.patch_json(f"/api/v1/user-groups/{group['id']}", {"description": "lost"},
                       headers={**tokens.rw, "If-Match": one.headers["ETag"]}, status=412)
    dbsession.expire_all()
    assert dbsession.get(UserGroup, group["id"]).description == "Operations"

    make_user_group(dbsession, "OTHER")
    member = make_user(dbsession, passwords, "alice", group=dbsession.get(UserGroup, group["id"]))
    before = snapshot(dbsession)
    for body, field in (({"name": "other"}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name")):
        answer = testapp.post_json("/api/v1/user-groups", body, headers=tokens.rw, status=422)
        assert field in answer.json["fields"], (body, answer.json)
    answer = testapp.patch_json(f"/api/v1/user-groups/{group['id']}", {"name": "Other"}, headers=tokens.rw,
                                status=422)
    assert "name" in answer.json["fields"]
    full = testapp.delete(f"/api/v1/user-groups/{group['id']}", headers=tokens.rw, status=422)
    assert "still has 1 member" in full.json["error"]
    assert snapshot(dbsession) == before

    testapp.patch_json(f"/api/v1/users/{member.id}", {"group": ""}, headers=tokens.rw)
    make_rule(dbsession, user_group=dbsession.get(UserGroup, group["id"]),
              server_group=_server_group(dbsession))
    gone = testapp.delete(f"/api/v1/user-groups/{group['id']}", headers=tokens.rw).json
    assert gone == {"deleted": "operators", "removed": {"access rules": 1, "command rules": 0}}
    assert dbsession.get(UserGroup, group["id"]) is None
    assert [(a, t, d) for a, t, d in activity(dbsession) if a.startswith("user_group.")] == [
        ("user_group.create", "ops", VIA), ("user_group.update", "operators", f"renamed from ops; {VIA}"),
        ("user_group.delete", "operators", f"1 access rule and 0 command rules removed; {VIA}")]


def _server_group(dbsession):
    from ezpyr.servers.models import ServerGroup
    group = ServerGroup(name="web")
    dbsession.add(group)
    dbsession.commit()
    return group


def test_paging_user_groups(testapp, tokens, dbsession):
    for i in range(5):
        make_user_group(dbsession, f"team{i}")
    first = testapp.get("/api/v1/user-groups", {"limit": 3}, headers=tokens.ro).json
    rest = testapp.get("/api/v1/user-groups", {"limit": 3, "cursor": first["next_cursor"]}, headers=tokens.ro).json
    assert [g["name"] for g in first["items"] + rest["items"]] == [f"team{i}" for i in range(5)]
    assert rest["next_cursor"] is None
    assert [g["name"] for g in testapp.get("/api/v1/user-groups", {"q": "m3"}, headers=tokens.ro).json["items"]] \
        == ["team3"]


# -- API tokens -------------------------------------------------------------------------------

def test_tokens_are_listed_and_revoked_but_not_made(testapp, tokens, dbsession):
    listed = testapp.get("/api/v1/tokens", headers=tokens.ro).json["items"]
    assert [(t["name"], t["owner"], t["read_only"]) for t in listed] == [
        ("script-ro", "root_admin", True), ("script-rw", "root_admin", False), ("user-token", "plainuser", False)]
    assert all("secret" not in str(t) and t["prefix"].startswith("ezp_") for t in listed)
    page = testapp.get("/api/v1/tokens", {"limit": 2}, headers=tokens.ro).json
    assert len(page["items"]) == 2 and page["next_cursor"]

    made = testapp.request("/api/v1/tokens", method="POST", body=b'{"name": "x", "owner": "root_admin"}',
                           headers={**tokens.rw, "Content-Type": "application/json"}, expect_errors=True)
    assert made.status_int in (404, 405) and made.content_type == "application/json"

    user_token = listed[2]
    one = testapp.get(f"/api/v1/tokens/{user_token['id']}", headers=tokens.ro)
    assert one.json == user_token and one.headers["ETag"]
    assert testapp.delete(f"/api/v1/tokens/{user_token['id']}", headers=tokens.rw).json == {
        "deleted": "user-token", "removed": {}}
    testapp.get("/api/v1/me", headers=tokens.user, status=401)  # it no longer works
    # a token may revoke itself; then it is gone too
    own = tokens.admin_token.id
    testapp.delete(f"/api/v1/tokens/{own}", headers=tokens.rw)
    testapp.get("/api/v1/me", headers=tokens.rw, status=401)
    assert activity(dbsession) == [("token.revoke", "user-token", VIA), ("token.revoke", "script-rw", VIA)]


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/user-groups", "/api/v1/tokens", "/api/v1/lockouts"])
def test_lists_refuse_a_plain_users_token(testapp, tokens, path):
    assert testapp.get(path, headers=tokens.user, status=403).json["error"]


def test_a_read_only_token_reads_users_but_changes_none(testapp, tokens, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    before = snapshot(dbsession)
    assert testapp.get(f"/api/v1/users/{alice.id}", headers=tokens.ro).json["username"] == "alice"
    for method, path, body in (("POST", "/users", {"username": "x"}), ("POST", f"/users/{alice.id}/suspend", {}),
                               ("POST", f"/users/{alice.id}/reset-password", {}),
                               ("POST", f"/users/{alice.id}/keys", {"public_key": ed25519_line()}),
                               ("DELETE", f"/users/{alice.id}", None)):
        answer = testapp.request(f"/api/v1{path}", method=method, expect_errors=True,
                                 body=b"" if body is None else json.dumps(body).encode(),
                                 headers={**tokens.ro, "Content-Type": "application/json"})
        assert answer.status_int == 403 and "read-only" in answer.json["error"]
    assert snapshot(dbsession) == before
    assert passwords.verify(dbsession.get(User, alice.id).password_hash, PASSWORD)
