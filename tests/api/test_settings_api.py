"""The API's settings: read with an ETag, changed with PATCH through the
settings page's service (same limits, same activity entry), 422 per field
with nothing changed, 412 on a stale ETag."""
from __future__ import annotations

from sqlalchemy import select

from ezpyr.activity.models import ActivityEntry
from ezpyr.settings.services import PanelSettings, SettingsService

URL = "/api/v1/settings"


def updates(dbsession) -> list[tuple[str, str]]:
    return [(e.target, e.details) for e in dbsession.scalars(
        select(ActivityEntry).where(ActivityEntry.action == "settings.update"))]


def test_read_and_change_the_settings(testapp, tokens, dbsession):
    read = testapp.get(URL, headers=tokens.ro)
    assert read.json == {"session_timeout_minutes": 30, "password_min_length": 10, "password_require_mixed": True,
                         "totp_required": False, "lockout_threshold": 5, "lockout_minutes": 15}
    changed = testapp.patch_json(URL, {"lockout_threshold": 7, "password_require_mixed": False},
                                 headers={**tokens.rw, "If-Match": read.headers["ETag"]})
    assert changed.json["lockout_threshold"] == 7 and changed.json["password_require_mixed"] is False
    assert changed.headers["ETag"] != read.headers["ETag"]
    dbsession.expire_all()
    current = SettingsService(dbsession).current()
    assert (current.lockout_threshold, current.password_require_mixed, current.session_timeout_minutes) == (
        7, False, 30)
    assert updates(dbsession) == [("settings", "lockout_threshold=7, password_require_mixed=False; "
                                               "via API token script-rw")]
    # the same values again change nothing and record nothing
    testapp.patch_json(URL, {"lockout_threshold": 7}, headers=tokens.rw)
    assert len(updates(dbsession)) == 1


def test_a_stale_etag_is_refused(testapp, tokens, dbsession):
    first = testapp.get(URL, headers=tokens.rw).headers["ETag"]
    testapp.patch_json(URL, {"lockout_minutes": 20}, headers={**tokens.rw, "If-Match": first})
    stale = testapp.patch_json(URL, {"lockout_minutes": 25}, headers={**tokens.rw, "If-Match": first}, status=412)
    assert "ETag" in stale.json["error"]
    dbsession.expire_all()
    assert SettingsService(dbsession).current().lockout_minutes == 20


def test_invalid_values_are_422_per_field_and_change_nothing(testapp, tokens, dbsession):
    for body, fields in (
            ({"lockout_threshold": 0, "session_timeout_minutes": 24 * 60 + 1}, {"lockout_threshold",
                                                                                "session_timeout_minutes"}),
            ({"password_min_length": 7}, {"password_min_length"}),
            ({"password_min_length": "12"}, {"password_min_length"}),  # a number, not a string
            ({"totp_required": "yes"}, {"totp_required"}),
            ({"lockout_minutes": 1.5}, {"lockout_minutes"}),
            ({"colour": "blue"}, {"colour"})):
        answer = testapp.patch_json(URL, body, headers=tokens.rw, status=422)
        assert set(answer.json["fields"]) == fields, body
    dbsession.expire_all()
    assert SettingsService(dbsession).current() == PanelSettings()
    assert updates(dbsession) == []


def test_the_service_names_the_field_it_refuses(testapp, tokens, dbsession, monkeypatch):
    """A refusal the schema cannot see (the service's own check) is a 422
    naming its field too."""
    from ezpyr.settings import services

    monkeypatch.setitem(services.LIMITS, "lockout_threshold", (1, 6))
    answer = testapp.patch_json(URL, {"lockout_threshold": 7}, headers=tokens.rw, status=422)
    assert answer.json["fields"] == {"lockout_threshold": "Failed sign-ins before lockout must be a whole number "
                                                          "from 1 to 6."}
