"""Lockout that an attacker cannot aim (issue 8, item 4): counting that
cannot race, limits per address and in all, the owner's own address and a
second factor still get in, the same limit on /profile/password, and the
admins' view of who is held back."""
import threading

import pyotp
import pytest

from ezpyr.activity.models import ActivityEntry
from ezpyr.auth.models import LoginThrottle
from ezpyr.auth.services import AuthService
from ezpyr.auth.totp import TotpService, UsedSteps
from ezpyr.database import make_engine, make_session_factory
from tests.auth.conftest import enable_totp
from tests.factories import PASSWORD, csrf_from, login, make_admin, make_user

ATTACKER = "203.0.113.66"
HOME = "198.51.100.10"


def fail(auth, dbsession, username, address, times=1):
    result = None
    for _ in range(times):
        result = auth.check_password(username, "wrong password", address)
        dbsession.commit()
    return result


def signed_in_before(dbsession, username, address):
    dbsession.add(ActivityEntry(action="auth.login", username=username, remote_addr=address))
    dbsession.commit()


@pytest.fixture
def auth(dbsession, passwords):
    return AuthService(dbsession, passwords)


def test_anonymous_failures_from_one_address_do_not_lock_the_admin_out(auth, dbsession, passwords):
    admin = make_admin(dbsession, passwords)
    fail(auth, dbsession, admin.username, ATTACKER, times=20)
    assert auth.check_password(admin.username, PASSWORD, ATTACKER).locked
    # the admin, from anywhere else, is not affected
    assert auth.check_password(admin.username, PASSWORD, HOME).user is admin


def test_a_username_sprayed_across_accounts_locks_the_address_out(auth, dbsession, passwords):
    for n in range(20):
        make_user(dbsession, passwords, f"user{n}")
    for n in range(20):
        fail(auth, dbsession, f"user{n}", ATTACKER)
    result = auth.check_password("user0", PASSWORD, ATTACKER)
    assert result.locked and "Your address is locked out" in result.reason
    assert auth.check_password("user0", PASSWORD, HOME).user is not None


def test_many_addresses_close_an_account_to_new_addresses_but_not_to_its_owner(
        auth, dbsession, passwords, secret_box):
    alice = make_user(dbsession, passwords, "alice")
    signed_in_before(dbsession, "alice", HOME)
    for n in range(5):  # 5 addresses x 5 failures: over the account's 20
        fail(auth, dbsession, "alice", f"203.0.113.{n}", times=5)
    refused = auth.check_password("alice", PASSWORD, "192.0.2.99")
    assert refused.locked and "locked for new addresses" in refused.reason
    assert auth.check_password("alice", PASSWORD, HOME).user is alice
    dbsession.commit()
    # with a second factor, the right password and code get in from a new address
    secret = enable_totp(dbsession, secret_box, alice)
    step = auth.check_password("alice", PASSWORD, "192.0.2.98")
    assert step.needs_code
    dbsession.commit()
    totp = TotpService(dbsession, secret_box, UsedSteps(dbsession))
    assert auth.check_code(alice, pyotp.TOTP(secret).now(), totp, "192.0.2.98").user is alice


def test_parallel_guesses_get_no_more_checks_than_the_threshold(database_url, dbsession, passwords):
    make_user(dbsession, passwords, "alice")
    # two connections per guess: the request's and the counter's
    engine = make_engine({"sqlalchemy.url": database_url, "sqlalchemy.pool_size": "45"})
    factory = make_session_factory(engine)
    results, errors, start = [], [], threading.Barrier(20)

    def guess():
        session = factory()
        try:
            start.wait()
            results.append(AuthService(session, passwords).check_password("alice", "wrong", ATTACKER))
            session.commit()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            session.close()

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    assert errors == [] and len(results) == 20  # none died on a concurrent first insert
    checked = [r for r in results if r.reason.startswith("Wrong username or password.")]
    assert len(checked) == 5


def test_failed_names_that_are_no_account_are_not_recorded_as_typed(testapp, dbsession):
    login(testapp, "hunter2-my-password", "whatever")
    dbsession.expire_all()
    entry = dbsession.query(ActivityEntry).filter_by(action="auth.login_failed").one()
    assert "hunter2" not in (entry.target + entry.username + entry.details)
    assert all("hunter2" not in (row.key + row.username) for row in dbsession.query(LoginThrottle))


def test_the_current_password_check_is_limited_like_a_sign_in(user_app, dbsession):
    page = user_app.get("/profile/password")
    form = {"csrf_token": csrf_from(page), "current_password": "wrong",
            "new_password": "A-new-password-1234", "confirm": "A-new-password-1234"}
    for _ in range(5):
        user_app.post("/profile/password", form)
    res = user_app.post("/profile/password", dict(form, current_password=PASSWORD))
    assert res.status_int == 200 and "locked for your address" in res
    assert "Your password is changed" not in res


def test_admins_see_who_is_locked_out_and_can_release_an_address(admin_app, dbsession, passwords,
                                                                 wsgi_app):
    import webtest
    make_user(dbsession, passwords, "alice")
    browser = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": ATTACKER})
    for _ in range(5):
        login(browser, "alice", "wrong")
    page = admin_app.get("/users/locked")
    assert "account from address" in page and ATTACKER in page and "alice" in page
    release = next(f for f in page.forms.values() if f.action.endswith("/users/locked/release"))
    res = release.submit().follow()
    assert f"Address {ATTACKER} may sign in again" in res
    assert "Nobody is locked out on this node." in res
