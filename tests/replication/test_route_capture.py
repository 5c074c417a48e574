"""Every mutating route of the panel is captured: one successful POST (one
committed transaction) adds exactly one outbox entry naming the tables it
changed, signed by the signed-in user, next in this node's stream. Refused
input, and writes to node-local tables only, add none.

ROUTE_CASES holds one happy path per route that changes replicated data;
NO_REPLICATED_CHANGE lists, with the reason, every other route that takes a
POST. A new route that takes a POST and is in neither fails
``test_every_route_that_takes_a_post_is_accounted_for``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

import pyotp
import pytest
import webtest
from sqlalchemy import select

from ezpyr.activity.models import ActivityEntry
from ezpyr.auth.models import EndedSession, LoginThrottle
from ezpyr.guard.services import GuardService
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.models import OutboxEntry
from ezpyr.users.models import User
from ezpyr.users.services import UserService
from tests.auth.conftest import code_now, code_step, enable_totp, password_step, wrong_code
from tests.auth.test_views import enrolment_secret
from tests.cluster.test_readonly import mutating_routes
from tests.factories import (
    PASSWORD, csrf_from, login, make_admin, make_rule, make_user, make_user_group, post,
)
from tests.servers.conftest import HEADER, follow_import, make_server, make_server_group, server_form, upload
from tests.settings.test_views import GOOD, save
from tests.users.conftest import ed25519_line, make_key
from tests.users.test_users_views import NEW_PASSWORD, edit_form, user_form

ZERO_ID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def node(dbsession):
    """This node's identity: with it, change capture is on. A standalone
    node (what ezpyr-init makes), at an epoch other than the default so that
    the test sees the entry carries the node's own."""
    node = NodeIdentity(name="node-test", address="127.0.0.1:6543", role="standalone", epoch=3)
    dbsession.add(node)
    dbsession.commit()
    return node


# -- reading the outbox --------------------------------------------------------------

def outbox(dbsession) -> list[OutboxEntry]:
    dbsession.commit()  # end the read snapshot: see what the app committed since
    dbsession.expire_all()
    return list(dbsession.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


def changed(entry: OutboxEntry) -> set[tuple[str, str]]:
    """(table, op) of every row change in the entry."""
    return {(c["table"], c["op"]) for c in json.loads(entry.changes)}


def new_entries(dbsession, before: list[OutboxEntry]) -> list[OutboxEntry]:
    seen = {e.id for e in before}
    return [e for e in outbox(dbsession) if e.id not in seen]


# -- the happy path of every mutating route ------------------------------------------

@dataclass
class Ctx:
    app: object  # the signed-in WebTest browser
    db: object
    passwords: object
    secret_box: object
    user: object  # who is signed in


@dataclass
class Case:
    app: str  # "admin" or "user": which signed-in browser the route needs
    run: Callable[[Ctx], set[tuple[str, str]]]


ROUTE_CASES: dict[str, Case] = {}


def case(route: str, app: str = "admin"):
    """Register the happy path of ``route``: it arranges what the route
    needs, POSTs, and returns the (table, op) pairs the entry must hold."""
    def register(fn):
        assert route not in ROUTE_CASES, route
        ROUTE_CASES[route] = Case(app, fn)
        return fn
    return register


def ok(res, status=303):
    assert res.status_int == status, res.text[:2000]
    return res


def alice(c: Ctx, **fields):
    return make_user(c.db, c.passwords, "alice", **fields)


# user groups

@case("user_groups.new")
def _(c):
    ok(post(c.app, "/user-groups/new", {"name": "ops", "description": "Operations"}))
    return {("user_groups", "upsert")}


@case("user_groups.edit")
def _(c):
    group = make_user_group(c.db, "ops")
    ok(post(c.app, f"/user-groups/{group.id}/edit", {"name": "operations", "description": ""}))
    return {("user_groups", "upsert")}


@case("user_groups.delete")
def _(c):
    group = make_user_group(c.db, "ops")
    make_rule(c.db, user_group=group, server_group=make_server_group(c.db, "web"))
    GuardService(c.db).create(group.id, r"^rm\s+-rf")
    c.db.commit()
    ok(post(c.app, f"/user-groups/{group.id}/delete"))
    return {("user_groups", "delete"), ("access_rules", "delete"), ("command_rules", "delete")}


# users

@case("users.new")
def _(c):
    group = make_user_group(c.db, "ops")
    ok(post(c.app, "/users/new", user_form(group_id=group.id)))
    return {("users", "upsert")}


@case("users.edit")
def _(c):
    user = alice(c)
    ok(post(c.app, f"/users/{user.id}/edit", edit_form(user, full_name="Alice Liddell")))
    return {("users", "upsert")}


@case("users.delete")
def _(c):
    user = alice(c)
    make_key(c.db, user)
    make_rule(c.db, user=user, server_group=make_server_group(c.db, "web"))
    ok(post(c.app, f"/users/{user.id}/delete"))
    return {("users", "delete"), ("user_keys", "delete"), ("access_rules", "delete")}


@case("users.suspend")
def _(c):
    user = alice(c)
    ok(post(c.app, f"/users/{user.id}/suspend", form_url=f"/users/{user.id}/edit"))
    return {("users", "upsert")}


@case("users.reinstate")
def _(c):
    user = alice(c)
    UserService(c.db, c.passwords).suspend(user)
    c.db.commit()
    ok(post(c.app, f"/users/{user.id}/reinstate", form_url=f"/users/{user.id}/edit"))
    return {("users", "upsert")}


@case("users.reset_2fa")
def _(c):
    user = alice(c)
    enable_totp(c.db, c.secret_box, user)
    ok(post(c.app, f"/users/{user.id}/reset-2fa", form_url=f"/users/{user.id}/edit"))
    return {("users", "upsert")}


@case("users.password")
def _(c):
    user = alice(c)
    ok(post(c.app, f"/users/{user.id}/password",
            {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}))
    return {("users", "upsert")}


@case("users.key_add")
def _(c):
    user = alice(c)
    ok(post(c.app, f"/users/{user.id}/keys/add", {"public_key": ed25519_line(), "name": ""},
            form_url=f"/users/{user.id}/keys"))
    return {("user_keys", "upsert")}


@case("users.key_delete")
def _(c):
    user = alice(c)
    key = make_key(c.db, user)
    ok(post(c.app, f"/users/{user.id}/keys/{key.id}/delete", form_url=f"/users/{user.id}/keys"))
    return {("user_keys", "delete")}


# the signed-in user's own profile

@case("profile.password", app="user")
def _(c):
    ok(post(c.app, "/profile/password", {"current_password": PASSWORD,
                                         "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}))
    return {("users", "upsert")}


@case("profile.key_add", app="user")
def _(c):
    ok(post(c.app, "/profile/keys/add", {"public_key": ed25519_line(), "name": "desk"},
            form_url="/profile"))
    return {("user_keys", "upsert")}


@case("profile.key_delete", app="user")
def _(c):
    key = make_key(c.db, c.user)
    ok(post(c.app, f"/profile/keys/{key.id}/delete", form_url="/profile"))
    return {("user_keys", "delete")}


@case("profile.totp", app="user")
def _(c):
    # enrolment stores the secret in users.totp_secret: replicated
    page = c.app.get("/profile/2fa")
    code = pyotp.TOTP(enrolment_secret(page)).now()
    ok(c.app.post("/profile/2fa", {"code": code, "csrf_token": csrf_from(page)}))
    return {("users", "upsert")}


@case("profile.totp_disable", app="user")
def _(c):
    secret = enable_totp(c.db, c.secret_box, c.user)
    ok(post(c.app, "/profile/2fa/disable", {"code": code_now(secret)}, form_url="/profile/2fa"))
    return {("users", "upsert")}


# servers and server groups

@case("server_groups.new")
def _(c):
    ok(post(c.app, "/server-groups/new", {"name": "web", "description": "front ends"}))
    return {("server_groups", "upsert")}


@case("server_groups.edit")
def _(c):
    group = make_server_group(c.db, "web")
    ok(post(c.app, f"/server-groups/{group.id}/edit", {"name": "www", "description": ""}))
    return {("server_groups", "upsert")}


@case("server_groups.delete")
def _(c):
    group = make_server_group(c.db, "web")
    make_server(c.db, c.secret_box, "web1", group=group)
    make_rule(c.db, user_group=make_user_group(c.db, "ops"), server_group=group)
    ok(post(c.app, f"/server-groups/{group.id}/delete"))
    # the group's servers stay, without a group
    return {("server_groups", "delete"), ("servers", "upsert"), ("access_rules", "delete")}


@case("servers.new")
def _(c):
    group = make_server_group(c.db, "web")
    ok(post(c.app, "/servers/new", server_form(group_id=group.id)))
    return {("servers", "upsert")}


@case("servers.edit")
def _(c):
    server = make_server(c.db, c.secret_box, "web1")
    ok(post(c.app, f"/servers/{server.id}/edit", server_form(name="web1", host="10.0.0.5")))
    return {("servers", "upsert")}


@case("servers.delete")
def _(c):
    server = make_server(c.db, c.secret_box, "web1")
    make_rule(c.db, user_group=make_user_group(c.db, "ops"), server=server)
    ok(post(c.app, f"/servers/{server.id}/delete"))
    return {("servers", "delete"), ("access_rules", "delete")}


@case("gateway.host_key_reset")
def _(c):
    server = make_server(c.db, c.secret_box, "web1")
    server.host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    c.db.commit()
    ok(post(c.app, f"/servers/{server.id}/host-key/reset"))
    return {("servers", "upsert")}


# API tokens (replicated: a token works on both nodes)

@case("tokens.new")
def _(c):
    admin = c.db.scalars(select(User).where(User.role == "admin")).first()
    ok(post(c.app, "/api-tokens/new", {"name": "sync", "owner": admin.id, "read_only": "y"}), 200)
    return {("api_tokens", "upsert")}


@case("tokens.revoke")
def _(c):
    from ezpyr.api.tokens import TokenService
    admin = c.db.scalars(select(User).where(User.role == "admin")).first()
    token, _secret = TokenService(c.db).create("sync", admin)
    c.db.commit()
    ok(post(c.app, f"/api-tokens/{token.id}/revoke"))
    return {("api_tokens", "delete")}


@case("servers.import")
def _(c):
    make_server_group(c.db, "web")
    res = ok(upload(c.app, HEADER + "a1,a1.example.net,22,root,key,web,\n"
                                    "a2,10.0.0.2,2222,deploy,key,,second\n"))
    assert "2 servers added" in follow_import(c.app, res, c.db.get_bind())  # the job's
    return {("servers", "upsert")}  # both rows, one entry


# access rules and command rules

@case("access.new")
def _(c):
    ops, web = make_user_group(c.db, "ops"), make_server_group(c.db, "web")
    ok(post(c.app, "/access/new", {"subject": f"ug:{ops.id}", "target": f"sg:{web.id}"}))
    return {("access_rules", "upsert")}


@case("access.delete")
def _(c):
    rule = make_rule(c.db, user_group=make_user_group(c.db, "ops"),
                     server_group=make_server_group(c.db, "web"))
    ok(post(c.app, f"/access/{rule.id}/delete"))
    return {("access_rules", "delete")}


def command_rule(c: Ctx):
    rule = GuardService(c.db).create(make_user_group(c.db, "ops").id, r"^rm\s+-rf")
    c.db.commit()
    return rule


@case("guard.new")
def _(c):
    ops = make_user_group(c.db, "ops")
    ok(post(c.app, "/command-guard/new", {"user_group_id": ops.id, "pattern": r"^shutdown\b",
                                          "description": "no shutdowns"}))
    return {("command_rules", "upsert")}


@case("guard.edit")
def _(c):
    rule = command_rule(c)
    ok(post(c.app, f"/command-guard/{rule.id}/edit", {
        "user_group_id": rule.user_group_id, "pattern": r"^rm\s+-r", "description": "changed"}))
    return {("command_rules", "upsert")}


@case("guard.delete")
def _(c):
    rule = command_rule(c)
    ok(post(c.app, f"/command-guard/{rule.id}/delete"))
    return {("command_rules", "delete")}


# settings

@case("settings.edit")
def _(c):
    ok(save(c.app, session_timeout_minutes="45"))
    return {("settings", "upsert")}


# Routes that take a POST but change no replicated data. Each says why.
NO_REPLICATED_CHANGE = {
    # pages that render the same for any method: a POST only reads
    "home": "redirects to the landing page",
    "access.list": "list page",
    "access.effective": "read-only report",
    "activity.list": "list page (the activity log is node-local anyway)",
    "activity.export": "download; records only a node-local activity entry",
    "gateway.key": "shows the key",
    "gateway.key_download": "download",
    "guard.list": "list page",
    "guard.test": "tries a command against the rules; stores nothing",
    "profile.view": "shows the profile",
    "profile.servers": "read-only report",
    "server_groups.list": "list page",
    "servers.list": "list page",
    "servers.export": "download; records only a node-local activity entry",
    "user_groups.list": "list page",
    "users.list": "list page",
    "users.keys": "list page (adding and deleting keys have their own routes)",
    # node-local writes only
    "users.unlock": "clears the node-local login_throttle rows",
    "users.release_address": "clears the node-local login_throttle rows",
    "auth.login": "login_throttle, ended_sessions and the activity log are node-local",
    "auth.logout": "ended_sessions and the activity log are node-local",
    "auth.totp": "login_throttle, totp_last_steps and the activity log are node-local",
    # the cluster page: each node's own state and background jobs
    "cluster.view": "status page",
    "cluster.add": "starts a node-local job; the copy to the new node runs outside the request",
    "cluster.connect": "node-local link state",
    "cluster.disconnect": "node-local link state",
    "cluster.verify": "starts a node-local job that compares tables",
    "cluster.make_master": "node roles and jobs are node-local",
    "cluster.resolve": ("the preview only reads; the confirmation starts a node-local job, which writes "
                        "its changes as one outbox entry itself (record_changes; see the reference "
                        "story in tests/functional/test_replication_cluster.py)"),
    # system accounts and the gateway's sessions: node-local tables
    "accounts.reconcile": "starts a node-local job; account tasks are node-local",
    "accounts.reset_fingerprint": "the pinned SSH host keys of the nodes are node-local",
    "gateway.sessions": "list page (gateway sessions are node-local)",
    "gateway.session": "session page",
    "gateway.session_cast": "download of a recording",
    "gateway.session_terminate": "flags a node-local session row",
    # jobs are node-local
    "jobs.view": "job page",
    "jobs.status": "job progress (JSON)",
}
# The node-to-node API (signed by the other node): what it writes is this
# node's own bookkeeping, or the peer's changes applied as a replay, which
# by design is not captured again.
# The REST API authenticates with bearer tokens, not this test's session:
# tests/api/test_api.py::test_api_writes_are_captured checks its writes.
NO_REPLICATED_CHANGE_PREFIXES = ("cluster.api.", "api.")


def routes_taking_post(app) -> dict[str, str]:
    """route name -> path, for every route with a view that accepts POST
    (also those mutating_routes() leaves out: sign-in pages and node-local
    buttons, which the read-only guard lets through on a slave)."""
    introspector = app.registry.introspector
    routes = {i["introspectable"]["name"]: i["introspectable"]["pattern"]
              for i in introspector.get_category("routes")}
    found = {}
    for item in introspector.get_category("views"):
        view = item["introspectable"]
        name, methods = view["route_name"], view["request_methods"]
        if not name or name not in routes or name.startswith("__"):
            continue
        if methods is None or "POST" in methods:
            found[name] = "/" + re.sub(r"\{[^}]+\}", ZERO_ID, routes[name]).lstrip("/")
    return found


def is_allow_listed(name: str) -> bool:
    return name in NO_REPLICATED_CHANGE or name.startswith(NO_REPLICATED_CHANGE_PREFIXES)


def test_every_route_that_takes_a_post_is_accounted_for(wsgi_app):
    names = set(routes_taking_post(wsgi_app))
    guarded = {name for name, _ in mutating_routes(wsgi_app)}
    assert guarded and guarded <= names
    missing = sorted(n for n in names if n not in ROUTE_CASES and not is_allow_listed(n))
    assert not missing, (
        f"routes that take a POST with no capture case: {missing}. Add a case to ROUTE_CASES "
        "(or, if the route changes no replicated data, to NO_REPLICATED_CHANGE with the reason)."
    )


def test_the_lists_name_only_real_routes_and_do_not_overlap(wsgi_app):
    names = set(routes_taking_post(wsgi_app))
    assert set(ROUTE_CASES) <= names
    assert set(NO_REPLICATED_CHANGE) <= names
    assert not set(ROUTE_CASES) & set(NO_REPLICATED_CHANGE)
    # every route the read-only guard refuses on a slave changes data or is listed here
    for name, _ in mutating_routes(wsgi_app):
        assert name in ROUTE_CASES or name in NO_REPLICATED_CHANGE, name


class WatchedApp:
    """The signed-in browser, noting the outbox just before the case's first
    request: rows the case arranged (committed, so captured too) are not
    counted, the POST's entry is."""

    def __init__(self, app, dbsession):
        self.app, self.dbsession, self.before = app, dbsession, None

    def _note(self):
        if self.before is None:
            self.before = outbox(self.dbsession)

    def get(self, *args, **kwargs):
        self._note()
        return self.app.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        self._note()
        return self.app.post(*args, **kwargs)


def signed_in(request, which: str):
    """(browser, user) for "admin" or "user"."""
    app = request.getfixturevalue(f"{which}_app")
    return app, request.getfixturevalue("admin" if which == "admin" else "plain_user")


@pytest.mark.parametrize("route", sorted(ROUTE_CASES))
def test_a_successful_post_adds_exactly_one_entry(route, request, node, dbsession, passwords,
                                                  secret_box):
    spec = ROUTE_CASES[route]
    app, user = signed_in(request, spec.app)
    watched = WatchedApp(app, dbsession)
    expected = spec.run(Ctx(watched, dbsession, passwords, secret_box, user))
    assert watched.before is not None

    added = new_entries(dbsession, watched.before)
    assert len(added) == 1, f"{route}: {len(added)} entries: {[changed(e) for e in added]}"
    entry = added[0]
    assert changed(entry) == expected
    assert entry.actor == user.username
    assert (entry.origin, entry.epoch) == (node.id, 3)
    assert entry.seq is None  # numbered after the commit, by the relay's sequencer
    assert entry.schema_revision


# -- refused input adds no entry -----------------------------------------------------

def refused(res, status=200, says=""):
    """The route refused: the form again with the error (200), or back to
    the page with the error flashed (303), or forbidden (403)."""
    assert res.status_int == status, res.text[:2000]
    if says:
        page = res.follow() if status == 303 else res
        assert says in page.text, page.text[:2000]
    return res


def _duplicate_user_group(c):
    make_user_group(c.db, "ops")
    refused(post(c.app, "/user-groups/new", {"name": "ops"}), says="already exists")


def _bad_server_host(c):
    refused(post(c.app, "/servers/new", server_form(host="x;rm -rf /")),
            says="Host must be a host name")


def _bad_regex(c):
    ops = make_user_group(c.db, "ops")
    refused(post(c.app, "/command-guard/new", {"user_group_id": ops.id, "pattern": "(["}),
            says="This is not a valid regular expression")


def _duplicate_username(c):
    alice(c)
    refused(post(c.app, "/users/new", user_form()), says="already exists")


def _weak_password(c):
    refused(post(c.app, "/users/new", user_form(password="short", confirm="short")))


def _own_admin_role(c):
    make_admin(c.db, c.passwords, "other_admin")
    refused(post(c.app, f"/users/{c.user.id}/edit", edit_form(c.user, role="user")),
            says="You cannot remove your own admin role")


def _delete_last_admin(c):
    refused(post(c.app, f"/users/{c.user.id}/delete", form_url=f"/users/{c.user.id}/edit"),
            303, says="last active admin")


def _suspend_self(c):
    make_admin(c.db, c.passwords, "other_admin")
    refused(post(c.app, f"/users/{c.user.id}/suspend", form_url=f"/users/{c.user.id}/edit"),
            303, says="You cannot suspend your own account.")


def _group_with_members(c):
    group = make_user_group(c.db, "ops")
    make_user(c.db, c.passwords, "alice", group=group)
    refused(post(c.app, f"/user-groups/{group.id}/delete"), 303, says="still has 1 member")


def _bad_key(c):
    user = alice(c)
    refused(post(c.app, f"/users/{user.id}/keys/add", {"public_key": "ssh-ed25519 AAAAnope"},
                 form_url=f"/users/{user.id}/keys"), says="not a valid OpenSSH public key")


def _bad_import_row(c):
    res = upload(c.app, HEADER + "ok1,ok1.example.net,22,root,key,,\n"
                                 "bad,bad.example.net,0,root,key,,\n")
    assert "nothing was imported" in follow_import(c.app, res, c.db.get_bind())  # the job's outcome


def _bad_access_rule(c):
    refused(post(c.app, "/access/new", {"subject": "rubbish", "target": ""}))


def _bad_setting(c):
    refused(save(c.app, totp_required="y", session_timeout_minutes="0"),
            says="Type a whole number from 1 to 1440.")


def _unchanged_settings(c):
    defaults = {**GOOD, "session_timeout_minutes": "30", "password_min_length": "10"}
    refused(post(c.app, "/settings", defaults), 303, says="Nothing changed.")


def _wrong_current_password(c):
    refused(post(c.app, "/profile/password", {"current_password": "not it",
                                              "new_password": NEW_PASSWORD,
                                              "confirm": NEW_PASSWORD}),
            says="That is not your current password.")


def _wrong_enrolment_code(c):
    page = c.app.get("/profile/2fa")
    code = wrong_code(enrolment_secret(page))
    refused(c.app.post("/profile/2fa", {"code": code, "csrf_token": csrf_from(page)}),
            says="That code is not right.")


def _wrong_code_to_turn_off(c):
    secret = enable_totp(c.db, c.secret_box, c.user)
    refused(post(c.app, "/profile/2fa/disable", {"code": wrong_code(secret)},
                 form_url="/profile/2fa"), says="That code is not right.")


def _not_an_admin(c):
    refused(post(c.app, "/user-groups/new", {"name": "ops"}, form_url="/profile", status=403),
            403)


BAD_INPUT = {
    "user_groups.new: duplicate name": ("admin", _duplicate_user_group),
    "user_groups.delete: group still has members": ("admin", _group_with_members),
    "servers.new: bad host": ("admin", _bad_server_host),
    "servers.import: one bad row": ("admin", _bad_import_row),
    "guard.new: bad regular expression": ("admin", _bad_regex),
    "users.new: duplicate username": ("admin", _duplicate_username),
    "users.new: password against the policy": ("admin", _weak_password),
    "users.edit: own admin role": ("admin", _own_admin_role),
    "users.delete: the last admin": ("admin", _delete_last_admin),
    "users.suspend: oneself": ("admin", _suspend_self),
    "users.key_add: not a key": ("admin", _bad_key),
    "access.new: no subject or target": ("admin", _bad_access_rule),
    "settings.edit: out of range": ("admin", _bad_setting),
    "settings.edit: nothing changed": ("admin", _unchanged_settings),
    "profile.password: wrong current password": ("user", _wrong_current_password),
    "profile.totp: wrong code": ("user", _wrong_enrolment_code),
    "profile.totp_disable: wrong code": ("user", _wrong_code_to_turn_off),
    "user_groups.new: not an admin": ("user", _not_an_admin),
}


@pytest.mark.parametrize("refusal", sorted(BAD_INPUT))
def test_refused_input_adds_no_entry(refusal, request, node, dbsession, passwords, secret_box):
    which, run = BAD_INPUT[refusal]
    app, user = signed_in(request, which)
    watched = WatchedApp(app, dbsession)
    run(Ctx(watched, dbsession, passwords, secret_box, user))
    added = new_entries(dbsession, watched.before)
    assert added == [], [changed(e) for e in added]


# -- node-local writes add no entry ------------------------------------------------------

def test_a_failed_sign_in_adds_no_entry(testapp, node, plain_user, dbsession):
    before = outbox(dbsession)
    assert "Wrong username or password." in login(testapp, "plainuser", "not it")
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).filter_by(kind="pair", username="plainuser").one().failures == 1
    assert dbsession.query(ActivityEntry).filter_by(action="auth.login_failed").count() == 1
    assert new_entries(dbsession, before) == []


def test_signing_in_and_out_adds_no_entry(testapp, node, plain_user, dbsession):
    before = outbox(dbsession)
    assert login(testapp, "plainuser").status_int == 303
    ok(post(testapp, "/logout", form_url="/profile"))
    dbsession.expire_all()
    assert dbsession.query(EndedSession).count() == 1
    assert [e.action for e in dbsession.query(ActivityEntry).order_by(ActivityEntry.id)] == [
        "auth.login", "auth.logout"]
    assert new_entries(dbsession, before) == []


def test_a_second_factor_sign_in_adds_no_entry(testapp, node, plain_user, dbsession, secret_box):
    secret = enable_totp(dbsession, secret_box, plain_user)
    before = outbox(dbsession)
    assert password_step(testapp, "plainuser").status_int == 303
    assert code_step(testapp, wrong_code(secret)).status_int == 200  # counted, node-local
    assert code_step(testapp, code_now(secret)).status_int == 303  # used step, node-local
    assert new_entries(dbsession, before) == []


def test_unlocking_an_account_adds_no_entry(admin_app, wsgi_app, node, dbsession, passwords):
    user = make_user(dbsession, passwords, "alice")
    browser = WatchedApp(admin_app, dbsession)
    elsewhere = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "192.0.2.30"})
    for _ in range(5):  # the default lockout threshold
        login(elsewhere, "alice", "wrong")
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).filter_by(kind="pair", username="alice").one().failures == 5
    res = ok(post(browser, f"/users/{user.id}/unlock", form_url=f"/users/{user.id}/edit"))
    assert "unlocked on this node" in res.follow()
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).filter_by(username="alice").count() == 0
    assert dbsession.query(ActivityEntry).filter_by(action="user.unlock").count() == 1
    assert new_entries(dbsession, browser.before) == []


@pytest.mark.parametrize("route", sorted(NO_REPLICATED_CHANGE))
def test_a_post_to_a_route_that_changes_no_replicated_data_adds_no_entry(
        route, wsgi_app, admin_app, node, dbsession):
    path = routes_taking_post(wsgi_app)[route]
    token = csrf_from(admin_app.get("/profile"))
    before = outbox(dbsession)
    res = admin_app.post(path, {"csrf_token": token}, expect_errors=True)
    assert res.status_int < 500, f"{route} {path}: {res.status}"
    assert new_entries(dbsession, before) == []


def test_the_node_to_node_api_adds_no_entry_for_an_unsigned_post(wsgi_app, admin_app, node,
                                                                  dbsession):
    token = csrf_from(admin_app.get("/profile"))
    before = outbox(dbsession)
    api = {n: p for n, p in routes_taking_post(wsgi_app).items()
           if n.startswith(NO_REPLICATED_CHANGE_PREFIXES)}
    assert api
    for name, path in sorted(api.items()):
        res = admin_app.post(path, {"csrf_token": token}, expect_errors=True)
        assert res.status_int < 500, f"{name} {path}: {res.status}"
    assert new_entries(dbsession, before) == []
