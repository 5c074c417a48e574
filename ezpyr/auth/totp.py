"""The TOTP second factor (RFC 6238): enrolment, checking a code, turning it off.

The secret is stored encrypted (``users.totp_secret``). A code works once:
the time step of the last code each user used is remembered on this node,
so the same code cannot be typed again within its window.
"""
from __future__ import annotations

import base64
import hmac
import re
import time

import pyotp
import qrcode
from qrcode.image.svg import SvgPathImage
from sqlalchemy.orm import Session

from ezpyr.activity.services import NoActivity
from ezpyr.secretbox import SecretBox
from ezpyr.users.models import User
from ezpyr.validation import Invalid

ISSUER = "ezpyr"
# Codes of the step before and after the current one are accepted too, for
# clocks a little apart.
WINDOW = 1
CODE_RE = re.compile(r"^\d{6}$")

WRONG_CODE = "That code is not right. Type the 6-digit code your authenticator app shows now."
REUSED_CODE = ("That code was already used. Wait for the next one "
               "(codes change every 30 seconds) and type it.")


class UsedSteps:
    """The time step of the last code each user used, on this node
    (node-local table, so it survives restarts and is shared by processes)."""

    def __init__(self, dbsession: Session):
        self.dbsession = dbsession

    def use(self, user_id: str, step: int) -> bool:
        """Mark ``step`` used; False when it (or a later one) already was."""
        from sqlalchemy import update
        from sqlalchemy.exc import IntegrityError

        from ezpyr.auth.models import TotpLastStep

        table = TotpLastStep.__table__
        moved = self.dbsession.execute(
            update(table).where(table.c.user_id == user_id, table.c.step < step).values(step=step))
        if moved.rowcount:
            return True
        if self.dbsession.get(TotpLastStep, user_id) is not None:
            return False
        try:
            with self.dbsession.begin_nested():
                self.dbsession.add(TotpLastStep(user_id=user_id, step=step))
        except IntegrityError:  # a concurrent sign-in used it first
            return False
        return True


def normalise(code: str) -> str:
    """Codes are often typed with a space in the middle ("123 456")."""
    return re.sub(r"[\s-]", "", code or "")


class TotpService:
    """A user's own second factor; turning it on or off is recorded in the
    activity log (an admin's reset is ``UserService.reset_totp``)."""

    def __init__(self, dbsession: Session, secret_box: SecretBox, used: UsedSteps, activity=None):
        self.dbsession = dbsession
        self.secret_box = secret_box
        self.used = used
        self.activity = activity or NoActivity()

    # -- enrolment -----------------------------------------------------------
    @staticmethod
    def new_secret() -> str:
        return pyotp.random_base32()

    @staticmethod
    def provisioning_uri(secret: str, username: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)

    @staticmethod
    def qr_data_uri(uri: str) -> str:
        """The QR code of ``uri`` as an SVG image in a data: URI (for <img src>)."""
        svg = qrcode.make(uri, image_factory=SvgPathImage).to_string()
        return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()

    def enrol(self, user: User, secret: str, code: str, now: float | None = None) -> None:
        """Turn the second factor on with ``secret`` once ``code`` proves the
        user's app holds it. Nothing is stored when the code is wrong."""
        if user.totp_enabled:
            raise Invalid("Two-factor sign-in is already on for your account.")
        step = self._matching_step(secret, code, now)
        if step is None:
            raise Invalid(WRONG_CODE, "code")
        self.used.use(user.id, step)
        user.totp_secret = self.secret_box.encrypt(secret)
        user.totp_enabled = True
        self.dbsession.flush()
        self.activity.record("auth.totp_enable", user.username)

    def disable(self, user: User, code: str, *, required: bool, now: float | None = None) -> None:
        """The user turns their own second factor off, with a current code."""
        if not user.totp_enabled:
            raise Invalid("Two-factor sign-in is not on for your account.")
        if required:
            raise Invalid("This panel requires two-factor sign-in for everyone, "
                          "so it cannot be turned off.")
        self.check_code(user, code, now)
        self.reset(user)
        self.activity.record("auth.totp_disable", user.username)

    def reset(self, user: User) -> None:
        """Remove the second factor (an admin's reset; the user enrols again)."""
        user.totp_secret = None
        user.totp_enabled = False
        self.dbsession.flush()

    # -- checking --------------------------------------------------------------
    def check_code(self, user: User, code: str, now: float | None = None) -> None:
        """Raise Invalid unless ``code`` is the user's current, unused code."""
        if not user.totp_enabled or not user.totp_secret:
            raise Invalid("Two-factor sign-in is not on for this account.", "code")
        step = self._matching_step(self.secret_box.decrypt(user.totp_secret), code, now)
        if step is None:
            raise Invalid(WRONG_CODE, "code")
        if not self.used.use(user.id, step):
            raise Invalid(REUSED_CODE, "code")

    @staticmethod
    def _matching_step(secret: str, code: str, now: float | None) -> int | None:
        code = normalise(code)
        if not CODE_RE.match(code):
            return None
        totp = pyotp.TOTP(secret)
        current = int((time.time() if now is None else now) // totp.interval)
        for step in range(current - WINDOW, current + WINDOW + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None
