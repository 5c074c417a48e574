"""CSRF, security headers, cookie flags and safe redirects after sign-in."""
from urllib.parse import urlparse

import pytest
import webtest

from ezpyr import main
from ezpyr.activity.models import ActivityEntry
from ezpyr.auth.models import LoginThrottle
from ezpyr.users.models import UserGroup
from tests.conftest import app_settings
from tests.factories import PASSWORD, csrf_from


# -- CSRF ------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "forged-token"])
def test_a_post_without_the_right_token_is_refused_and_changes_nothing(admin_app, dbsession,
                                                                        token):
    admin_app.get("/user-groups/new")
    data = {"name": "ops"} if token is None else {"name": "ops", "csrf_token": token}
    res = admin_app.post("/user-groups/new", data, status=400)
    assert "Nothing was changed." in res
    dbsession.expire_all()
    assert dbsession.query(UserGroup).count() == 0


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_sign_in_without_the_right_token_is_refused(testapp, plain_user, dbsession, token):
    testapp.get("/login")
    data = {"username": "plainuser", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    testapp.post("/login", data, status=400)
    res = testapp.get("/profile/servers")
    assert res.status_int == 303 and urlparse(res.location).path == "/login"
    dbsession.expire_all()
    assert dbsession.query(LoginThrottle).count() == 0
    assert dbsession.query(ActivityEntry).count() == 0


def test_a_token_from_another_session_is_refused(testapp, wsgi_app, plain_user, dbsession):
    other = webtest.TestApp(wsgi_app)
    token = csrf_from(other.get("/login"))
    testapp.get("/login")
    testapp.post("/login", {"username": "plainuser", "password": PASSWORD,
                            "csrf_token": token}, status=400)


# -- headers and cookies -------------------------------------------------------------

def test_security_headers(testapp):
    res = testapp.get("/login")
    assert res.headers["X-Frame-Options"] == "DENY"
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    csp = res.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert res.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in res.headers  # not configured for HTTPS


def test_headers_on_signed_in_pages_and_errors(admin_app):
    for res in (admin_app.get("/user-groups"), admin_app.get("/no-such-page", status=404)):
        assert res.headers["X-Frame-Options"] == "DENY"
        assert res.headers["Cache-Control"] == "no-store"


def session_cookie(res) -> str:
    cookies = [v for k, v in res.headerlist if k == "Set-Cookie" and v.startswith("ezpyr_session=")]
    assert cookies, "no session cookie set"
    return cookies[-1]


def test_the_session_cookie_is_httponly_and_samesite_lax(testapp):
    cookie = session_cookie(testapp.get("/login")).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "; secure" not in cookie  # plain HTTP in this configuration


@pytest.fixture(scope="module")
def secure_app(database_url, engine):
    return main({}, **app_settings(database_url, **{"ezpyr.session.secure": "true",
                                                    "ezpyr.engine": engine}))


def test_with_secure_sessions_the_cookie_is_secure_and_hsts_is_sent(secure_app, dbsession):
    browser = webtest.TestApp(secure_app, extra_environ={"wsgi.url_scheme": "https"})
    res = browser.get("/login")
    cookie = session_cookie(res).lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert res.headers["Strict-Transport-Security"].startswith("max-age=")


# -- where sign-in leads ------------------------------------------------------------------

def sign_in(testapp, next_url):
    page = testapp.get("/login", {"next": next_url})
    return testapp.post(page.request.url, {"username": "plainuser", "password": PASSWORD,
                                           "csrf_token": csrf_from(page)})


@pytest.mark.parametrize("target", [
    "//evil.example", "https://evil.example", "http://evil.example/profile",
    "/\\evil.example", "\\\\evil.example", "javascript:alert(1)", "/\t/evil.example",
    "evil.example",
])
def test_next_cannot_lead_off_site(testapp, plain_user, target):
    res = sign_in(testapp, target)
    assert res.status_int == 303
    location = urlparse(res.location)
    assert location.netloc == "localhost" and location.path == "/"
    assert "evil" not in res.location


def test_next_leads_to_a_page_on_this_site(testapp, plain_user):
    res = sign_in(testapp, "/profile/servers?q=web")
    assert res.location.endswith("/profile/servers?q=web")


# -- flash messages ------------------------------------------------------------------

def test_messages_never_followed_do_not_outgrow_the_session_cookie(admin_app, dbsession):
    """A script that posts and never follows the redirect leaves one message
    per change in the session; the oldest are dropped, so the hundredth
    committed change is still answered with its redirect, not an error."""
    token = csrf_from(admin_app.get("/user-groups/new"))
    for number in range(100):
        res = admin_app.post("/user-groups/new", {"name": f"a-rather-long-group-name-{number:03}",
                                                 "csrf_token": token})
        assert res.status_int == 303, number
    assert len(admin_app.cookies["ezpyr_session"]) < 3000
    dbsession.expire_all()
    assert dbsession.query(UserGroup).count() == 100
    page = admin_app.get("/user-groups")
    shown = [n for n in range(100) if f"User group a-rather-long-group-name-{n:03} created." in page]
    assert shown == [95, 96, 97, 98, 99]
