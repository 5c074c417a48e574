"""Access pages: rules (admins), effective access (admins), my servers (users)."""
import pytest

from ezpyr.access.models import AccessRule
from ezpyr.activity.models import ActivityEntry
from tests.access.conftest import make_server, make_server_group
from tests.factories import csrf_from, make_rule, make_user, make_user_group, post

ADMIN_PAGES = ["/access", "/access/new", "/access/effective", "/access/{rule}/delete"]


@pytest.fixture
def ops(dbsession):
    return make_user_group(dbsession, "ops")


@pytest.fixture
def web(dbsession):
    return make_server_group(dbsession, "web")


@pytest.fixture
def rule(dbsession, ops, web):
    return make_rule(dbsession, user_group=ops, server_group=web)


# -- who may see what -------------------------------------------------------------

@pytest.mark.parametrize("url", ADMIN_PAGES + ["/profile/servers"])
def test_anonymous_is_sent_to_login(testapp, rule, url):
    res = testapp.get(url.format(rule=rule.id), status=303)
    assert res.location.split("?")[0].endswith("/login")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_non_admins_are_refused(user_app, rule, url):
    user_app.get(url.format(rule=rule.id), status=403)


def test_non_admins_cannot_post(user_app, ops, web, dbsession):
    page = user_app.get("/profile/servers")  # any page: for its CSRF token
    user_app.post("/access/new", {"subject": f"ug:{ops.id}", "target": f"sg:{web.id}",
                                  "csrf_token": csrf_from(page)}, status=403)
    assert dbsession.query(AccessRule).count() == 0


# -- list ---------------------------------------------------------------------------

def test_list_shows_who_reaches_what(admin_app, dbsession, rule, passwords):
    alice = make_user(dbsession, passwords, "alice")
    make_rule(dbsession, user=alice, server=make_server(dbsession, "db1"))
    page = admin_app.get("/access")
    assert "user group ops" in page and "server group web" in page
    assert "user alice" in page and "server db1" in page


def test_list_filters_by_subject_and_pages(admin_app, dbsession, web, passwords):
    for i in range(30):
        make_rule(dbsession, user_group=make_user_group(dbsession, f"team{i:02d}"), server_group=web)
    page1 = admin_app.get("/access")
    assert "Page 1 of 2" in page1 and "team00" in page1 and "team29" not in page1
    page2 = admin_app.get("/access", {"page": 2})
    assert "team29" in page2
    found = admin_app.get("/access", {"q": "team1"})
    assert "team15" in found and "team25" not in found and "10 in all" in found
    none = admin_app.get("/access", {"q": "zzz"})
    assert "No access rules for a user or user group matching" in none


# -- add ------------------------------------------------------------------------------

def test_new_form_offers_groups_and_single_rows(admin_app, dbsession, ops, web, passwords):
    alice = make_user(dbsession, passwords, "alice", full_name="Alice Liddell")
    server = make_server(dbsession, "db1", host="10.1.1.1")
    page = admin_app.get("/access/new")
    assert '<optgroup label="User groups">' in page and '<optgroup label="Users">' in page
    assert '<optgroup label="Server groups">' in page and '<optgroup label="Servers">' in page
    assert f'value="ug:{ops.id}"' in page and f'value="u:{alice.id}"' in page
    assert f'value="sg:{web.id}"' in page and f'value="s:{server.id}"' in page
    assert "alice (Alice Liddell)" in page and "db1 (10.1.1.1)" in page


@pytest.mark.parametrize("subject_kind, target_kind", [("ug", "sg"), ("ug", "s"), ("u", "sg"), ("u", "s")])
def test_add_each_kind_of_rule(admin_app, dbsession, ops, web, passwords, subject_kind, target_kind):
    alice = make_user(dbsession, passwords, "alice")
    server = make_server(dbsession, "db1")
    subject = {"ug": ops, "u": alice}[subject_kind]
    target = {"sg": web, "s": server}[target_kind]
    res = post(admin_app, "/access/new", {"subject": f"{subject_kind}:{subject.id}",
                                          "target": f"{target_kind}:{target.id}"})
    assert res.status_int == 303
    assert "Access rule added" in res.follow()
    dbsession.expire_all()
    rule = dbsession.query(AccessRule).one()
    assert {"ug": rule.user_group_id, "u": rule.user_id}[subject_kind] == subject.id
    assert {"sg": rule.server_group_id, "s": rule.server_id}[target_kind] == target.id
    entry = dbsession.query(ActivityEntry).filter_by(action="access.create").one()
    assert entry.username == "root_admin" and "→" in entry.target


def test_a_duplicate_rule_is_refused(admin_app, dbsession, rule, ops, web):
    res = post(admin_app, "/access/new", {"subject": f"ug:{ops.id}", "target": f"sg:{web.id}"})
    assert res.status_int == 200
    assert "This rule already exists: user group ops may already reach server group web." in res
    dbsession.expire_all()
    assert dbsession.query(AccessRule).count() == 1


def test_nothing_chosen_is_refused_beside_the_fields(admin_app, dbsession):
    res = post(admin_app, "/access/new", {"subject": "", "target": ""})
    assert res.status_int == 200
    assert 'id="subject-error">Choose who gets access from the list.' in res
    res = post(admin_app, "/access/new", {"subject": "rubbish", "target": ""})
    assert 'id="subject-error">Choose who gets access from the list.' in res
    assert dbsession.query(AccessRule).count() == 0


def test_a_stale_choice_is_refused_with_a_clear_message(admin_app, dbsession, ops, web):
    form_page = admin_app.get("/access/new")
    gone = make_user_group(dbsession, "gone")
    gone_id = gone.id
    dbsession.delete(gone)
    dbsession.commit()
    res = admin_app.post("/access/new", {"subject": f"ug:{gone_id}", "target": f"sg:{web.id}",
                                         "csrf_token": csrf_from(form_page)})
    assert res.status_int == 200
    assert "That user group no longer exists" in res
    res = post(admin_app, "/access/new", {"subject": f"ug:{ops.id}", "target": "s:no-such-id"})
    assert 'id="target-error">That server no longer exists' in res
    dbsession.expire_all()
    assert dbsession.query(AccessRule).count() == 0


# -- delete -----------------------------------------------------------------------------

def test_delete_asks_then_removes(admin_app, dbsession, rule):
    page = admin_app.get(f"/access/{rule.id}/delete")
    assert "Delete this access rule?" in page and "user group ops → server group web" in page
    assert dbsession.query(AccessRule).count() == 1  # GET changes nothing
    res = post(admin_app, f"/access/{rule.id}/delete")
    assert res.status_int == 303
    assert "Access rule removed: user group ops → server group web." in res.follow()
    dbsession.expire_all()
    assert dbsession.query(AccessRule).count() == 0
    assert dbsession.query(ActivityEntry).filter_by(action="access.delete").count() == 1


def test_delete_unknown_rule_is_404(admin_app, rule):
    admin_app.get("/access/nope/delete", status=404)
    post(admin_app, "/access/nope/delete", form_url="/access", status=404)


def test_delete_needs_csrf(admin_app, dbsession, rule):
    admin_app.post(f"/access/{rule.id}/delete", status=400)
    dbsession.expire_all()
    assert dbsession.query(AccessRule).count() == 1


# -- effective access ----------------------------------------------------------------------

@pytest.fixture
def alice_world(dbsession, passwords, ops, web):
    alice = make_user(dbsession, passwords, "alice", group=ops)
    make_server(dbsession, "web1", group=web, host="10.0.0.1", port=2222, remote_user="deploy")
    make_server(dbsession, "db1", host="10.0.0.9")
    make_server(dbsession, "lonebox")
    make_rule(dbsession, user_group=ops, server_group=web)
    return alice


def test_effective_access_by_username_and_by_id(admin_app, dbsession, alice_world):
    empty = admin_app.get("/access/effective")
    assert '<datalist id="usernames">' in empty and '<option value="alice">' in empty
    for asked in ("alice", alice_world.id):
        page = admin_app.get("/access/effective", {"user": asked})
        assert "Effective access of alice" in page and "is in user group <strong>ops</strong>" in page
        assert "web1" in page and "10.0.0.1" in page and "2222" in page and "deploy" in page
        assert "user group ops → server group web" in page
        # the servers it may not reach are not shown (10.0.0.9 is db1's host; an id on
        # the page is hexadecimal and may hold the letters "db1")
        assert "10.0.0.9" not in page and "lonebox" not in page


def test_effective_access_of_an_unknown_user(admin_app, alice_world):
    page = admin_app.get("/access/effective", {"user": "nobody"})
    assert page.status_int == 200
    assert 'id="user-error">No user is named &#39;nobody&#39;; pick one from the list.' in page


def test_effective_access_of_a_user_in_no_group(admin_app, dbsession, passwords, alice_world):
    make_user(dbsession, passwords, "bob")
    page = admin_app.get("/access/effective", {"user": "bob"})
    assert "is in no user group" in page
    assert "bob may reach no server" in page


def test_effective_access_of_a_suspended_user(admin_app, dbsession, alice_world):
    alice_world.suspended = True
    dbsession.commit()
    page = admin_app.get("/access/effective", {"user": "alice"})
    assert "alice is suspended and reaches no server" in page
    assert "web1" not in page


# -- my servers ------------------------------------------------------------------------------

def test_my_servers_shows_only_my_own(user_app, dbsession, plain_user, passwords, ops, web):
    plain_user.group = ops
    dbsession.commit()
    other = make_user(dbsession, passwords, "other")
    make_server(dbsession, "web1", group=web, host="10.0.0.1", remote_user="deploy")
    make_server(dbsession, "web2", group=web)
    mine = make_server(dbsession, "mybox", host="10.9.9.9")
    theirs = make_server(dbsession, "theirbox")
    make_rule(dbsession, user_group=ops, server_group=web)
    make_rule(dbsession, user=plain_user, server=mine)
    make_rule(dbsession, user=other, server=theirs)
    page = user_app.get("/profile/servers")
    assert "web1" in page and "web2" in page and "mybox" in page and "deploy" in page
    assert "user group ops → server group web" in page and "user plainuser → server mybox" in page
    assert "theirbox" not in page and "3 servers" in page
    found = user_app.get("/profile/servers", {"q": "10.9"})
    assert "mybox" in found and "web1" not in found and "1 server" in found
    none = user_app.get("/profile/servers", {"q": "<script>"})
    assert "None of your servers matches" in none and "<script>" not in none.text.split("<main>")[1]


def test_my_servers_when_none(user_app):
    page = user_app.get("/profile/servers")
    assert "You may not reach any server yet" in page


def test_admins_see_their_own_servers_too(admin_app, dbsession, admin, web):
    make_server(dbsession, "web1", group=web)
    make_rule(dbsession, user=admin, server_group=web)
    page = admin_app.get("/profile/servers")
    assert "web1" in page and "user root_admin → server group web" in page
