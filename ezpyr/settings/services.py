"""Reading and changing the panel-wide settings."""
from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from ezpyr.activity.services import NoActivity
from ezpyr.settings.models import Setting
from ezpyr.validation import Invalid


@dataclass(frozen=True)
class PanelSettings:
    session_timeout_minutes: int = 30
    password_min_length: int = 10
    password_require_mixed: bool = True
    totp_required: bool = False
    lockout_threshold: int = 5
    lockout_minutes: int = 15


# What each setting is called on the settings page and in messages.
LABELS = {
    "session_timeout_minutes": "Session timeout (minutes)",
    "password_min_length": "Minimum password length",
    "password_require_mixed": "Passwords must mix character kinds",
    "totp_required": "Two-factor sign-in required for everyone",
    "lockout_threshold": "Failed sign-ins before lockout",
    "lockout_minutes": "Lockout duration (minutes)",
}

# name -> (lowest, highest) for the whole-number settings
LIMITS = {
    "session_timeout_minutes": (1, 24 * 60),
    "password_min_length": (8, 128),
    "lockout_threshold": (1, 100),
    "lockout_minutes": (1, 24 * 60),
}


def _parse(kind, raw: str):
    if kind is bool:
        return raw == "true"
    return kind(raw)


def _render(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class SettingsService:
    def __init__(self, dbsession: Session, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()

    def current(self) -> PanelSettings:
        stored = {s.name: s.value for s in self.dbsession.scalars(select(Setting))}
        values = {}
        for f in fields(PanelSettings):
            if f.name in stored:
                try:
                    values[f.name] = _parse(type(f.default), stored[f.name])
                except ValueError:
                    pass  # an unreadable stored value falls back to the default
        return PanelSettings(**values)

    def check(self, **values) -> None:
        """Raise Invalid (naming the field) for the first value out of range."""
        known = {f.name: f for f in fields(PanelSettings)}
        for name, value in values.items():
            if name not in known:
                raise KeyError(name)
            kind = type(known[name].default)
            if kind is bool:
                if not isinstance(value, bool):
                    raise Invalid(f"{LABELS[name]} must be on or off.", name)
                continue
            low, high = LIMITS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise Invalid(
                    f"{LABELS[name]} must be a whole number from {low} to {high}.", name
                )

    def change(self, **values) -> dict:
        """Check every value, then store them; nothing is stored when one is
        refused. Returns the settings that changed, name -> new value (and
        records them in the activity log, when there are any)."""
        self.check(**values)
        before = self.current()
        changed = {n: v for n, v in values.items() if getattr(before, n) != v}
        if changed:
            self.update(**changed)
            self.activity.record("settings.update", "settings",
                                 ", ".join(f"{name}={value}" for name, value in sorted(changed.items())))
        return changed

    def update(self, **changes) -> PanelSettings:
        """Store the given settings; returns the new whole set. Callers
        validate first (see forms); unknown names are a programming error."""
        known = {f.name: f for f in fields(PanelSettings)}
        rows = {s.name: s for s in self.dbsession.scalars(select(Setting))}
        for name, value in changes.items():
            if name not in known:
                raise KeyError(name)
            rendered = _render(value)
            row = rows.get(name)
            if row is None:
                self.dbsession.add(Setting(name=name, value=rendered))
            elif row.value != rendered:
                row.value = rendered
        self.dbsession.flush()
        return self.current()
