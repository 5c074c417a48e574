"""The three faces of every admin action: the panel, the API and
``ezpyr-admin``. Each face says which actions it offers, by the name the
service records in the activity log (``server.create``): a panel view with
:func:`does`, an API endpoint with ``endpoint(..., does=...)``, a command
with ``cli.action(..., does=...)``. ``tests/test_faces.py`` walks the three
and fails when an action is offered by one face and not the others (unless
:data:`ONE_FACE` says why)."""
from __future__ import annotations

PANEL, API, CLI = "panel", "api", "cli"
OFFERED: dict[str, set[str]] = {PANEL: set(), API: set(), CLI: set()}

# actions that are offered by fewer than three faces, and why
ONE_FACE: dict[str, str] = {
    "server.import": "the API's import comes with the import job (a CSV import runs as a job)",
}


def offer(face: str, actions: tuple[str, ...] | list[str] | str | None) -> None:
    if not actions:
        return
    OFFERED[face].update([actions] if isinstance(actions, str) else actions)


def does(*actions: str):
    """Marks a panel view as offering ``actions``."""
    offer(PANEL, actions)

    def mark(view):
        return view

    return mark
