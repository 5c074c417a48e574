"""Issue 8's smaller findings (items 5 and 6), one test each."""
from __future__ import annotations

import pytest
import webtest

from ezpyr.activity.models import ActivityEntry
from ezpyr.guard.services import GuardService, check_pattern, matches
from ezpyr.guard.models import CommandRule
from ezpyr.users.groups import UserGroupService
from ezpyr.users.models import User, UserGroup
from ezpyr.validation import Invalid
from tests.factories import csrf_from, login, make_admin, make_user, make_user_group, post


def test_a_pattern_that_backtracks_catastrophically_is_refused():
    with pytest.raises(Invalid) as refused:
        check_pattern("(a|aa)+$")
    assert "exponential time" in refused.value.message


def test_a_stored_pattern_that_cannot_decide_in_time_refuses_the_line(dbsession):
    group = make_user_group(dbsession, "ops")
    rule = CommandRule(user_group=group, pattern="(a|aa)+$")  # stored before the check existed
    assert matches(rule, "a" * 40 + "!") is True  # fails closed, in at most MATCH_SECONDS


def test_search_text_is_cut_to_200_characters_everywhere(dbsession):
    from ezpyr.paging import cap_search
    from ezpyr.servers.services import ServerService  # noqa: F401 - the CLI searches the same way
    assert len(cap_search("x" * 60_000)) == 200
    assert list(dbsession.scalars(UserGroupService(dbsession).search("x" * 60_000))) == []


def test_a_failed_sign_in_with_an_unknown_name_does_not_log_the_name(testapp, dbsession):
    login(testapp, "Tr0ub4dor&3", "anything")
    dbsession.expire_all()
    entry = dbsession.query(ActivityEntry).filter_by(action="auth.login_failed").one()
    assert "Tr0ub4dor" not in entry.target + entry.username + entry.details
    assert entry.target == "(an unknown name)"


def test_user_group_names_are_unique_whatever_their_case(dbsession):
    make_user_group(dbsession, "ops")
    with pytest.raises(Invalid) as refused:
        UserGroupService(dbsession).create("OPS")
    assert "already exists" in refused.value.message


def test_a_duplicate_guard_rule_is_refused(dbsession):
    group = make_user_group(dbsession, "ops")
    guard = GuardService(dbsession)
    guard.create(group.id, "^rm ")
    dbsession.commit()
    with pytest.raises(Invalid):
        guard.create(group.id, "^rm ")


@pytest.mark.parametrize("value", ["ops\x00", "o\x1bps", "ops\x7f"])
def test_control_characters_are_refused_in_text_fields(admin_app, dbsession, value):
    res = post(admin_app, "/user-groups/new", {"name": value, "description": ""}, status=200)
    assert "must not hold control characters" in res
    dbsession.expire_all()
    assert dbsession.query(UserGroup).count() == 0


def test_an_admins_reset_of_2fa_ends_the_users_sessions(admin_app, wsgi_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    alice.totp_enabled, alice.totp_secret = True, None
    dbsession.commit()
    # alice's session (signed in before the reset, e.g. by someone who had her code)
    browser = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "192.0.2.44"})
    alice.totp_enabled = False
    dbsession.commit()
    login(browser, "alice")
    assert browser.get("/profile").status_int == 200
    alice = dbsession.get(User, alice.id)
    alice.totp_enabled = True
    dbsession.commit()
    post(admin_app, f"/users/{alice.id}/reset-2fa", form_url=f"/users/{alice.id}/edit")
    assert browser.get("/profile").status_int == 303


def test_the_secondarys_waiting_page_names_neither_node_nor_primary(testapp, dbsession, secret_box):
    from ezpyr.cluster.setup import SetupService
    from ezpyr.node.models import NodeIdentity
    dbsession.add(NodeIdentity(name="node-secret-name", address="127.0.0.1:6544", role="standalone", epoch=0))
    dbsession.commit()
    SetupService(dbsession, secret_box).prepare("10.9.8.7:6543")
    dbsession.commit()
    page = testapp.get("/login", status=503)
    assert "This node is a secondary" in page
    assert "10.9.8.7" not in page and "node-secret-name" not in page and "node-test" not in page
