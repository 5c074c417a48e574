"""Sign-in pages: password, TOTP code, lockout, session expiry, sign-out,
and the user's own two-factor enrolment."""
import base64
import datetime as dt
import re
import time
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

import ezpyr.security
from ezpyr.activity.models import ActivityEntry
from ezpyr.auth import views
from ezpyr.auth.models import LoginThrottle
from ezpyr.meta import utcnow
from ezpyr.settings.services import SettingsService
from ezpyr.users.models import User, UserGroup
from tests.auth.conftest import (code_next, code_now, code_step, enable_totp, password_step,
                                 wrong_code)
from tests.factories import csrf_from, make_user, post


def signed_in(testapp) -> bool:
    """True when the panel shows a page that needs a signed-in user."""
    return testapp.get("/profile/2fa").status_int == 200


def actions(dbsession):
    dbsession.expire_all()
    return [e.action for e in dbsession.query(ActivityEntry).order_by(ActivityEntry.id)]


# -- password ------------------------------------------------------------------

def test_sign_in_and_land(testapp, plain_user, dbsession):
    res = password_step(testapp, "plainuser")
    assert res.status_int == 303 and res.location.endswith("/")
    assert signed_in(testapp)
    assert "auth.login" in actions(dbsession)


def test_wrong_password_is_refused_with_the_attempts_left(testapp, plain_user, dbsession):
    res = password_step(testapp, "plainuser", "not it")
    assert res.status_int == 200
    assert "Wrong username or password. 4 attempts left before the account is locked for your address." in res
    assert not signed_in(testapp)
    assert actions(dbsession) == ["auth.login_failed"]


def test_blank_fields_are_refused_beside_the_field(testapp, plain_user):
    page = testapp.get("/login")
    res = testapp.post("/login", {"username": "  ", "password": "",
                                  "csrf_token": csrf_from(page)})
    assert res.status_int == 200
    assert 'id="username-error">This field is required.' in res
    assert 'id="password-error">This field is required.' in res


def test_lockout_over_the_web(testapp, plain_user, dbsession):
    for _ in range(4):
        password_step(testapp, "plainuser", "not it")
    res = password_step(testapp, "plainuser", "not it")
    assert "now locked for your address for 15 minutes after 5 failed sign-ins" in res
    res = password_step(testapp, "plainuser")  # the right password
    assert res.status_int == 200
    assert "This account is locked for your address after too many failed sign-ins. Try again in 15 minutes" in res
    assert not signed_in(testapp)
    # the lock runs out
    dbsession.query(LoginThrottle).update(
        {LoginThrottle.window_started_at: utcnow() - dt.timedelta(minutes=16)})
    dbsession.commit()
    assert password_step(testapp, "plainuser").status_int == 303
    assert signed_in(testapp)
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).filter_by(kind="pair").count() == 0


def test_four_failures_then_a_success_resets_the_count(testapp, plain_user, dbsession):
    for _ in range(4):
        password_step(testapp, "plainuser", "not it")
    assert password_step(testapp, "plainuser").status_int == 303
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).filter_by(kind="pair").count() == 0


def test_unknown_names_look_like_known_ones(testapp, plain_user):
    for _ in range(5):
        known = password_step(testapp, "plainuser", "not it")
        unknown = password_step(testapp, "nosuchuser", "not it")
        assert _errors(known) == _errors(unknown)
    assert "locked" in _errors(known)


def _errors(res) -> str:
    return re.search(r'<div class="form-errors".*?</div>', res.text, re.S).group(0)


# -- the second factor at sign-in ---------------------------------------------------

@pytest.fixture
def totp_user(dbsession, passwords, secret_box):
    user = make_user(dbsession, passwords, "tess")
    return user, enable_totp(dbsession, secret_box, user)


def test_totp_sign_in(testapp, totp_user, dbsession):
    user, secret = totp_user
    res = password_step(testapp, "tess")
    assert res.status_int == 303 and urlparse(res.location).path == "/login/2fa"
    assert not signed_in(testapp)  # not signed in yet
    page = testapp.get("/login/2fa")
    assert "type the 6-digit code" in page.text.lower()
    res = code_step(testapp, code_now(secret))
    assert res.status_int == 303 and res.location.endswith("/")
    assert signed_in(testapp)
    assert actions(dbsession) == ["auth.login"]


def test_totp_sign_in_keeps_the_next_page(testapp, totp_user):
    user, secret = totp_user
    res = password_step(testapp, "tess", next_url="/profile/2fa")
    assert parse_qs(urlparse(res.location).query) == {"next": ["/profile/2fa"]}
    page = testapp.get(res.location)
    res = testapp.post(page.request.url, {"code": code_now(secret),
                                          "csrf_token": csrf_from(page)})
    assert urlparse(res.location).path == "/profile/2fa"


def test_wrong_code_is_refused_and_counted(testapp, totp_user, dbsession):
    user, secret = totp_user
    password_step(testapp, "tess")
    res = code_step(testapp, wrong_code(secret))
    assert res.status_int == 200
    assert 'id="code-error">That code is not right.' in res
    assert "4 attempts left before the account is locked for your address" in res
    assert not signed_in(testapp)
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).filter_by(kind="pair", username="tess").one().failures == 1
    assert actions(dbsession) == ["auth.login_failed"]
    # the right code still works in the same sign-in
    assert code_step(testapp, code_now(secret)).status_int == 303
    assert signed_in(testapp)


def test_wrong_codes_lock_the_account(testapp, totp_user, dbsession):
    user, secret = totp_user
    password_step(testapp, "tess")
    for _ in range(4):
        assert code_step(testapp, wrong_code(secret)).status_int == 200
    res = code_step(testapp, wrong_code(secret))
    assert res.status_int == 303 and urlparse(res.location).path == "/login"
    assert "The account is now locked for your address for 15 minutes" in res.follow()
    # the pending sign-in is gone, and the password alone no longer helps
    assert urlparse(testapp.get("/login/2fa").location).path == "/login"
    res = password_step(testapp, "tess")
    assert res.status_int == 200 and "This account is locked" in res


def test_a_used_code_is_refused(testapp, totp_user):
    user, secret = totp_user
    code = code_now(secret)
    password_step(testapp, "tess")
    assert code_step(testapp, code).status_int == 303
    post(testapp, "/logout", form_url="/profile/2fa")
    password_step(testapp, "tess")
    res = code_step(testapp, code)
    assert res.status_int == 200 and "That code was already used." in res
    assert not signed_in(testapp)
    assert code_step(testapp, code_next(secret)).status_int == 303


def test_the_code_page_needs_a_password_first(testapp, totp_user):
    res = testapp.get("/login/2fa")
    assert res.status_int == 303 and urlparse(res.location).path == "/login"
    assert "Sign in with your username and password first" in res.follow()


def test_a_pending_sign_in_expires(testapp, totp_user, monkeypatch):
    user, secret = totp_user
    password_step(testapp, "tess")
    monkeypatch.setattr(views, "PENDING_SECONDS", -1)
    page = testapp.get("/login/2fa")
    assert urlparse(page.location).path == "/login"
    assert not signed_in(testapp)


def test_a_password_change_ends_a_pending_sign_in(testapp, totp_user, dbsession):
    user, secret = totp_user
    password_step(testapp, "tess")
    user.auth_stamp = "changed"
    dbsession.commit()
    assert urlparse(testapp.get("/login/2fa").location).path == "/login"


# -- session expiry and sign-out ------------------------------------------------------

class Clock:
    """Stands in for the time module inside ezpyr.security."""

    def __init__(self, offset: float):
        self.offset = offset

    def time(self):
        return time.time() + self.offset


def test_an_idle_session_ends(user_app, dbsession, monkeypatch):
    SettingsService(dbsession).update(session_timeout_minutes=1)
    dbsession.commit()
    monkeypatch.setattr(ezpyr.security, "time", Clock(50))
    assert signed_in(user_app)  # idle 50 s: still on
    monkeypatch.setattr(ezpyr.security, "time", Clock(50 + 70))
    res = user_app.get("/profile/servers")
    assert res.status_int == 303
    assert urlparse(res.location).path == "/login"
    assert unquote(res.location).endswith("next=/profile/servers")
    assert "Your session has ended" in res.follow()
    monkeypatch.setattr(ezpyr.security, "time", time)
    assert not signed_in(user_app)


def test_activity_keeps_a_session_alive(user_app, dbsession, monkeypatch):
    SettingsService(dbsession).update(session_timeout_minutes=1)
    dbsession.commit()
    for seconds in (40, 80, 120, 160):
        monkeypatch.setattr(ezpyr.security, "time", Clock(seconds))
        assert signed_in(user_app), seconds


def test_sign_out_ends_the_session_and_its_cookie(user_app, dbsession):
    old_cookie = user_app.cookies["ezpyr_session"]
    res = post(user_app, "/logout", form_url="/profile/2fa")
    assert res.status_int == 303 and urlparse(res.location).path == "/login"
    assert "You are signed out." in res.follow()
    assert not signed_in(user_app)
    user_app.set_cookie("ezpyr_session", old_cookie)
    assert not signed_in(user_app)
    assert "auth.logout" in actions(dbsession)


def test_signing_in_again_ends_the_previous_session(user_app):
    old_cookie = user_app.cookies["ezpyr_session"]
    assert password_step(user_app, "plainuser").status_int == 303
    assert signed_in(user_app)
    user_app.set_cookie("ezpyr_session", old_cookie)
    assert not signed_in(user_app)


def test_sign_out_is_post_only(user_app):
    user_app.get("/logout", status=404)
    assert signed_in(user_app)


def test_sign_out_needs_the_csrf_token(user_app):
    user_app.post("/logout", {}, status=400)
    user_app.post("/logout", {"csrf_token": "forged"}, status=400)
    assert signed_in(user_app)


# -- enrolment -----------------------------------------------------------------------

def enrolment_secret(page) -> str:
    uri = re.search(r'href="(otpauth://[^"]+)"', page.text).group(1).replace("&amp;", "&")
    parsed = urlparse(uri)
    assert unquote(parsed.path) == "/ezpyr:plainuser"
    query = parse_qs(parsed.query)
    assert query["issuer"] == ["ezpyr"]
    return query["secret"][0]


def test_enrolment_page_shows_the_address_and_the_qr_code(user_app):
    page = user_app.get("/profile/2fa")
    secret = enrolment_secret(page)
    assert secret in page.text  # for typing by hand
    src = re.search(r'<img class="totp-qr" src="([^"]+)"', page.text).group(1)
    assert src.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(src.split(",", 1)[1]).startswith(b"<svg")
    # the same secret until it is enrolled
    assert enrolment_secret(user_app.get("/profile/2fa")) == secret


def test_enrol_with_the_right_code(user_app, dbsession, secret_box, plain_user):
    page = user_app.get("/profile/2fa")
    secret = enrolment_secret(page)
    res = user_app.post("/profile/2fa", {"code": pyotp.TOTP(secret).now(),
                                         "csrf_token": csrf_from(page)})
    assert res.status_int == 303
    assert "Two-factor sign-in is on." in res.follow()
    dbsession.expire_all()
    user = dbsession.get(User, plain_user.id)
    assert user.totp_enabled and secret_box.decrypt(user.totp_secret) == secret
    assert "auth.totp_enable" in actions(dbsession)
    # and the next sign-in asks for a code
    post(user_app, "/logout", form_url="/profile/2fa")
    assert urlparse(password_step(user_app, "plainuser").location).path == "/login/2fa"
    assert code_step(user_app, code_next(secret)).status_int == 303


@pytest.mark.parametrize("code", ["000000x", "12"])
def test_enrol_with_a_malformed_code_stores_nothing(user_app, dbsession, plain_user, code):
    res = post(user_app, "/profile/2fa", {"code": code})
    assert res.status_int == 200 and 'id="code-error">That code is not right.' in res
    dbsession.expire_all()
    user = dbsession.get(User, plain_user.id)
    assert not user.totp_enabled and user.totp_secret is None


def test_enrol_with_a_wrong_or_blank_code_stores_nothing(user_app, dbsession, plain_user):
    page = user_app.get("/profile/2fa")
    secret = enrolment_secret(page)
    res = user_app.post("/profile/2fa", {"code": wrong_code(secret),
                                         "csrf_token": csrf_from(page)})
    assert res.status_int == 200 and 'id="code-error">That code is not right.' in res
    res = post(user_app, "/profile/2fa", {"code": " "})
    assert 'id="code-error">Type the 6-digit code' in res
    dbsession.expire_all()
    user = dbsession.get(User, plain_user.id)
    assert not user.totp_enabled and user.totp_secret is None
    assert "auth.totp_enable" not in actions(dbsession)


def test_turn_off_needs_a_current_code(user_app, dbsession, secret_box, plain_user):
    secret = enable_totp(dbsession, secret_box, plain_user)
    page = user_app.get("/profile/2fa")
    assert "Turn off two-factor sign-in" in page
    res = post(user_app, "/profile/2fa/disable", {"code": wrong_code(secret)},
               form_url="/profile/2fa")
    assert res.status_int == 200 and 'id="code-error">That code is not right.' in res
    dbsession.expire_all()
    assert dbsession.get(User, plain_user.id).totp_enabled
    res = post(user_app, "/profile/2fa/disable", {"code": code_now(secret)},
               form_url="/profile/2fa")
    assert res.status_int == 303 and "Two-factor sign-in is off." in res.follow()
    dbsession.expire_all()
    user = dbsession.get(User, plain_user.id)
    assert not user.totp_enabled and user.totp_secret is None
    assert "auth.totp_disable" in actions(dbsession)


def test_turn_off_is_refused_while_required(user_app, dbsession, secret_box, plain_user):
    secret = enable_totp(dbsession, secret_box, plain_user)
    SettingsService(dbsession).update(totp_required=True)
    dbsession.commit()
    page = user_app.get("/profile/2fa")
    assert "cannot be turned off" in page and "Turn off two-factor sign-in" not in page
    res = post(user_app, "/profile/2fa/disable", {"code": code_now(secret)},
               form_url="/profile/2fa")
    assert res.status_int == 200 and "cannot be turned off" in res
    dbsession.expire_all()
    assert dbsession.get(User, plain_user.id).totp_enabled


def test_turn_off_page_without_post_goes_back(user_app):
    res = user_app.get("/profile/2fa/disable")
    assert res.status_int == 303 and urlparse(res.location).path == "/profile/2fa"


def test_enrolment_needs_a_signed_in_user(testapp):
    res = testapp.get("/profile/2fa")
    assert res.status_int == 303 and urlparse(res.location).path == "/login"


# -- 2FA required ------------------------------------------------------------------------

def test_required_2fa_sends_users_without_it_to_enrolment(user_app, dbsession, plain_user):
    SettingsService(dbsession).update(totp_required=True)
    dbsession.commit()
    for url in ("/", "/profile/servers", "/profile"):
        res = user_app.get(url)
        assert res.status_int == 303 and urlparse(res.location).path == "/profile/2fa", url
    page = res.follow()
    assert "This panel requires two-factor sign-in." in page
    assert "requires it: set it up to go on" in page
    user_app.get("/static/ezpyr.css", status=200)
    # enrolling opens the panel again
    secret = enrolment_secret(page)
    post(user_app, "/profile/2fa", {"code": pyotp.TOTP(secret).now()})
    assert user_app.get("/profile/servers").status_int == 200


def test_required_2fa_still_lets_users_sign_out(user_app, dbsession):
    SettingsService(dbsession).update(totp_required=True)
    dbsession.commit()
    res = post(user_app, "/logout", form_url="/profile/2fa")
    assert urlparse(res.location).path == "/login"
    assert not signed_in(user_app)


def test_required_2fa_applies_to_admins_and_to_posts(admin_app, dbsession):
    page = admin_app.get("/user-groups/new")
    SettingsService(dbsession).update(totp_required=True)
    dbsession.commit()
    res = admin_app.get("/settings")
    assert res.status_int == 303 and urlparse(res.location).path == "/profile/2fa"
    res = admin_app.post("/user-groups/new", {"name": "ops", "csrf_token": csrf_from(page)})
    assert res.status_int == 303 and urlparse(res.location).path == "/profile/2fa"
    dbsession.expire_all()
    assert dbsession.query(UserGroup).count() == 0


def test_users_with_2fa_are_not_redirected(user_app, dbsession, secret_box, plain_user):
    enable_totp(dbsession, secret_box, plain_user)
    SettingsService(dbsession).update(totp_required=True)
    dbsession.commit()
    assert user_app.get("/profile/servers").status_int == 200
