"""Checking a sign-in attempt, with throttling of repeated failures.

A sign-in is a password and, for users who enrolled one, a TOTP code. Each
attempt at either is counted before it is checked and taken back when the
whole sign-in succeeds, so a known password does not buy unlimited guesses
at the code. What is counted and what it closes, to whom, is
:mod:`ezpyr.auth.throttle`'s policy: a foreign address can only lock itself
out.

Counts are node-local: a slave counts its own, and counting never needs a
write to replicated data. Names that belong to no account are counted too
(under a digest), so the answers do not tell which names exist.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ezpyr.activity.services import NoActivity
from ezpyr.auth.throttle import Attempt, Throttle, Verdict, own_address
from ezpyr.auth.totp import TotpService
from ezpyr.passwords import Passwords
from ezpyr.settings.services import SettingsService
from ezpyr.users.models import User
from ezpyr.validation import Invalid


@dataclass
class SignInResult:
    user: User | None
    reason: str = ""  # shown to the person signing in when user is None
    needs_code: bool = False  # the password was right; a TOTP code must follow
    locked: bool = False  # sign-in is held back (now, or from this very failure on)
    known_name: str = ""  # the name typed, when it is an account's (else never recorded)


BAD_CREDENTIALS = "Wrong username or password."
SUSPENDED = "This account is suspended. Ask an admin to reinstate it."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _closed_reason(verdict: Verdict) -> str:
    wait = f"Try again in {_plural(verdict.minutes_left, 'minute')}"
    if verdict.why == "pair":
        return (f"This account is locked for your address after too many failed sign-ins. {wait}, "
                "or ask an admin to unlock it.")
    if verdict.why == "address":
        return f"Your address is locked out after too many failed sign-ins. {wait}."
    return ("This account is locked for new addresses after too many failed sign-ins. "
            f"{wait}, sign in from an address you used before or with your second factor, "
            "or ask an admin to unlock it.")


class AuthService:
    """Sign-in checks, and the admins' view of who is held back. The sign-in
    events are recorded by the sign-in pages (they name what was typed); an
    admin's unlock and release are recorded here."""

    def __init__(self, dbsession: Session, passwords: Passwords, panel_settings=None, activity=None):
        """``panel_settings``: a callable giving the panel-wide settings
        (``Services`` passes the unit of work's, read once); by default they
        are read when asked."""
        self.dbsession = dbsession
        self.passwords = passwords
        self.panel_settings = panel_settings or (lambda: SettingsService(dbsession).current())
        self.activity = activity or NoActivity()

    def throttle(self) -> Throttle:
        settings = self.panel_settings()
        return Throttle(self.dbsession.get_bind(), settings.lockout_threshold, settings.lockout_minutes)

    def _gate(self, throttle: Throttle, attempt: Attempt, own: bool, second_factor: bool):
        """Count this attempt; a SignInResult when it may not go on."""
        rule = {"own_address": own, "second_factor": second_factor}
        verdict = throttle.verdict(throttle.current(attempt), attempt, counted=False, **rule)
        if not verdict.closed:
            verdict = throttle.verdict(throttle.count(attempt), attempt, **rule)
        if verdict.closed:
            return None, SignInResult(None, _closed_reason(verdict), locked=True,
                                      known_name=attempt.username)
        return verdict, None

    def check_password(self, username: str, password: str, address: str = "") -> SignInResult:
        """The first step. For a user with a second factor the result has
        ``needs_code`` and the attempt stays counted until the code is right.
        ``address`` is the client's (the socket's, or the trusted proxy's word)."""
        username = (username or "").strip().lower()  # usernames are lower case
        if not username:
            return SignInResult(None, BAD_CREDENTIALS)
        user = self.dbsession.scalars(select(User).where(User.username == username)).first()
        attempt = Attempt.of(username, address, user is not None)
        throttle = self.throttle()
        verdict, refused = self._gate(throttle, attempt, own_address(self.dbsession, attempt.username, address),
                                      bool(user and user.totp_enabled))
        if refused:
            return refused
        if not self.passwords.verify(user.password_hash if user else None, password or ""):
            return self._failed(throttle, verdict, attempt, BAD_CREDENTIALS)
        if user.suspended:
            throttle.take_back(attempt, self.dbsession)
            return SignInResult(None, SUSPENDED, known_name=user.username)
        if user.totp_enabled:  # earlier wrong codes stay counted until a right one
            throttle.take_back(attempt, self.dbsession, done=False)
            return SignInResult(user, needs_code=True)
        throttle.take_back(attempt, self.dbsession)
        return SignInResult(user)

    def check_code(self, user: User, code: str, totp: TotpService, address: str = "") -> SignInResult:
        """The second step: ``user`` gave the right password just before."""
        attempt = Attempt.of(user.username, address, True)
        throttle = self.throttle()
        verdict, refused = self._gate(throttle, attempt, True, True)
        if refused:
            return refused
        if user.suspended:
            return SignInResult(None, SUSPENDED, known_name=user.username)
        try:
            totp.check_code(user, code)
        except Invalid as error:
            return self._failed(throttle, verdict, attempt, error.message)
        throttle.take_back(attempt, self.dbsession)
        return SignInResult(user)

    def check_current_password(self, user: User, password: str, address: str = "") -> None:
        """A signed-in user's current password (before it is changed), with
        the same counting as a sign-in; raises Invalid."""
        attempt = Attempt.of(user.username, address, True)
        throttle = self.throttle()
        verdict, refused = self._gate(throttle, attempt, False, False)
        if refused:
            raise Invalid(refused.reason, "current_password")
        if not self.passwords.verify(user.password_hash, password or ""):
            raise Invalid(self._failed(throttle, verdict, attempt,
                                       "That is not your current password.").reason, "current_password")
        throttle.take_back(attempt, self.dbsession)

    def unlock(self, username: str) -> bool:
        """Clear the account's counts on this node; whether it was locked."""
        return self.throttle().unlock(self.dbsession, username)

    def unlock_user(self, user: User) -> None:
        """An admin ends ``user``'s lockout on this node; refused when there
        is none."""
        if not self.unlock(user.username):
            raise Invalid(f"{user.username} is not locked on this node.")
        self.activity.record("user.unlock", user.username)

    def release_address(self, address: str) -> str:
        """An admin lets a locked-out address sign in again on this node;
        the address, as released."""
        address = (address or "").strip()
        if not address or len(address) > 64 or any(ord(c) < 33 or ord(c) == 127 for c in address):
            raise Invalid("Give the address as the lockout list shows it.", "address")
        if not self.throttle().unlock_address(self.dbsession, address):
            raise Invalid(f"{address} is not locked out on this node.", "address")
        self.activity.record("auth.release_address", address)
        return address

    def is_locked(self, username: str) -> bool:
        return self.throttle().is_locked(self.dbsession, username)

    def throttled(self) -> list[dict]:
        return self.throttle().throttled(self.dbsession)

    def _failed(self, throttle: Throttle, verdict: Verdict, attempt: Attempt, what: str) -> SignInResult:
        limit = throttle.limits()["pair"]
        if verdict.failures >= limit:
            return SignInResult(None, (
                f"{what} The account is now locked for your address for "
                f"{_plural(throttle.minutes, 'minute')} after {verdict.failures} failed sign-ins."
            ), locked=True, known_name=attempt.username)
        left = limit - verdict.failures
        return SignInResult(None, (
            f"{what} {_plural(left, 'attempt')} left before the account is locked for your address."
        ), known_name=attempt.username)
