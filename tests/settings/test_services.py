"""SettingsService: reading, checking and changing the panel-wide settings."""
import pytest

from ezpyr.settings.models import Setting
from ezpyr.settings.services import LIMITS, PanelSettings, SettingsService
from ezpyr.validation import Invalid


def test_defaults_when_nothing_is_stored(dbsession):
    assert SettingsService(dbsession).current() == PanelSettings()


def test_change_stores_only_what_changed(dbsession):
    service = SettingsService(dbsession)
    changed = service.change(session_timeout_minutes=45, password_min_length=10,
                             totp_required=True)
    dbsession.commit()
    assert changed == {"session_timeout_minutes": 45, "totp_required": True}
    assert {s.name: s.value for s in dbsession.query(Setting)} == {
        "session_timeout_minutes": "45", "totp_required": "true"}
    current = service.current()
    assert current.session_timeout_minutes == 45 and current.totp_required is True
    assert service.change(session_timeout_minutes=45) == {}


@pytest.mark.parametrize("name,value", [
    ("session_timeout_minutes", 0),
    ("session_timeout_minutes", 24 * 60 + 1),
    ("password_min_length", 3),
    ("lockout_threshold", 0),
    ("lockout_minutes", -5),
    ("lockout_minutes", "15"),
    ("lockout_minutes", None),
    ("lockout_minutes", True),
    ("totp_required", "yes"),
])
def test_out_of_range_values_are_refused_and_nothing_is_stored(dbsession, name, value):
    with pytest.raises(Invalid) as error:
        # a good value beside the bad one is not stored either
        SettingsService(dbsession).change(**{"lockout_minutes": 20, name: value})
    assert error.value.field == name
    dbsession.commit()
    assert dbsession.query(Setting).count() == 0


def test_the_message_names_the_range(dbsession):
    with pytest.raises(Invalid, match="Session timeout \\(minutes\\) must be a whole number "
                                      "from 1 to 1440."):
        SettingsService(dbsession).check(session_timeout_minutes=0)


def test_the_limits_themselves_are_accepted(dbsession):
    service = SettingsService(dbsession)
    service.change(**{name: low for name, (low, high) in LIMITS.items()})
    service.change(**{name: high for name, (low, high) in LIMITS.items()})
    dbsession.commit()
    assert service.current().lockout_threshold == LIMITS["lockout_threshold"][1]


def test_unknown_names_are_a_programming_error(dbsession):
    with pytest.raises(KeyError):
        SettingsService(dbsession).change(colour="blue")


def test_an_unreadable_stored_value_falls_back_to_the_default(dbsession):
    dbsession.add(Setting(name="lockout_threshold", value="many"))
    dbsession.commit()
    assert SettingsService(dbsession).current().lockout_threshold == 5
