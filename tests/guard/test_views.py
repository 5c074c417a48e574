"""Command guard pages (admins only)."""
import pytest

from ezpyr.activity.models import ActivityEntry
from ezpyr.guard.models import CommandRule
from tests.factories import csrf_from, make_user, make_user_group, post


@pytest.fixture
def ops(dbsession):
    return make_user_group(dbsession, "ops")


@pytest.fixture
def rule(dbsession, ops):
    rule = CommandRule(user_group=ops, pattern=r"^rm\s+-rf", description="no recursive deletes")
    dbsession.add(rule)
    dbsession.commit()
    return rule


ADMIN_PAGES = ["/command-guard", "/command-guard/new", "/command-guard/test",
               "/command-guard/{rule}/edit", "/command-guard/{rule}/delete"]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_anonymous_is_sent_to_login(testapp, rule, url):
    res = testapp.get(url.format(rule=rule.id), status=303)
    assert res.location.split("?")[0].endswith("/login")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_non_admins_are_refused(user_app, rule, url):
    user_app.get(url.format(rule=rule.id), status=403)


def test_non_admins_cannot_post(user_app, dbsession, rule, ops):
    token = csrf_from(user_app.get("/profile/servers"))
    user_app.post("/command-guard/new", {"user_group_id": ops.id, "pattern": "x",
                                         "csrf_token": token}, status=403)
    user_app.post(f"/command-guard/{rule.id}/delete", {"csrf_token": token}, status=403)
    dbsession.expire_all()
    assert dbsession.query(CommandRule).count() == 1


# -- list -------------------------------------------------------------------------------

def test_list_groups_rules_by_user_group(admin_app, dbsession, rule, ops):
    dev = make_user_group(dbsession, "dev")
    dbsession.add(CommandRule(user_group=dev, pattern="shutdown"))
    dbsession.commit()
    page = admin_app.get("/command-guard")
    text = page.text
    assert text.index("User group dev") < text.index("shutdown") < text.index("User group ops")
    assert text.index("User group ops") < text.index(r"^rm\s+-rf")
    assert "no recursive deletes" in page and "2 rules" in page
    assert f"/command-guard/new?group={ops.id}" in text
    found = admin_app.get("/command-guard", {"q": "recursive"})
    assert "User group ops" in found and "User group dev" not in found


def test_list_when_empty(admin_app):
    assert "No command rules" in admin_app.get("/command-guard")


# -- add / edit / delete ----------------------------------------------------------------------

def test_add_a_rule(admin_app, dbsession, ops):
    form = admin_app.get("/command-guard/new", {"group": ops.id})
    assert f'<option selected value="{ops.id}">ops</option>' in form
    res = post(admin_app, "/command-guard/new",
               {"user_group_id": ops.id, "pattern": r"\bshutdown\b", "description": "no"},
               form_url="/command-guard/new")
    assert res.status_int == 303
    assert r"Command rule \bshutdown\b added to user group ops." in res.follow()
    dbsession.expire_all()
    rule = dbsession.query(CommandRule).one()
    assert (rule.user_group_id, rule.pattern, rule.description) == (ops.id, r"\bshutdown\b", "no")
    entry = dbsession.query(ActivityEntry).filter_by(action="guard.create").one()
    assert entry.target == r"ops: \bshutdown\b"


@pytest.mark.parametrize("pattern, message", [
    ("([", "This is not a valid regular expression: unterminated character set at position 1."),
    ("", "A pattern is required."),
    ("   ", "A pattern is required."),
    ("x" * 501, "A pattern must be at most 500 characters; this one has 501."),
    (r"^rm\s+-rf", "User group ops already has a rule with this pattern."),
])
def test_bad_patterns_are_refused_beside_the_field(admin_app, dbsession, rule, ops, pattern, message):
    res = post(admin_app, "/command-guard/new", {"user_group_id": ops.id, "pattern": pattern})
    assert res.status_int == 200
    assert f'id="pattern-error">{message}</span>' in res.text
    assert res.html.find("input", {"name": "pattern"})["value"] == pattern if pattern else True
    dbsession.expire_all()
    assert dbsession.query(CommandRule).count() == 1


def test_group_is_required_and_must_exist(admin_app, dbsession, ops):
    res = post(admin_app, "/command-guard/new", {"user_group_id": "", "pattern": "^rm"})
    assert 'id="user_group_id-error">Choose the user group this rule applies to.' in res
    res = post(admin_app, "/command-guard/new", {"user_group_id": "gone", "pattern": "^rm"})
    assert 'id="user_group_id-error">That user group no longer exists; choose another.' in res
    assert dbsession.query(CommandRule).count() == 0


def test_edit_a_rule(admin_app, dbsession, rule, ops):
    dev = make_user_group(dbsession, "dev")
    page = admin_app.get(f"/command-guard/{rule.id}/edit")
    assert "Edit command rule" in page and r"^rm\s+-rf" in page
    res = post(admin_app, f"/command-guard/{rule.id}/edit",
               {"user_group_id": dev.id, "pattern": "^rm ", "description": "moved"})
    assert res.status_int == 303 and "Command rule ^rm  saved." in res.follow()
    dbsession.expire_all()
    saved = dbsession.get(CommandRule, rule.id)
    assert (saved.user_group_id, saved.pattern, saved.description) == (dev.id, "^rm ", "moved")
    assert dbsession.query(ActivityEntry).filter_by(action="guard.update").count() == 1


def test_edit_with_a_bad_pattern_changes_nothing(admin_app, dbsession, rule, ops):
    res = post(admin_app, f"/command-guard/{rule.id}/edit",
               {"user_group_id": ops.id, "pattern": "([", "description": "changed"})
    assert res.status_int == 200 and "not a valid regular expression" in res
    dbsession.expire_all()
    assert dbsession.get(CommandRule, rule.id).pattern == r"^rm\s+-rf"
    assert dbsession.get(CommandRule, rule.id).description == "no recursive deletes"


def test_delete_asks_then_removes(admin_app, dbsession, rule):
    page = admin_app.get(f"/command-guard/{rule.id}/delete")
    assert "Delete this command rule?" in page and r"^rm\s+-rf" in page
    res = post(admin_app, f"/command-guard/{rule.id}/delete")
    assert res.status_int == 303 and "Command rule removed" in res.follow()
    dbsession.expire_all()
    assert dbsession.query(CommandRule).count() == 0
    assert dbsession.query(ActivityEntry).filter_by(action="guard.delete").count() == 1


def test_unknown_rule_is_404(admin_app):
    admin_app.get("/command-guard/nope/edit", status=404)
    admin_app.get("/command-guard/nope/delete", status=404)


# -- test a command --------------------------------------------------------------------------

@pytest.fixture
def two_rules(dbsession, rule, ops):
    other = CommandRule(user_group=ops, pattern="-rf /$", description="not the root")
    dbsession.add(other)
    dbsession.commit()
    return rule, other


def test_the_test_box_starts_empty(admin_app, ops):
    page = admin_app.get("/command-guard/test")
    assert "Test a command" in page and "Result" not in page and "error" not in page.text.split("<main>")[1]


def test_a_command_refused_by_every_matching_rule(admin_app, two_rules, ops):
    page = admin_app.get("/command-guard/test", {"user_group_id": ops.id, "command": "rm -rf /"})
    assert "Refused" in page
    assert r"refused by rule <code>^rm\s+-rf</code> — no recursive deletes" in page
    assert "refused by rule <code>-rf /$</code> — not the root" in page


def test_a_command_refused_by_one_rule(admin_app, two_rules, ops):
    page = admin_app.get("/command-guard/test", {"user_group_id": ops.id, "command": "rm -rf /tmp/x"})
    assert r"refused by rule <code>^rm\s+-rf</code>" in page and "-rf /$" not in page.text.split("Result")[1]


def test_an_allowed_command(admin_app, two_rules, ops):
    page = admin_app.get("/command-guard/test", {"user_group_id": ops.id, "command": "ls -l"})
    assert "Allowed." in page and "None of the 2 rules of user group ops matches it." in page
    assert 'value="ls -l"' in page  # the form keeps what was typed


def test_by_user_uses_their_group(admin_app, dbsession, passwords, two_rules, ops):
    make_user(dbsession, passwords, "alice", group=ops)
    make_user(dbsession, passwords, "loner")
    page = admin_app.get("/command-guard/test", {"username": "alice", "command": "rm -rf /"})
    assert "for user alice (user group ops)" in page and "Refused" in page
    page = admin_app.get("/command-guard/test", {"username": "loner", "command": "rm -rf /"})
    assert "Allowed." in page and "loner is in no user group, so no command rule applies." in page


def test_a_group_without_rules(admin_app, dbsession):
    empty = make_user_group(dbsession, "empty")
    page = admin_app.get("/command-guard/test", {"user_group_id": empty.id, "command": "rm -rf /"})
    assert "Allowed." in page and "User group empty has no command rules." in page


@pytest.mark.parametrize("params, field, message", [
    ({"command": "ls"}, "user_group_id", "Choose a user group, or type a username."),
    ({"username": "ghost", "command": "ls"}, "username", "No user is named &#39;ghost&#39;."),
    ({"user_group_id": "gone", "command": "ls"}, "user_group_id", "That user group no longer exists"),
    ({"user_group_id": "{ops}", "command": ""}, "command", "Type the command to test."),
    ({"user_group_id": "{ops}", "username": "root_admin", "command": "ls"}, "username",
     "Choose a user group or type a username, not both."),
])
def test_the_test_box_explains_bad_input(admin_app, ops, params, field, message):
    params = {k: v.format(ops=ops.id) for k, v in params.items()}
    page = admin_app.get("/command-guard/test", params)
    assert page.status_int == 200
    assert f'id="{field}-error">{message}' in page.text
    assert "Result" not in page
