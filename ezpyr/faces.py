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
    # a user's own profile: the API and ezpyr-admin act as an admin on any user (user.key_add,
    # user.password_reset, user.reset_2fa …); these are the signed-in person acting on themselves
    "profile.password": "a user changes their own password on their profile page, typing the current one; "
                        "an admin sets anyone's with user.password_reset (all three faces)",
    "profile.key_add": "a user adds a key of their own on their profile page; an admin adds anyone's "
                       "with user.key_add (all three faces)",
    "profile.key_delete": "a user deletes a key of their own on their profile page; an admin deletes "
                          "anyone's with user.key_delete (all three faces)",
    "auth.totp_enable": "enrolling needs the person's authenticator app and a code from it, in their "
                        "own browser session",
    "auth.totp_disable": "a user turns their own second factor off with a current code; an admin turns "
                         "anyone's off with user.reset_2fa (all three faces)",
    "token.create": "a token cannot make tokens: a leaked one could make itself a successor that outlives "
                    "its revocation. Tokens are made on the panel's API tokens page or with "
                    "ezpyr-admin tokens add; the API lists and revokes them",
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
