"""The REST API: every endpoint refuses a missing, wrong, read-only (on
writes) or under-privileged token; round trips through the panel's own
services; 409 on the slave, 412 on a stale ETag, 422 per field, 404, 429,
paging; JSON on every answer; an activity entry naming the token."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import webtest
from sqlalchemy import func, select

from ezpyr import main
from ezpyr.activity.models import ActivityEntry
from ezpyr.api.framework import ENDPOINTS
from ezpyr.api.schemas import MeOut, utc_text
from ezpyr.meta import utcnow
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.servers.services import ServerService
from tests.conftest import app_settings

MADE_UP = "00000000-0000-4000-8000-000000000000"


def path_of(spec) -> str:
    return spec.pattern.replace("{id}", MADE_UP)


def call(app, spec, headers, body=None):
    return app.request(path_of(spec), method=spec.method, headers={**headers, "Content-Type": "application/json"},
                       body=json.dumps(body if body is not None else {}).encode() if spec.method != "GET" else b"",
                       expect_errors=True)


def test_every_endpoint_refuses_a_missing_or_wrong_token(testapp, tokens):
    for spec in ENDPOINTS:
        for headers in ({}, {"Authorization": "Bearer ezp_0000_nope"}, {"Authorization": "Basic eDp5"}):
            answer = call(testapp, spec, headers)
            assert answer.status_int == 401, (spec.route, spec.method, answer.status)
            assert answer.content_type == "application/json" and "error" in answer.json


def test_a_read_only_token_changes_nothing(testapp, tokens, dbsession):
    writes = [spec for spec in ENDPOINTS if spec.write]
    assert len(writes) >= 6
    for spec in writes:
        answer = call(testapp, spec, tokens.ro, {"name": "x", "host": "10.0.0.1"})
        assert answer.status_int == 403 and "read-only" in answer.json["error"], spec.route
    assert dbsession.scalars(select(Server)).first() is None


def test_a_token_has_at_most_its_owners_rights(testapp, tokens):
    for spec in ENDPOINTS:
        answer = call(testapp, spec, tokens.user, {"name": "x", "host": "10.0.0.1"})
        if spec.permission == "admin":
            assert answer.status_int == 403, (spec.route, spec.method)
    assert testapp.get("/api/v1/me", headers=tokens.user).json["username"] == "plainuser"


def test_suspended_owners_and_expired_tokens_stop_working(testapp, tokens, dbsession):
    assert testapp.get("/api/v1/servers", headers=tokens.rw).status_int == 200
    tokens.admin.suspended = True
    dbsession.commit()
    refused = testapp.get("/api/v1/servers", headers=tokens.rw, status=401)
    assert "suspended" in refused.json["error"]
    tokens.admin.suspended = False
    tokens.admin_token.expires_at = utcnow() - dt.timedelta(seconds=1)
    dbsession.commit()
    assert "expired" in testapp.get("/api/v1/servers", headers=tokens.rw, status=401).json["error"]


def test_servers_round_trip_through_the_panels_services(testapp, tokens, dbsession, secret_box):
    testapp.post_json("/api/v1/server-groups", {"name": "web"}, headers=tokens.rw, status=201)
    made = testapp.post_json("/api/v1/servers", {"name": "web1", "host": "10.0.0.1", "group": "web",
                                                 "auth_method": "password", "password": "s3cret"},
                             headers=tokens.rw, status=201)
    assert made.json["has_password"] is True and "password" not in made.json and made.headers["ETag"]
    server = ServerService(dbsession, secret_box).by_name("web1")
    assert server.group.name == "web" and secret_box.decrypt(server.password_encrypted) == "s3cret"
    one = testapp.get(f"/api/v1/servers/{made.json['id']}", headers=tokens.rw)
    changed = testapp.patch_json(f"/api/v1/servers/{made.json['id']}", {"port": 2222},
                                 headers={**tokens.rw, "If-Match": one.headers["ETag"]})
    assert changed.json["port"] == 2222 and changed.headers["ETag"] != one.headers["ETag"]
    dbsession.expire_all()
    assert dbsession.get(Server, made.json["id"]).port == 2222
    # the first script's ETag is stale now: its edit is refused, nothing changes
    stale = testapp.patch_json(f"/api/v1/servers/{made.json['id']}", {"port": 2200},
                               headers={**tokens.rw, "If-Match": one.headers["ETag"]}, status=412)
    assert "ETag" in stale.json["error"]
    dbsession.expire_all()
    assert dbsession.get(Server, made.json["id"]).port == 2222
    gone = testapp.delete(f"/api/v1/servers/{made.json['id']}", headers=tokens.rw)
    assert gone.json == {"deleted": "web1", "removed": {"access rules": 0}}
    assert testapp.get(f"/api/v1/servers/{made.json['id']}", headers=tokens.rw, status=404).json["error"]
    actions = [(e.action, e.details) for e in dbsession.scalars(select(ActivityEntry).order_by(ActivityEntry.at))]
    assert ("server.create", "via API token script-rw") in actions
    assert ("server.delete", "0 access rules removed; via API token script-rw") in actions
    assert any(a == "api.api.server" and d == "via API token script-rw" for a, d in actions)  # reads too


def test_a_servers_page_says_of_each_server_what_its_own_answer_says(testapp, tokens, dbsession):
    """The list reads plain rows (group joined, has_password computed in
    SQL), the single server an ORM object: both must write the same JSON."""
    testapp.post_json("/api/v1/server-groups", {"name": "web"}, headers=tokens.rw, status=201)
    for body in ({"name": "a-plain", "host": "10.0.0.1"},
                 {"name": "b-grouped", "host": "db.example.org", "port": 2200, "remote_user": "ops",
                  "group": "web", "description": "x"},
                 {"name": "c-password", "host": "10.0.0.3", "auth_method": "password", "password": "pw"}):
        testapp.post_json("/api/v1/servers", body, headers=tokens.rw, status=201)
    dbsession.add(Server(name="d-empty-password", host="10.0.0.4", password_encrypted=""))
    dbsession.commit()
    before = dbsession.scalar(select(func.count()).select_from(ActivityEntry))
    page = testapp.get("/api/v1/servers", {"limit": 3}, headers=tokens.ro).json
    page["items"] += testapp.get("/api/v1/servers", {"cursor": page["next_cursor"]}, headers=tokens.ro).json["items"]
    assert [s["name"] for s in page["items"]] == ["a-plain", "b-grouped", "c-password", "d-empty-password"]
    assert [(s["group"], s["has_password"]) for s in page["items"]] == [
        (None, False), ("web", False), (None, True), (None, False)]
    for item in page["items"]:
        assert item == testapp.get(f"/api/v1/servers/{item['id']}", headers=tokens.ro).json
    # every read is in the activity log, with the token's name
    entries = dbsession.scalars(select(ActivityEntry).order_by(ActivityEntry.id).offset(before)).all()
    assert [(e.action, e.details) for e in entries[:2]] == [("api.api.servers", "via API token script-ro")] * 2


@pytest.mark.parametrize("value", [dt.datetime(2026, 1, 2, 3, 4, 5, 6), dt.datetime(2026, 1, 2, 3, 4, 5),
                                   dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))])
def test_times_written_without_a_model_read_as_the_models_write_them(value):
    assert utc_text(value) == MeOut(username="u", admin=False, token="t", read_only=True,
                                    expires_at=value).model_dump(mode="json")["expires_at"]


def test_api_writes_are_captured(testapp, tokens, dbsession):
    """One API write is one outbox entry naming what it changed, signed by
    the token's owner, like the panel's forms."""
    from ezpyr.replication.models import OutboxEntry
    before = {e.id for e in dbsession.scalars(select(OutboxEntry))}
    made = testapp.post_json("/api/v1/servers", {"name": "web9", "host": "10.0.0.9"}, headers=tokens.rw,
                             status=201)
    testapp.delete(f"/api/v1/servers/{made.json['id']}", headers=tokens.rw)
    dbsession.commit()
    entries = [e for e in dbsession.scalars(select(OutboxEntry).order_by(OutboxEntry.id)) if e.id not in before]
    assert [sorted({(c["table"], c["op"]) for c in json.loads(e.changes)}) for e in entries] == [
        [("servers", "upsert")], [("servers", "delete")]]
    assert {e.actor for e in entries} == {"root_admin"}


def test_invalid_input_is_422_per_field_and_changes_nothing(testapp, tokens, dbsession):
    answer = testapp.post_json("/api/v1/servers", {"name": "bad name!", "host": "a b", "port": 70000},
                               headers=tokens.rw, status=422)
    assert set(answer.json["fields"]) == {"port"}  # the schema's check comes first
    answer = testapp.post_json("/api/v1/servers", {"name": "bad name!", "host": "a b"}, headers=tokens.rw,
                               status=422)
    assert {"name", "host"} <= set(answer.json["fields"])
    answer = testapp.post_json("/api/v1/servers", {"name": "w", "host": "h", "group": "nope"}, headers=tokens.rw,
                               status=422)
    assert "group" in answer.json["fields"]
    for body in (b"{not json", b"[1]", b'{"name": "x", "host": "h", "extra": 1}', b'{"port": 1e999}'):
        answer = testapp.post("/api/v1/servers", body, headers={**tokens.rw, "Content-Type": "application/json"},
                              expect_errors=True)
        assert answer.status_int in (400, 422) and answer.json["error"]
    assert dbsession.scalars(select(Server)).first() is None


def test_paging_with_limit_and_cursor(testapp, tokens, dbsession):
    dbsession.add_all(ServerGroup(name=f"g{i:02d}") for i in range(7))
    dbsession.commit()
    names, cursor = [], None
    while True:
        page = testapp.get("/api/v1/server-groups", {"limit": 3, **({"cursor": cursor} if cursor else {})},
                           headers=tokens.ro).json
        names += [g["name"] for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == [f"g{i:02d}" for i in range(7)]
    for bad in ({"limit": 0}, {"limit": "x"}, {"limit": 501}, {"cursor": "@@@"}, {"q": "x" * 201}):
        assert testapp.get("/api/v1/server-groups", bad, headers=tokens.ro, status=422).json["fields"]


def test_the_slave_refuses_every_api_write_with_the_masters_address(testapp, tokens, dbsession, this_node,
                                                                    engine):
    from ezpyr.cluster.models import ClusterPeer
    from tests.cluster.test_readonly import snapshot
    group = ServerGroup(name="web")
    dbsession.add(group)
    dbsession.commit()
    this_node.role = "slave"
    dbsession.add(ClusterPeer(id="11111111-2222-3333-4444-555555555555", name="node-b", address="10.0.0.1:6543",
                              broker_url_encrypted="", secret_encrypted="", role="master", epoch=1))
    dbsession.commit()
    before = snapshot(engine)
    writes = [spec for spec in ENDPOINTS if spec.write and not spec.node_local]  # node-local ones: allowed
    for spec in writes:
        path = spec.pattern.replace("{id}", group.id if "group" in spec.route else MADE_UP)
        answer = testapp.request(path, method=spec.method, headers={**tokens.rw, "Content-Type": "application/json"},
                                 body=json.dumps({"name": "web2", "host": "10.0.0.1"}).encode(), expect_errors=True)
        assert answer.status_int == 409, (spec.route, spec.method, answer.status, answer.text[:200])
        assert answer.json["master"] == "10.0.0.1:6543" and "Nothing was changed" in answer.json["error"]
    assert snapshot(engine) == before
    assert testapp.get("/api/v1/servers", headers=tokens.rw).status_int == 200  # reads still work


def test_too_many_calls_are_429_with_retry_after(engine, database_url, tokens):
    app = webtest.TestApp(main({}, **app_settings(database_url, **{"ezpyr.engine": engine,
                                                                   "ezpyr.api.rate_limit": "3"})))
    answers = [app.get("/api/v1/me", headers=tokens.ro, expect_errors=True) for _ in range(5)]
    assert [a.status_int for a in answers][:3] == [200, 200, 200]
    assert answers[-1].status_int == 429 and int(answers[-1].headers["Retry-After"]) >= 1
    # another token has its own allowance
    assert app.get("/api/v1/me", headers=tokens.user).status_int == 200


def test_no_html_on_the_api_ever(testapp, tokens):
    for path, status in (("/api/v1/nope", 404), ("/api/v2/x", 404)):
        answer = testapp.get(path, headers=tokens.rw, expect_errors=True)
        assert answer.content_type == "application/json", (path, answer.status, answer.text[:100])
    answer = testapp.request("/api/v1/servers", method="PUT", headers=tokens.rw, expect_errors=True)
    assert answer.content_type == "application/json" and answer.status_int in (404, 405)


def test_the_openapi_document_lists_exactly_the_endpoints(testapp):
    spec = testapp.get("/api/v1/openapi.json").json
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    assert documented == {(e.pattern, e.method) for e in ENDPOINTS}
    assert "ServerIn" in spec["components"]["schemas"]
    assert "GET" in testapp.get("/api/v1/docs").text


def test_export_is_csv_and_host_key_reset_forgets_the_pin(testapp, tokens, dbsession, secret_box):
    made = testapp.post_json("/api/v1/servers", {"name": "db1", "host": "10.0.0.9"}, headers=tokens.rw,
                             status=201).json
    csv_text = testapp.get("/api/v1/servers/export.csv", headers=tokens.ro)
    assert csv_text.content_type == "text/csv" and "db1,10.0.0.9" in csv_text.text
    dbsession.get(Server, made["id"]).host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    dbsession.commit()
    reset = testapp.post_json(f"/api/v1/servers/{made['id']}/host-key/reset", {}, headers=tokens.rw).json
    assert reset["server"] == "db1" and reset["was_pinned"].startswith("SHA256:")
    dbsession.expire_all()
    assert dbsession.get(Server, made["id"]).host_key is None
    again = testapp.post_json(f"/api/v1/servers/{made['id']}/host-key/reset", {}, headers=tokens.rw).json
    assert again["was_pinned"] is None
    actions = [e.action for e in dbsession.scalars(select(ActivityEntry))]
    assert actions.count("servers.host_key_reset") == 1 and "server.export" in actions
