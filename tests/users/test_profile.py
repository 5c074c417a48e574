"""The signed-in user's own profile: details, password and SSH keys."""
import html
import re
from urllib.parse import urlparse

import pytest

from ezpyr.activity.models import ActivityEntry
from ezpyr.users.models import User, UserKey
from tests.factories import PASSWORD, login, make_user, make_user_group, post
from tests.users.conftest import ecdsa_line, ed25519_line, make_key, rsa_line

NEW_PASSWORD = "Fresh-start-2024"


def text(res) -> str:
    return html.unescape(res.text)


def signed_in(browser) -> bool:
    return browser.get("/profile").status_int == 200


def test_profile_shows_own_details_group_role_2fa_and_keys(testapp, dbsession, passwords):
    ops = make_user_group(dbsession, "ops")
    user = make_user(dbsession, passwords, "alice", group=ops, full_name="Alice Smith",
                     email="alice@example.org")
    key = make_key(dbsession, user, name="laptop")
    other = make_user(dbsession, passwords, "bob")
    bobs_key = make_key(dbsession, other, name="bobs-key")
    login(testapp, "alice")
    page = testapp.get("/profile")
    for expected in ("alice", "Alice Smith", "alice@example.org", "ops", "laptop",
                     key.fingerprint, "Change password"):
        assert expected in page
    assert re.search(r"Role</th><td>user", page.text)
    assert re.search(r"Two-factor sign-in</th><td>off", page.text)
    assert "bobs-key" not in page and bobs_key.fingerprint not in page
    if testapp.app.registry.introspector.get("routes", "profile.totp"):
        assert 'href="http://localhost/profile/2fa"' in page


def test_profile_of_a_user_without_group_or_keys(user_app):
    page = user_app.get("/profile")
    assert "no group" in page and "No SSH keys yet." in page


# -- own password --------------------------------------------------------------------

def test_change_own_password_keeps_this_session_and_ends_the_others(user_app, dbsession,
                                                                    passwords, new_browser,
                                                                    plain_user):
    elsewhere = new_browser()
    login(elsewhere, "plainuser")
    assert signed_in(elsewhere)
    res = post(user_app, "/profile/password", {"current_password": PASSWORD,
                                              "new_password": NEW_PASSWORD,
                                              "confirm": NEW_PASSWORD})
    assert res.status_int == 303 and urlparse(res.location).path == "/profile"
    assert "Your password is changed." in res.follow()
    assert signed_in(user_app)  # this session stays valid
    # and still posts forms (a fresh CSRF token came with the fresh session)
    res = post(user_app, "/profile/keys/add", {"public_key": ed25519_line()}, form_url="/profile")
    assert res.status_int == 303
    assert not signed_in(elsewhere)
    assert login(elsewhere, "plainuser").status_int == 200  # old password refused
    login(elsewhere, "plainuser", NEW_PASSWORD)
    assert signed_in(elsewhere)
    dbsession.expire_all()
    assert passwords.verify(dbsession.get(User, plain_user.id).password_hash, NEW_PASSWORD)
    assert dbsession.query(ActivityEntry).filter_by(action="profile.password").count() == 1


@pytest.mark.parametrize("data, field, message", [
    ({"current_password": "wrong"}, "current_password", "That is not your current password."),
    ({"current_password": ""}, "current_password", "This field is required."),
    ({"confirm": "Not-the-same-1"}, "confirm", "The two passwords differ"),
    ({"new_password": "short", "confirm": "short"}, "new_password", "at least 10 characters"),
    ({"new_password": PASSWORD, "confirm": PASSWORD}, "new_password", "must differ"),
])
def test_change_own_password_refuses_bad_input(user_app, dbsession, passwords, plain_user,
                                               data, field, message):
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD, **data}
    res = post(user_app, "/profile/password", form)
    assert res.status_int == 200
    assert re.search(rf'id="{field}-error">[^<]*{re.escape(message)}', text(res))
    dbsession.expire_all()
    assert passwords.verify(dbsession.get(User, plain_user.id).password_hash, PASSWORD)
    assert signed_in(user_app)


# -- own keys ----------------------------------------------------------------------------

@pytest.mark.parametrize("make_line, key_type", [
    (ed25519_line, "ssh-ed25519"), (rsa_line, "ssh-rsa"), (ecdsa_line, "ecdsa-sha2-nistp256"),
])
def test_add_and_delete_own_key(user_app, dbsession, plain_user, make_line, key_type):
    line = make_line(comment="me@desk")
    res = post(user_app, "/profile/keys/add", {"public_key": line, "name": "desk"},
               form_url="/profile")
    assert res.status_int == 303
    page = res.follow()
    assert "Key desk added." in page
    dbsession.expire_all()
    key = dbsession.query(UserKey).one()
    assert (key.user_id, key.key_type, key.name) == (plain_user.id, key_type, "desk")
    assert key.public_key == " ".join(line.split()[:2])
    assert key.fingerprint in page
    fingerprint = key.fingerprint

    res = post(user_app, f"/profile/keys/{key.id}/delete", form_url="/profile")
    assert res.status_int == 303 and "Key desk deleted." in res.follow()
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 0
    # the key service records the user's own change as theirs, not as an admin's
    entries = [(e.action, e.target, e.details, e.username)
               for e in dbsession.query(ActivityEntry).order_by(ActivityEntry.id) if not e.action.startswith("auth.")]
    assert entries == [("profile.key_add", "plainuser", fingerprint, "plainuser"),
                       ("profile.key_delete", "plainuser", fingerprint, "plainuser")]


@pytest.mark.parametrize("make_line, message", [
    (lambda: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroken me@desk",
     "not a valid OpenSSH public key"),
    (lambda: "not a key at all", "Key type 'not' is not supported"),
    (lambda: rsa_line(1024), "only 1024 bits; RSA keys need at least 2048"),
    (lambda: "   ", "This field is required."),
])
def test_bad_keys_are_refused_beside_the_field(user_app, dbsession, make_line, message):
    res = post(user_app, "/profile/keys/add", {"public_key": make_line()}, form_url="/profile")
    assert res.status_int == 200
    assert re.search(rf'id="public_key-error">[^<]*{re.escape(message)}', text(res))
    assert "My profile" in res  # the profile page again, with the error
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 0


def test_a_key_added_twice_is_refused(user_app, dbsession, plain_user):
    line = ed25519_line()
    make_key(dbsession, plain_user, line, "first")
    res = post(user_app, "/profile/keys/add", {"public_key": line}, form_url="/profile")
    assert res.status_int == 200
    assert "This key is already registered for plainuser as 'first'." in text(res)
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 1


def test_another_users_key_is_refused(user_app, dbsession, passwords):
    bob = make_user(dbsession, passwords, "bob")
    line = ed25519_line()
    make_key(dbsession, bob, line)
    res = post(user_app, "/profile/keys/add", {"public_key": line}, form_url="/profile")
    assert res.status_int == 200 and "already registered to another user" in res


def test_a_user_cannot_delete_someone_elses_key(user_app, dbsession, passwords):
    bob = make_user(dbsession, passwords, "bob")
    key = make_key(dbsession, bob)
    post(user_app, f"/profile/keys/{key.id}/delete", form_url="/profile", status=404)
    post(user_app, "/profile/keys/no-such-key/delete", form_url="/profile", status=404)
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 1


def test_a_get_changes_nothing(user_app, dbsession, plain_user):
    key = make_key(dbsession, plain_user)
    assert user_app.get(f"/profile/keys/{key.id}/delete").status_int == 303
    assert user_app.get("/profile/keys/add").status_int == 303
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 1


def test_an_admin_uses_the_same_profile(admin_app, dbsession, admin):
    page = admin_app.get("/profile")
    assert "root_admin" in page and re.search(r"Role</th><td>admin", page.text)
    res = post(admin_app, "/profile/keys/add", {"public_key": ed25519_line()},
               form_url="/profile")
    assert res.status_int == 303


@pytest.mark.parametrize("path", ["/profile", "/profile/password"])
def test_anonymous_is_sent_to_login(testapp, path):
    res = testapp.get(path, status=303)
    assert urlparse(res.location).path == "/login"


def test_anonymous_posts_are_refused(testapp, dbsession, passwords):
    bob = make_user(dbsession, passwords, "bob")
    key = make_key(dbsession, bob)
    for path in ("/profile/keys/add", f"/profile/keys/{key.id}/delete", "/profile/password"):
        res = post(testapp, path, {"public_key": ed25519_line()}, form_url="/login")
        assert res.status_int == 303 and urlparse(res.location).path == "/login"
    dbsession.expire_all()
    assert dbsession.query(UserKey).count() == 1
