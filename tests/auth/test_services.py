"""AuthService (password, code, lockout) and TotpService, built directly."""
import datetime as dt
import time

import pyotp
import pytest

from ezpyr.auth.models import LoginThrottle
from ezpyr.auth.services import BAD_CREDENTIALS, AuthService
from ezpyr.auth.totp import REUSED_CODE, WRONG_CODE, TotpService, UsedSteps
from ezpyr.meta import utcnow
from ezpyr.settings.services import SettingsService
from ezpyr.validation import Invalid
from tests.auth.conftest import enable_totp, wrong_code
from tests.factories import PASSWORD, make_user


@pytest.fixture
def auth(dbsession, passwords):
    return AuthService(dbsession, passwords)


@pytest.fixture
def totp(dbsession, secret_box):
    return TotpService(dbsession, secret_box, UsedSteps(dbsession))


@pytest.fixture
def alice(dbsession, passwords):
    return make_user(dbsession, passwords, "alice")


def fail(auth, dbsession, username="alice", times=1):
    result = None
    for _ in range(times):
        result = auth.check_password(username, "wrong password")
        dbsession.commit()
    return result


def pair_failures(dbsession, username):
    dbsession.expire_all()
    row = dbsession.query(LoginThrottle).filter_by(kind="pair", username=username).first()
    return row.failures if row else None


def windows_run_out(dbsession):
    dbsession.query(LoginThrottle).update(
        {LoginThrottle.window_started_at: utcnow() - dt.timedelta(days=1)})
    dbsession.commit()


# -- lockout -------------------------------------------------------------------

def test_right_password_signs_in(auth, alice):
    result = auth.check_password("alice", PASSWORD)
    assert result.user is alice and not result.needs_code and result.reason == ""


def test_failures_below_the_threshold_are_reset_by_a_success(auth, alice, dbsession):
    result = fail(auth, dbsession, times=4)
    assert result.reason == f"{BAD_CREDENTIALS} 1 attempt left before the account is locked for your address."
    assert pair_failures(dbsession, "alice") == 4
    assert auth.check_password("alice", PASSWORD).user is alice
    dbsession.commit()
    assert pair_failures(dbsession, "alice") is None
    # the count starts again from zero
    assert "4 attempts left" in fail(auth, dbsession).reason


def test_the_threshold_locks_the_account_with_the_reason(auth, alice, dbsession):
    fail(auth, dbsession, times=4)
    result = fail(auth, dbsession)
    assert result.user is None and result.locked
    assert "now locked for your address for 15 minutes after 5 failed sign-ins" in result.reason
    refused = auth.check_password("alice", PASSWORD)
    assert refused.user is None and refused.locked
    assert refused.reason.startswith("This account is locked for your address after too many failed sign-ins.")
    assert "Try again in 15 minutes" in refused.reason
    assert auth.is_locked("alice")


def test_threshold_and_duration_come_from_the_settings(auth, alice, dbsession):
    SettingsService(dbsession).update(lockout_threshold=2, lockout_minutes=1)
    dbsession.commit()
    assert "1 attempt left" in fail(auth, dbsession).reason
    assert "now locked for your address for 1 minute after 2 failed" in fail(auth, dbsession).reason
    assert "Try again in 1 minute," in auth.check_password("alice", PASSWORD).reason


def test_a_lock_runs_out(auth, alice, dbsession):
    fail(auth, dbsession, times=5)
    windows_run_out(dbsession)
    assert not auth.is_locked("alice")
    assert auth.check_password("alice", PASSWORD).user is alice


def test_after_a_lock_runs_out_the_count_starts_again(auth, alice, dbsession):
    fail(auth, dbsession, times=5)
    windows_run_out(dbsession)
    assert "4 attempts left" in fail(auth, dbsession).reason


def test_unlock(auth, alice, dbsession):
    fail(auth, dbsession, times=5)
    assert auth.unlock("alice") is True
    dbsession.commit()
    assert auth.check_password("alice", PASSWORD).user is alice
    assert auth.unlock("alice") is False


def test_unknown_names_get_the_same_answers_as_known_ones(auth, alice, dbsession):
    for attempt in range(5):
        known = fail(auth, dbsession, "alice")
        unknown = fail(auth, dbsession, "nobody")
        assert known.reason == unknown.reason and known.locked == unknown.locked
    assert known.locked
    assert auth.check_password("alice", PASSWORD).reason == \
        auth.check_password("nobody", PASSWORD).reason


def test_usernames_are_matched_in_lower_case(auth, alice, dbsession):
    assert auth.check_password("  ALICE ", PASSWORD).user is alice
    dbsession.commit()
    fail(auth, dbsession, "Alice", times=5)
    assert auth.check_password("alice", PASSWORD).locked


def test_a_suspended_user_is_refused_with_the_reason(auth, alice, dbsession):
    alice.suspended = True
    dbsession.commit()
    result = auth.check_password("alice", PASSWORD)
    assert result.user is None and "suspended" in result.reason


def test_an_empty_name_is_not_counted(auth, dbsession):
    assert auth.check_password("", "x").reason == BAD_CREDENTIALS
    dbsession.commit()
    assert dbsession.query(LoginThrottle).count() == 0


# -- the second factor at sign-in ----------------------------------------------------

def test_a_user_with_a_second_factor_needs_a_code(auth, alice, totp, dbsession, secret_box):
    secret = enable_totp(dbsession, secret_box, alice)
    result = auth.check_password("alice", PASSWORD)
    assert result.user is alice and result.needs_code
    dbsession.commit()  # the code comes in a request of its own
    assert auth.check_code(alice, pyotp.TOTP(secret).now(), totp).user is alice


def test_a_known_password_does_not_reset_the_count_of_wrong_codes(auth, alice, totp, dbsession,
                                                                  secret_box):
    secret = enable_totp(dbsession, secret_box, alice)
    for _ in range(4):
        assert auth.check_password("alice", PASSWORD).needs_code
        dbsession.commit()
        result = auth.check_code(alice, wrong_code(secret), totp)
        dbsession.commit()
        assert result.user is None and result.reason.startswith(WRONG_CODE)
    result = auth.check_code(alice, wrong_code(secret), totp)
    dbsession.commit()
    assert result.locked and "now locked" in result.reason
    assert auth.check_password("alice", PASSWORD).locked
    dbsession.commit()
    # even the right code does not get past the lock
    assert auth.check_code(alice, pyotp.TOTP(secret).now(), totp).locked


def test_the_right_code_clears_the_count(auth, alice, totp, dbsession, secret_box):
    secret = enable_totp(dbsession, secret_box, alice)
    auth.check_code(alice, wrong_code(secret), totp)
    dbsession.commit()
    assert auth.check_code(alice, pyotp.TOTP(secret).now(), totp).user is alice
    dbsession.commit()
    assert pair_failures(dbsession, "alice") is None


def test_a_code_works_once(auth, alice, totp, dbsession, secret_box):
    secret = enable_totp(dbsession, secret_box, alice)
    code = pyotp.TOTP(secret).now()
    assert auth.check_code(alice, code, totp).user is alice
    dbsession.commit()
    again = auth.check_code(alice, code, totp)
    assert again.user is None and again.reason.startswith(REUSED_CODE)
    dbsession.commit()
    # the next step's code is still good
    assert auth.check_code(alice, pyotp.TOTP(secret).at(time.time() + 30), totp).user is alice


# -- TotpService ---------------------------------------------------------------------

NOW = 1_700_000_000.0


def test_the_enrolment_address_names_the_issuer_and_the_user():
    uri = TotpService.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "alice")
    assert uri.startswith("otpauth://totp/ezpyr:alice?")
    assert "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri and "issuer=ezpyr" in uri


def test_the_qr_code_is_an_svg_data_uri():
    import base64
    data = TotpService.qr_data_uri("otpauth://totp/ezpyr:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert data.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(data.split(",", 1)[1])
    assert svg.startswith(b"<svg") and b"<path" in svg


def test_enrol_stores_the_secret_encrypted(totp, alice, dbsession, secret_box):
    secret = totp.new_secret()
    totp.enrol(alice, secret, pyotp.TOTP(secret).at(NOW), now=NOW)
    dbsession.commit()
    dbsession.expire_all()
    assert alice.totp_enabled and alice.totp_secret != secret
    assert secret_box.decrypt(alice.totp_secret) == secret


@pytest.mark.parametrize("code", ["", "12345", "abcdef", "1234567"])
def test_enrol_with_a_bad_code_stores_nothing(totp, alice, dbsession, code):
    with pytest.raises(Invalid) as error:
        totp.enrol(alice, totp.new_secret(), code, now=NOW)
    assert error.value.message == WRONG_CODE and error.value.field == "code"
    dbsession.commit()
    dbsession.expire_all()
    assert not alice.totp_enabled and alice.totp_secret is None


def test_codes_one_step_either_side_are_accepted_and_spaces_ignored(totp, alice, dbsession):
    secret = totp.new_secret()
    early = pyotp.TOTP(secret).at(NOW - 30)
    totp.enrol(alice, secret, f"{early[:3]} {early[3:]}", now=NOW)
    totp.check_code(alice, pyotp.TOTP(secret).at(NOW + 30), now=NOW)
    with pytest.raises(Invalid):
        totp.check_code(alice, pyotp.TOTP(secret).at(NOW + 90), now=NOW)


def test_the_enrolment_code_cannot_be_used_again(totp, alice):
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(NOW)
    totp.enrol(alice, secret, code, now=NOW)
    with pytest.raises(Invalid, match="already used"):
        totp.check_code(alice, code, now=NOW)


def test_an_older_code_after_a_newer_one_is_refused(totp, alice):
    secret = totp.new_secret()
    totp.enrol(alice, secret, pyotp.TOTP(secret).at(NOW), now=NOW)
    totp.check_code(alice, pyotp.TOTP(secret).at(NOW + 30), now=NOW)
    with pytest.raises(Invalid, match="already used"):
        totp.check_code(alice, pyotp.TOTP(secret).at(NOW - 30), now=NOW)


def test_enrolling_twice_is_refused(totp, alice):
    secret = totp.new_secret()
    totp.enrol(alice, secret, pyotp.TOTP(secret).at(NOW), now=NOW)
    with pytest.raises(Invalid, match="already on"):
        totp.enrol(alice, secret, pyotp.TOTP(secret).at(NOW + 30), now=NOW)


def test_disable_needs_a_current_code(totp, alice, dbsession, secret_box):
    secret = enable_totp(dbsession, secret_box, alice)
    with pytest.raises(Invalid, match="not right"):
        totp.disable(alice, wrong_code(secret), required=False)
    assert alice.totp_enabled
    totp.disable(alice, pyotp.TOTP(secret).now(), required=False)
    dbsession.commit()
    dbsession.expire_all()
    assert not alice.totp_enabled and alice.totp_secret is None


def test_disable_is_refused_while_the_panel_requires_it(totp, alice, dbsession, secret_box):
    secret = enable_totp(dbsession, secret_box, alice)
    with pytest.raises(Invalid, match="requires two-factor"):
        totp.disable(alice, pyotp.TOTP(secret).now(), required=True)
    assert alice.totp_enabled


def test_reset_removes_the_second_factor(totp, alice, dbsession, secret_box):
    enable_totp(dbsession, secret_box, alice)
    totp.reset(alice)
    dbsession.commit()
    dbsession.expire_all()
    assert not alice.totp_enabled and alice.totp_secret is None
