"""Checking a sign-in attempt, with lockout after repeated failures.

A sign-in is a password and, for users who enrolled one, a TOTP code. Each
wrong password or code counts as a failure; enough failures in a row lock the
account for a while. The count is cleared only when the whole sign-in
succeeds, so a known password does not buy unlimited guesses at the code.

Failure counts are node-local: a slave counts its own, and counting never
needs a write to replicated data. They are kept per name typed, whether or
not such a user exists, so the answers do not tell which names exist.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ezpyr.auth.models import LoginFailure
from ezpyr.auth.totp import TotpService
from ezpyr.meta import utcnow
from ezpyr.passwords import Passwords
from ezpyr.settings.services import PanelSettings, SettingsService
from ezpyr.users.models import User
from ezpyr.validation import Invalid


@dataclass
class SignInResult:
    user: User | None
    reason: str = ""  # shown to the person signing in when user is None
    needs_code: bool = False  # the password was right; a TOTP code must follow
    locked: bool = False  # the account is locked (now, or by this very failure)


BAD_CREDENTIALS = "Wrong username or password."
SUSPENDED = "This account is suspended. Ask an admin to reinstate it."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class AuthService:
    def __init__(self, dbsession: Session, passwords: Passwords):
        self.dbsession = dbsession
        self.passwords = passwords

    def check_password(self, username: str, password: str) -> SignInResult:
        """The first step. For a user with a second factor the result has
        ``needs_code`` and the failure count stays until the code is right."""
        username = (username or "").strip().lower()  # usernames are lower case
        now = utcnow()
        failure = self.dbsession.get(LoginFailure, username) if username else None
        if self._is_locked(failure, now):
            return SignInResult(None, self._locked_reason(failure, now), locked=True)
        user = self.dbsession.scalars(select(User).where(User.username == username)).first()
        if not self.passwords.verify(user.password_hash if user else None, password or ""):
            return self._failed(username, failure, now, BAD_CREDENTIALS)
        if user.suspended:
            return SignInResult(None, SUSPENDED)
        if user.totp_enabled:
            return SignInResult(user, needs_code=True)
        self._clear(failure)
        return SignInResult(user)

    def check_code(self, user: User, code: str, totp: TotpService) -> SignInResult:
        """The second step: ``user`` gave the right password just before."""
        now = utcnow()
        failure = self.dbsession.get(LoginFailure, user.username)
        if self._is_locked(failure, now):
            return SignInResult(None, self._locked_reason(failure, now), locked=True)
        if user.suspended:
            return SignInResult(None, SUSPENDED)
        try:
            totp.check_code(user, code)
        except Invalid as error:
            return self._failed(user.username, failure, now, error.message)
        self._clear(failure)
        return SignInResult(user)

    def unlock(self, username: str) -> bool:
        failure = self.dbsession.get(LoginFailure, username)
        if failure is None:
            return False
        self.dbsession.delete(failure)
        return True

    def is_locked(self, username: str) -> bool:
        return self._is_locked(self.dbsession.get(LoginFailure, username), utcnow())

    # -- counting ----------------------------------------------------------------
    @staticmethod
    def _is_locked(failure: LoginFailure | None, now: dt.datetime) -> bool:
        return bool(failure and failure.locked_until and failure.locked_until > now)

    @staticmethod
    def _locked_reason(failure: LoginFailure, now: dt.datetime) -> str:
        minutes = max(1, int((failure.locked_until - now).total_seconds() // 60) + 1)
        return (
            f"This account is locked after {failure.failures} failed sign-ins in a row. "
            f"Try again in {_plural(minutes, 'minute')}, or ask an admin to unlock it."
        )

    def _failed(self, username: str, failure: LoginFailure | None, now: dt.datetime,
                what: str) -> SignInResult:
        if not username:
            return SignInResult(None, what)
        settings: PanelSettings = SettingsService(self.dbsession).current()
        if failure is None:
            failure = LoginFailure(username=username, failures=0)
            self.dbsession.add(failure)
        elif failure.locked_until is not None:
            # the lock has run out: a fresh count starts
            failure.failures = 0
            failure.locked_until = None
        failure.failures += 1
        failure.last_failure_at = now
        if failure.failures >= settings.lockout_threshold:
            failure.locked_until = now + dt.timedelta(minutes=settings.lockout_minutes)
            return SignInResult(None, (
                f"{what} The account is now locked for "
                f"{_plural(settings.lockout_minutes, 'minute')} after "
                f"{failure.failures} failed sign-ins in a row."
            ), locked=True)
        left = settings.lockout_threshold - failure.failures
        return SignInResult(None, (
            f"{what} {_plural(left, 'attempt')} left before the account is locked."
        ))

    def _clear(self, failure: LoginFailure | None) -> None:
        if failure is not None:
            self.dbsession.delete(failure)
