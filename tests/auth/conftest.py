"""Helpers the sign-in tests share: users with a second factor, codes."""
from __future__ import annotations

import time

import pyotp

from tests.factories import PASSWORD, csrf_from


def enable_totp(dbsession, secret_box, user) -> str:
    """Give ``user`` a second factor; returns the (plain) secret."""
    secret = pyotp.random_base32()
    user.totp_secret = secret_box.encrypt(secret)
    user.totp_enabled = True
    dbsession.commit()
    return secret


def code_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def code_next(secret: str) -> str:
    """The code of the next 30-second step (accepted: clocks may differ)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def wrong_code(secret: str) -> str:
    """A 6-digit code that is not valid anywhere near now."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + 30 * k) for k in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in near)


def password_step(testapp, username, password=PASSWORD, next_url=None):
    """Submit the login form; returns the response (303 to /login/2fa for a
    user with a second factor)."""
    url = "/login" + (f"?next={next_url}" if next_url else "")
    page = testapp.get(url)
    return testapp.post(url, {"username": username, "password": password,
                              "csrf_token": csrf_from(page)})


def code_step(testapp, code, status=None):
    """Submit the code form of a pending sign-in."""
    page = testapp.get("/login/2fa")
    return testapp.post(page.request.url, {"code": code, "csrf_token": csrf_from(page)},
                        status=status)
