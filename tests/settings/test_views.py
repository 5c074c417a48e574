"""The settings page."""
import pytest

from ezpyr.activity.models import ActivityEntry
from ezpyr.settings.models import Setting
from ezpyr.settings.services import SettingsService

GOOD = {
    "session_timeout_minutes": "45",
    "password_min_length": "12",
    "password_require_mixed": "y",
    "lockout_threshold": "5",
    "lockout_minutes": "15",
}


def save(app, **changes):
    from tests.factories import post
    return post(app, "/settings", {k: v for k, v in {**GOOD, **changes}.items() if v is not None})


def test_the_page_shows_the_current_values(admin_app, dbsession):
    SettingsService(dbsession).update(session_timeout_minutes=77)
    dbsession.commit()
    page = admin_app.get("/settings")
    form = page.forms[1]  # [0] is sign-out
    assert form["session_timeout_minutes"].value == "77"
    assert form["password_min_length"].value == "10"
    assert form["password_require_mixed"].checked is True
    assert form["totp_required"].checked is False


def test_save(admin_app, dbsession):
    res = save(admin_app, totp_required="y")
    assert res.status_int == 303
    # the admin has no second factor yet, so the next page is enrolment
    assert "Settings saved." in admin_app.get("/profile/2fa")
    dbsession.expire_all()
    current = SettingsService(dbsession).current()
    assert current.session_timeout_minutes == 45 and current.password_min_length == 12
    assert current.totp_required is True and current.password_require_mixed is True
    entry = dbsession.query(ActivityEntry).filter_by(action="settings.update").one()
    assert entry.details == ("password_min_length=12, session_timeout_minutes=45, "
                             "totp_required=True")
    assert entry.username == "root_admin"


def test_an_unticked_box_turns_a_setting_off(admin_app, dbsession):
    save(admin_app, password_require_mixed=None)
    dbsession.expire_all()
    assert SettingsService(dbsession).current().password_require_mixed is False


def test_saving_without_changes_records_nothing(admin_app, dbsession):
    save(admin_app, session_timeout_minutes="30", password_min_length="10")
    assert "Nothing changed." in admin_app.get("/settings")
    dbsession.expire_all()
    assert dbsession.query(ActivityEntry).filter_by(action="settings.update").count() == 0


@pytest.mark.parametrize("name,value,message", [
    ("session_timeout_minutes", "0", "Type a whole number from 1 to 1440."),
    ("session_timeout_minutes", "abc", "Type a whole number from 1 to 1440."),
    ("session_timeout_minutes", "", "Type a whole number from 1 to 1440."),
    ("password_min_length", "3", "Type a whole number from 8 to 128."),
    ("password_min_length", "9.5", "Type a whole number from 8 to 128."),
    ("lockout_threshold", "101", "Type a whole number from 1 to 100."),
    ("lockout_minutes", "-1", "Type a whole number from 1 to 1440."),
])
def test_bad_values_are_refused_beside_the_field(admin_app, dbsession, name, value, message):
    # a good change beside the bad one is not saved either
    res = save(admin_app, **{"totp_required": "y", name: value})
    assert res.status_int == 200
    assert f'<span class="error" id="{name}-error">{message}</span>' in res
    assert res.text.count('class="error"') == 1
    dbsession.expire_all()
    assert dbsession.query(Setting).count() == 0
    assert dbsession.query(ActivityEntry).filter_by(action="settings.update").count() == 0


def test_several_bad_values_each_get_a_message(admin_app):
    res = save(admin_app, session_timeout_minutes="0", password_min_length="3",
               lockout_threshold="x")
    for name in ("session_timeout_minutes", "password_min_length", "lockout_threshold"):
        assert f'id="{name}-error"' in res


def test_anonymous_is_sent_to_sign_in(testapp):
    res = testapp.get("/settings")
    assert res.status_int == 303 and "/login?next=" in res.location


def test_non_admins_are_refused(user_app, dbsession):
    user_app.get("/settings", status=403)
    from tests.factories import post
    post(user_app, "/settings", GOOD, form_url="/profile/2fa", status=403)
    dbsession.expire_all()
    assert dbsession.query(Setting).count() == 0
