"""``ezpyr-admin CONFIG settings …``: panel-wide settings on the command line."""
from __future__ import annotations

from dataclasses import asdict, fields

from ezpyr.cli import Admin, Done, table
from ezpyr.settings.schemas import SettingsOut
from ezpyr.settings.services import LABELS, LIMITS, PanelSettings
from ezpyr.validation import Invalid


# -- settings -----------------------------------------------------------------------------

TRUE_WORDS = ("true", "on", "yes", "1")
FALSE_WORDS = ("false", "off", "no", "0")


def parse_setting(item: str, defaults: dict) -> tuple[str, object]:
    name, sep, raw = item.partition("=")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    if not sep or not name:
        raise Invalid(f"{item!r}: write NAME=VALUE, e.g. lockout_threshold=5.")
    if name not in defaults:
        raise Invalid(f"There is no setting named {name!r}; the settings are: "
                      f"{', '.join(defaults)}.")
    if isinstance(defaults[name], bool):
        if raw.lower() in TRUE_WORDS:
            return name, True
        if raw.lower() in FALSE_WORDS:
            return name, False
        raise Invalid(f"{name}: {LABELS[name]} must be on or off (true or false), not {raw!r}.")
    low, high = LIMITS[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
        raise Invalid(f"{name}: {LABELS[name]} must be a whole number from {low} to {high}, "
                      f"not {raw!r}.")
    return name, int(raw)


def settings_rows(current: PanelSettings) -> list[list]:
    return [[name, str(value).lower() if isinstance(value, bool) else value, LABELS[name]]
            for name, value in asdict(current).items()]


def settings_show(a: Admin, args) -> Done:
    current = a.services.settings_service.current()
    return Done(table(["name", "value", "meaning"], settings_rows(current), ""),
                {"settings": SettingsOut.of(current)})


def settings_set(a: Admin, args) -> Done:
    service = a.services.settings_service
    defaults = {f.name: f.default for f in fields(PanelSettings)}
    values = dict(parse_setting(item, defaults) for item in args.assignments)
    try:
        changed = service.change(**values)
    except Invalid as error:
        raise Invalid(f"{error.field}: {error.message}" if error.field else error.message) from None
    if changed:
        message = "saved: " + ", ".join(f"{n}={str(v).lower() if isinstance(v, bool) else v}"
                                        for n, v in sorted(changed.items()))
    else:
        message = "nothing changed: the settings already had these values"
    return Done(message, {"message": message, "changed": changed,
                          "settings": SettingsOut.of(service.current())})


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    settings = cli.area("settings", "panel-wide settings")
    cli.action(settings, "show", settings_show, "every setting and its value")
    p = cli.action(settings, "set", settings_set, "change settings, checked as on the settings page",
                   does="settings.update")
    p.add_argument("assignments", nargs="+", metavar="NAME=VALUE",
                   help=f"one of: {', '.join(LABELS)}")
