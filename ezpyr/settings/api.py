"""The API's panel-wide settings: the same service as the settings page
and ``ezpyr-admin settings``."""
from __future__ import annotations

from ezpyr.api.framework import body_of, check_if_match, endpoint, route
from ezpyr.settings.schemas import SettingsOut, SettingsPatch

SETTINGS = route("api.settings", "/settings")


@endpoint(SETTINGS, "GET", "The panel-wide settings", response=SettingsOut, etag=True, tag="settings")
def get_settings(request):
    return SettingsOut.of(request.services.settings_service.current())


@endpoint(SETTINGS, "PATCH", "Change settings, checked as on the settings page (send If-Match with the ETag "
          "you read to refuse a lost update)", body=SettingsPatch, response=SettingsOut, write=True, etag=True,
          does="settings.update", tag="settings")
def patch_settings(request):
    service = request.services.settings_service
    check_if_match(request, SettingsOut.of(service.current()))
    data = body_of(request, SettingsPatch).model_dump(exclude_none=True)
    service.change(**data)
    return SettingsOut.of(service.current())
