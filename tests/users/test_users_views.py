"""Users pages (admins only): list, create, edit, suspend, passwords, 2FA,
lockout, delete, and users' SSH keys."""
import html
import re
from urllib.parse import urlparse

import pytest

from ezpyr.access.models import AccessRule
from ezpyr.activity.models import ActivityEntry
from ezpyr.auth.models import LoginThrottle
from ezpyr.servers.models import ServerGroup
from ezpyr.users.models import User, UserKey
from tests.factories import PASSWORD, login, make_admin, make_user, make_user_group, post
from tests.users.conftest import ed25519_line, make_key, rsa_line

NEW_PASSWORD = "Fresh-start-2024"


def text(res) -> str:
    return html.unescape(res.text)


def signed_in(browser) -> bool:
    return browser.get("/profile").status_int == 200


def reload(dbsession, user_id) -> User | None:
    dbsession.expire_all()
    return dbsession.get(User, user_id)


def actions(dbsession):
    dbsession.expire_all()
    return [e.action for e in dbsession.query(ActivityEntry).order_by(ActivityEntry.id)]


def user_form(**changes):
    data = {"username": "alice", "full_name": "Alice Smith", "email": "alice@example.org",
            "role": "user", "group_id": "", "password": PASSWORD, "confirm": PASSWORD}
    data.update(changes)
    return data


def edit_form(user, **changes):
    data = {"username": user.username, "full_name": user.full_name, "email": user.email,
            "role": user.role, "group_id": user.group_id or ""}
    data.update(changes)
    return data


# -- list ------------------------------------------------------------------------------

def test_list_shows_role_group_state_2fa_keys_and_lock(admin_app, dbsession, passwords,
                                                       new_browser):
    ops = make_user_group(dbsession, "ops")
    alice = make_user(dbsession, passwords, "alice", group=ops, full_name="Alice Smith")
    make_key(dbsession, alice)
    make_key(dbsession, alice)
    bob = make_user(dbsession, passwords, "bob")
    bob.suspended, bob.totp_enabled = True, True
    dbsession.commit()
    make_user(dbsession, passwords, "carol")
    browser = new_browser()
    for _ in range(5):
        login(browser, "carol", "wrong")  # locks carol for the browser's address on this node

    page = admin_app.get("/users")
    rows = {m.group(1): m.group(0) for m in re.finditer(
        r'<tr>\s*<td><a href="[^"]+">([a-z_]+)</a></td>.*?</tr>', page.text, re.S)}
    assert set(rows) == {"alice", "bob", "carol", "root_admin"}
    assert "Alice Smith" in rows["alice"] and "<td>ops</td>" in rows["alice"]
    assert re.search(r">2</a></td>", rows["alice"]) and "active" in rows["alice"]
    assert "suspended" in rows["bob"] and "<td>on</td>" in rows["bob"]
    assert "locked" in rows["carol"] and "suspended" not in rows["carol"]
    assert "<td>off</td>" in rows["carol"] and "locked" not in rows["alice"]
    assert ">admin</span>" in rows["root_admin"]


def test_search_and_paging(admin_app, dbsession, passwords):
    for i in range(30):
        make_user(dbsession, passwords, f"user{i:02d}", full_name=f"Person {i:02d}",
                  email=f"u{i:02d}@corp{i % 2}.example")
    page1 = admin_app.get("/users")
    assert "Page 1 of 2" in page1 and "user00" in page1 and "user29" not in page1
    page2 = admin_app.get("/users", {"page": 2})
    assert "user29" in page2
    by_name = admin_app.get("/users", {"q": "Person 1"})
    assert "user15" in by_name and "user25" not in by_name
    by_email = admin_app.get("/users", {"q": "corp1.example"})
    assert "user03" in by_email and "user04" not in by_email
    none = admin_app.get("/users", {"q": "nobody%"})
    assert "No users match" in text(none)


# -- create -----------------------------------------------------------------------------

def test_create_a_user_who_can_then_sign_in(admin_app, dbsession, new_browser):
    ops = make_user_group(dbsession, "ops")
    page = admin_app.get("/users/new")
    assert "— no group —" in text(page) and ">ops</option>" in page
    res = post(admin_app, "/users/new", user_form(group_id=ops.id, role="admin"))
    assert res.status_int == 303
    assert "User alice created." in res.follow()
    dbsession.expire_all()
    alice = dbsession.query(User).filter_by(username="alice").one()
    assert (alice.full_name, alice.email, alice.role, alice.group_id) == (
        "Alice Smith", "alice@example.org", "admin", ops.id)
    assert "user.create" in actions(dbsession)
    browser = new_browser()
    login(browser, "alice")
    assert signed_in(browser)


def test_create_without_a_group(admin_app, dbsession):
    post(admin_app, "/users/new", user_form())
    dbsession.expire_all()
    alice = dbsession.query(User).filter_by(username="alice").one()
    assert alice.group_id is None and alice.role == "user"


@pytest.mark.parametrize("changes, field, message", [
    ({"username": "Bad Name"}, "username", "lower-case letters, digits"),
    ({"username": "root;rm"}, "username", "lower-case letters, digits"),
    ({"username": "  "}, "username", "This field is required."),
    ({"email": "nope"}, "email", "That is not an e-mail address."),
    ({"role": "superuser"}, "role", "Role must be one of: admin, user."),
    ({"group_id": "gone"}, "group_id", "That user group does not exist."),
    ({"password": "short", "confirm": "short"}, "password", "at least 10 characters"),
    ({"password": "alllowercaseletters", "confirm": "alllowercaseletters"}, "password",
     "must mix at least three"),
    ({"confirm": "Something-else-1"}, "confirm", "The two passwords differ"),
    ({"password": "", "confirm": ""}, "password", "This field is required."),
    ({"full_name": "x" * 201}, "full_name", "longer than 200"),
])
def test_create_refuses_bad_input_beside_the_field(admin_app, dbsession, changes, field, message):
    res = post(admin_app, "/users/new", user_form(**changes))
    assert res.status_int == 200
    assert re.search(rf'id="{field}-error">[^<]*{re.escape(message)}', text(res)), text(res)
    dbsession.expire_all()
    assert dbsession.query(User).count() == 1  # only the signed-in admin


def test_create_refuses_a_duplicate_username(admin_app, dbsession, passwords):
    make_user(dbsession, passwords, "alice")
    res = post(admin_app, "/users/new", user_form())
    assert res.status_int == 200
    assert 'id="username-error">A user named \'alice\' already exists.' in text(res)
    dbsession.expire_all()
    assert dbsession.query(User).count() == 2


# -- edit ---------------------------------------------------------------------------

def test_edit_and_rename(admin_app, dbsession, passwords):
    ops = make_user_group(dbsession, "ops")
    alice = make_user(dbsession, passwords, "alice")
    page = admin_app.get(f"/users/{alice.id}/edit")
    assert 'value="alice"' in page and "Initial password" not in page
    res = post(admin_app, f"/users/{alice.id}/edit",
               edit_form(alice, username="alice_s", full_name="Alice S.", group_id=ops.id))
    assert res.status_int == 303
    assert "User alice_s saved." in res.follow()
    alice = reload(dbsession, alice.id)
    assert (alice.username, alice.full_name, alice.group_id) == ("alice_s", "Alice S.", ops.id)
    # the old name is free again; the user signs in with the new one
    login(admin_app, "alice_s")
    assert signed_in(admin_app)


@pytest.mark.parametrize("changes, message", [
    ({"username": "bob"}, "A user named 'bob' already exists."),
    ({"username": "Bad Name"}, "lower-case letters"),
    ({"username": "root;rm"}, "lower-case letters"),
    ({"email": "x@"}, "That is not an e-mail address."),
])
def test_edit_refuses_bad_input(admin_app, dbsession, passwords, changes, message):
    make_user(dbsession, passwords, "bob")
    alice = make_user(dbsession, passwords, "alice")
    res = post(admin_app, f"/users/{alice.id}/edit", edit_form(alice, **changes))
    assert res.status_int == 200 and message in text(res)
    assert reload(dbsession, alice.id).username == "alice"


def test_an_admin_cannot_remove_their_own_admin_role(admin_app, dbsession, passwords, admin):
    make_admin(dbsession, passwords, "other_admin")
    res = post(admin_app, f"/users/{admin.id}/edit", edit_form(admin, role="user"))
    assert res.status_int == 200
    assert 'id="role-error">You cannot remove your own admin role' in text(res)
    assert reload(dbsession, admin.id).role == "admin"


def test_the_last_admin_cannot_be_demoted(admin_app, dbsession, admin):
    res = post(admin_app, f"/users/{admin.id}/edit", edit_form(admin, role="user"))
    assert res.status_int == 200
    assert "root_admin is the last active admin, so you cannot take the admin role" in text(res)
    assert reload(dbsession, admin.id).role == "admin"


def test_an_admin_may_demote_another_admin(admin_app, dbsession, passwords):
    other = make_admin(dbsession, passwords, "other_admin")
    res = post(admin_app, f"/users/{other.id}/edit", edit_form(other, role="user"))
    assert res.status_int == 303
    assert reload(dbsession, other.id).role == "user"


# -- suspend and reinstate --------------------------------------------------------------

def test_suspend_ends_the_session_and_blocks_sign_in_until_reinstated(admin_app, dbsession,
                                                                       passwords, new_browser):
    alice = make_user(dbsession, passwords, "alice")
    browser = new_browser()
    login(browser, "alice")
    assert signed_in(browser)

    res = post(admin_app, f"/users/{alice.id}/suspend", form_url=f"/users/{alice.id}/edit")
    assert res.status_int == 303 and urlparse(res.location).path == f"/users/{alice.id}/edit"
    page = res.follow()
    assert "User alice is suspended" in page and "Reinstate" in page
    assert reload(dbsession, alice.id).suspended

    res = browser.get("/profile")
    assert res.status_int == 303 and urlparse(res.location).path == "/login"
    res = login(browser, "alice")
    assert res.status_int == 200 and "This account is suspended." in res
    assert not signed_in(browser)

    res = post(admin_app, f"/users/{alice.id}/reinstate", form_url=f"/users/{alice.id}/edit")
    assert "User alice is reinstated" in res.follow()
    login(browser, "alice")
    assert signed_in(browser)
    assert actions(dbsession).count("user.suspend") == 1
    assert "user.reinstate" in actions(dbsession)


def test_an_admin_cannot_suspend_themself(admin_app, dbsession, passwords, admin):
    make_admin(dbsession, passwords, "other_admin")
    res = post(admin_app, f"/users/{admin.id}/suspend", form_url=f"/users/{admin.id}/edit")
    assert "You cannot suspend your own account." in res.follow()
    assert not reload(dbsession, admin.id).suspended
    assert signed_in(admin_app)


def test_the_last_admin_cannot_be_suspended(admin_app, dbsession, admin):
    res = post(admin_app, f"/users/{admin.id}/suspend", form_url=f"/users/{admin.id}/edit")
    assert "root_admin is the last active admin, so you cannot suspend them" in res.follow()
    assert not reload(dbsession, admin.id).suspended


def test_reinstating_an_active_user_says_so(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    res = post(admin_app, f"/users/{alice.id}/reinstate", form_url=f"/users/{alice.id}/edit")
    assert "alice is not suspended." in res.follow()


def test_a_get_on_an_action_changes_nothing(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    for action in ("suspend", "reinstate", "reset-2fa", "unlock"):
        res = admin_app.get(f"/users/{alice.id}/{action}")
        assert res.status_int == 303
    assert not reload(dbsession, alice.id).suspended
    assert actions(dbsession) == ["auth.login"]


# -- passwords -------------------------------------------------------------------------

def test_reset_password_typed_by_the_admin_ends_sessions(admin_app, dbsession, passwords,
                                                         new_browser):
    alice = make_user(dbsession, passwords, "alice")
    browser = new_browser()
    login(browser, "alice")
    res = post(admin_app, f"/users/{alice.id}/password",
               {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert res.status_int == 303
    assert "The password of alice is changed; their sessions have ended." in res.follow()
    assert not signed_in(browser)
    assert login(browser, "alice").status_int == 200  # the old password: refused
    login(browser, "alice", NEW_PASSWORD)
    assert signed_in(browser)
    dbsession.expire_all()
    entry = dbsession.query(ActivityEntry).filter_by(action="user.password_reset").one()
    assert NEW_PASSWORD not in entry.details + entry.target


def test_reset_password_generated_is_shown_once_and_works(admin_app, dbsession, passwords,
                                                         new_browser):
    alice = make_user(dbsession, passwords, "alice")
    browser = new_browser()
    login(browser, "alice")
    res = post(admin_app, f"/users/{alice.id}/password", {"password": "", "confirm": ""})
    assert res.status_int == 200 and "only this once" in res
    generated = html.unescape(re.search(r'<pre class="generated-password">([^<]+)</pre>',
                                        res.text).group(1))
    assert len(generated) >= 20
    assert res.headers["Cache-Control"] == "no-store"
    assert not signed_in(browser)
    login(browser, "alice", generated)
    assert signed_in(browser)
    # not kept anywhere: the next page does not show it again
    assert generated not in admin_app.get(f"/users/{alice.id}/edit").text
    assert generated not in admin_app.get(f"/users/{alice.id}/password").text
    dbsession.expire_all()
    assert all(generated not in e.details + e.target for e in dbsession.query(ActivityEntry))


@pytest.mark.parametrize("data, field, message", [
    ({"password": "short", "confirm": "short"}, "password", "at least 10 characters"),
    ({"password": NEW_PASSWORD, "confirm": "different-Pass-1"}, "confirm", "passwords differ"),
    ({"password": NEW_PASSWORD, "confirm": ""}, "confirm", "passwords differ"),
    ({"password": "", "confirm": NEW_PASSWORD}, "confirm", "passwords differ"),
])
def test_reset_password_refuses_bad_input(admin_app, dbsession, passwords, data, field, message):
    alice = make_user(dbsession, passwords, "alice")
    res = post(admin_app, f"/users/{alice.id}/password", data)
    assert res.status_int == 200
    assert re.search(rf'id="{field}-error">[^<]*{message}', text(res))
    alice = reload(dbsession, alice.id)
    assert passwords.verify(alice.password_hash, PASSWORD)


# -- 2FA and lockout -----------------------------------------------------------------------

def test_reset_2fa(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    alice.totp_enabled, alice.totp_secret = True, "encrypted"
    dbsession.commit()
    page = admin_app.get(f"/users/{alice.id}/edit")
    assert "Reset two-factor sign-in" in page
    res = post(admin_app, f"/users/{alice.id}/reset-2fa", form_url=f"/users/{alice.id}/edit")
    assert "Two-factor sign-in is off for alice" in res.follow()
    alice = reload(dbsession, alice.id)
    assert not alice.totp_enabled and alice.totp_secret is None
    assert "user.reset_2fa" in actions(dbsession)


def test_unlock_a_locked_account(admin_app, dbsession, passwords, new_browser):
    alice = make_user(dbsession, passwords, "alice")
    browser = new_browser()
    for _ in range(5):
        login(browser, "alice", "wrong")
    assert "is locked" in login(browser, "alice")
    page = admin_app.get(f"/users/{alice.id}/edit")
    assert "locked on this node" in page
    res = post(admin_app, f"/users/{alice.id}/unlock", form_url=f"/users/{alice.id}/edit")
    assert "User alice is unlocked on this node" in res.follow()
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).filter_by(username="alice").count() == 0
    login(browser, "alice")
    assert signed_in(browser)


def test_unlocking_an_account_that_is_not_locked_says_so(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    res = post(admin_app, f"/users/{alice.id}/unlock", form_url=f"/users/{alice.id}/edit")
    assert "alice is not locked on this node." in res.follow()


# -- delete ------------------------------------------------------------------------------

def test_delete_after_confirmation_removes_keys_and_rules(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    alice_id = alice.id
    make_key(dbsession, alice)
    web = ServerGroup(name="web")
    dbsession.add_all([web, AccessRule(user=alice, server_group=web)])
    dbsession.commit()
    page = admin_app.get(f"/users/{alice.id}/delete")
    assert "Delete user alice?" in page and "1 SSH keys, 1 access rules" in page
    assert reload(dbsession, alice.id) is not None  # GET changes nothing
    res = post(admin_app, f"/users/{alice.id}/delete")
    assert res.status_int == 303 and urlparse(res.location).path == "/users"
    assert "User alice deleted" in res.follow()
    assert reload(dbsession, alice_id) is None
    assert dbsession.query(UserKey).count() == 0
    assert dbsession.query(AccessRule).count() == 0
    assert "user.delete" in actions(dbsession)


def test_an_admin_cannot_delete_themself(admin_app, dbsession, passwords, admin):
    make_admin(dbsession, passwords, "other_admin")
    page = admin_app.get(f"/users/{admin.id}/delete")
    assert "You cannot delete your own account." in page and 'class="danger"' not in page
    res = post(admin_app, f"/users/{admin.id}/delete", form_url=f"/users/{admin.id}/edit")
    assert "You cannot delete your own account." in res.follow()
    assert reload(dbsession, admin.id) is not None


def test_the_last_admin_cannot_be_deleted(admin_app, dbsession, admin):
    page = admin_app.get(f"/users/{admin.id}/delete")
    assert "root_admin is the last active admin, so you cannot delete them" in page
    res = post(admin_app, f"/users/{admin.id}/delete", form_url=f"/users/{admin.id}/edit")
    assert "last active admin" in res.follow()
    assert reload(dbsession, admin.id) is not None


def test_another_admin_may_be_deleted(admin_app, dbsession, passwords):
    other_id = make_admin(dbsession, passwords, "other_admin").id
    res = post(admin_app, f"/users/{other_id}/delete")
    assert res.status_int == 303
    assert reload(dbsession, other_id) is None


# -- SSH keys of a user ---------------------------------------------------------------------

def test_admin_adds_and_deletes_a_users_key(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    line = ed25519_line("alice@laptop")
    page = admin_app.get(f"/users/{alice.id}/keys")
    assert "No SSH keys yet." in page
    res = post(admin_app, f"/users/{alice.id}/keys/add", {"public_key": line, "name": ""},
               form_url=f"/users/{alice.id}/keys")
    assert res.status_int == 303
    page = res.follow()
    assert "Key alice@laptop added for alice." in page
    dbsession.expire_all()
    key = dbsession.query(UserKey).one()
    assert key.user_id == alice.id and key.fingerprint in page
    assert "user.key_add" in actions(dbsession)

    res = post(admin_app, f"/users/{alice.id}/keys/{key.id}/delete",
               form_url=f"/users/{alice.id}/keys")
    assert res.status_int == 303
    assert "Key alice@laptop of alice deleted." in res.follow()
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 0


@pytest.mark.parametrize("make_line, message", [
    (lambda: "ssh-ed25519 AAAAbroken", "not a valid OpenSSH public key"),
    (lambda: "", "This field is required."),
    (lambda: rsa_line(1024), "only 1024 bits"),
    (lambda: "ssh-dss AAAAB3NzaC1kc3M", "not supported"),
])
def test_admin_key_add_refuses_bad_keys(admin_app, dbsession, passwords, make_line, message):
    alice = make_user(dbsession, passwords, "alice")
    res = post(admin_app, f"/users/{alice.id}/keys/add", {"public_key": make_line()},
               form_url=f"/users/{alice.id}/keys")
    assert res.status_int == 200
    assert re.search(rf'id="public_key-error">[^<]*{message}', text(res))
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 0


def test_admin_key_add_refuses_a_duplicate_key(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    bob = make_user(dbsession, passwords, "bob")
    line = ed25519_line()
    make_key(dbsession, alice, line)
    res = post(admin_app, f"/users/{bob.id}/keys/add", {"public_key": line},
               form_url=f"/users/{bob.id}/keys")
    assert res.status_int == 200 and "already registered to another user" in res
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 1


def test_a_key_must_belong_to_the_user_in_the_address(admin_app, dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    bob = make_user(dbsession, passwords, "bob")
    key = make_key(dbsession, alice)
    post(admin_app, f"/users/{bob.id}/keys/{key.id}/delete", form_url=f"/users/{bob.id}/keys",
         status=404)
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 1


# -- unknown ids, anonymous and non-admin ---------------------------------------------------

@pytest.mark.parametrize("path", ["/users/nope/edit", "/users/nope/password",
                                  "/users/nope/delete", "/users/nope/keys"])
def test_unknown_user_is_404(admin_app, path):
    admin_app.get(path, status=404)


ADMIN_PAGES = ["/users", "/users/new", "/users/{id}/edit", "/users/{id}/password",
               "/users/{id}/delete", "/users/{id}/keys"]
ADMIN_POSTS = ["/users/new", "/users/{id}/edit", "/users/{id}/suspend", "/users/{id}/reinstate",
               "/users/{id}/password", "/users/{id}/reset-2fa", "/users/{id}/unlock",
               "/users/{id}/delete", "/users/{id}/keys/add", "/users/{id}/keys/{key}/delete"]


@pytest.fixture
def target(dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    return alice, make_key(dbsession, alice)


def test_anonymous_is_sent_to_login(testapp, target):
    alice, key = target
    for path in ADMIN_PAGES:
        res = testapp.get(path.format(id=alice.id), status=303)
        assert urlparse(res.location).path == "/login"


def test_non_admin_gets_403_and_changes_nothing(user_app, dbsession, target):
    alice, key = target
    for path in ADMIN_PAGES:
        user_app.get(path.format(id=alice.id), status=403)
    for path in ADMIN_POSTS:
        post(user_app, path.format(id=alice.id, key=key.id), user_form(username="evil"),
             form_url="/profile", status=403)
    alice = reload(dbsession, alice.id)
    assert alice.username == "alice" and not alice.suspended
    assert dbsession.query(User).count() == 2 and dbsession.query(UserKey).count() == 1
