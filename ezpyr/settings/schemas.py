"""The JSON shape of the panel-wide settings: written by the API and by
``ezpyr-admin settings --json``, read from the API's PATCH body (with the
settings page's limits), and described in the OpenAPI document."""
from __future__ import annotations

from dataclasses import asdict

from pydantic import BaseModel, Field, StrictBool, StrictInt

from ezpyr.api.schemas import Strict
from ezpyr.settings.services import LABELS, LIMITS, PanelSettings


def _number(name: str):
    low, high = LIMITS[name]
    return Field(None, ge=low, le=high, description=f"{LABELS[name]}: a whole number from {low} to {high}")


def _switch(name: str):
    return Field(None, description=f"{LABELS[name]}: true or false")


class SettingsOut(BaseModel):
    session_timeout_minutes: int = Field(description=LABELS["session_timeout_minutes"])
    password_min_length: int = Field(description=LABELS["password_min_length"])
    password_require_mixed: bool = Field(description=LABELS["password_require_mixed"])
    totp_required: bool = Field(description=LABELS["totp_required"])
    lockout_threshold: int = Field(description=LABELS["lockout_threshold"])
    lockout_minutes: int = Field(description=LABELS["lockout_minutes"])

    @classmethod
    def of(cls, current: PanelSettings) -> dict:
        """The settings as JSON data."""
        return cls(**asdict(current)).model_dump(mode="json")


class SettingsPatch(Strict):
    """The settings to change; absent (or null) ones keep their value."""

    session_timeout_minutes: StrictInt | None = _number("session_timeout_minutes")
    password_min_length: StrictInt | None = _number("password_min_length")
    password_require_mixed: StrictBool | None = _switch("password_require_mixed")
    totp_required: StrictBool | None = _switch("totp_required")
    lockout_threshold: StrictInt | None = _number("lockout_threshold")
    lockout_minutes: StrictInt | None = _number("lockout_minutes")
