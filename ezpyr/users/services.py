"""Users: creating, changing, suspending and deleting them."""
from __future__ import annotations

import re
import secrets
import string
import uuid

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from ezpyr.access.models import AccessRule
from ezpyr.activity.services import NoActivity
from ezpyr.meta import utcnow
from ezpyr.paging import cap_search
from ezpyr.passwords import Passwords, policy_errors
from ezpyr.settings.services import SettingsService
from ezpyr.users.models import ROLES, User, UserGroup, UserKey
from ezpyr.validation import Invalid

# A system account name: it becomes the user's login on the gateway.
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


GENERATED_ALPHABET = string.ascii_letters + string.digits + "-_.!+=%"
GENERATED_LENGTH = 20


def generate_password(min_length: int = GENERATED_LENGTH) -> str:
    """A random password that every password policy accepts: long enough,
    with lower and upper case, digits and symbols."""
    length = max(GENERATED_LENGTH, min_length)
    while True:
        password = "".join(secrets.choice(GENERATED_ALPHABET) for _ in range(length))
        if (any(c.islower() for c in password) and any(c.isupper() for c in password)
                and any(c.isdigit() for c in password)
                and any(not c.isalnum() for c in password)):
            return password


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise Invalid(
            "A username is 1 to 32 characters: lower-case letters, digits, '_' or '-', "
            "starting with a letter or '_'.",
            "username",
        )
    return username


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class UserService:
    """Users; each change is recorded in the activity log (``activity``:
    ``Services.activity``, acting for whoever asked)."""

    def __init__(self, dbsession: Session, passwords: Passwords, panel_settings=None, activity=None):
        """``panel_settings``: a callable giving the panel-wide settings
        (``Services`` passes the unit of work's, read once); by default they
        are read when asked."""
        self.dbsession = dbsession
        self.passwords = passwords
        self.panel_settings = panel_settings or (lambda: SettingsService(dbsession).current())
        self.activity = activity or NoActivity()

    # -- reading -----------------------------------------------------------
    def get(self, user_id: str) -> User | None:
        return self.dbsession.get(User, user_id)

    def by_username(self, username: str) -> User | None:
        return self.dbsession.scalars(select(User).where(User.username == username)).first()

    def search(self, text: str = "") -> Select:
        text = cap_search(text)
        stmt = select(User).order_by(User.username)
        if text:
            stmt = stmt.where(or_(
                User.username.contains(text, autoescape=True),
                User.full_name.contains(text, autoescape=True),
                User.email.contains(text, autoescape=True),
            ))
        return stmt

    # -- checks --------------------------------------------------------------
    def _check_unique(self, username: str, user: User | None = None) -> None:
        clash = self.by_username(username)
        if clash is not None and clash is not user:
            raise Invalid(f"A user named {username!r} already exists.", "username")

    def check_password_policy(self, password: str, field: str = "password") -> None:
        settings = self.panel_settings()
        errors = policy_errors(password or "", settings.password_min_length,
                               settings.password_require_mixed)
        if errors:
            raise Invalid(" ".join(errors), field)

    def _check_fields(self, role: str, email: str, group_id: str | None) -> UserGroup | None:
        if role not in ROLES:
            raise Invalid(f"Role must be one of: {', '.join(ROLES)}.", "role")
        if email and not EMAIL_RE.match(email):
            raise Invalid("That is not an e-mail address.", "email")
        if not group_id:
            return None
        group = self.dbsession.get(UserGroup, group_id)
        if group is None:
            raise Invalid("That user group does not exist.", "group_id")
        return group

    # -- changing ------------------------------------------------------------
    def create(self, username: str, password: str, *, role: str = "user", full_name: str = "",
               email: str = "", group_id: str | None = None,
               skip_policy: bool = False) -> User:
        username = check_username(username)
        self._check_unique(username)
        group = self._check_fields(role, email, group_id)
        if not skip_policy:
            self.check_password_policy(password)
        user = User(
            username=username,
            full_name=(full_name or "").strip(),
            email=(email or "").strip(),
            role=role,
            group=group,
            password_hash=self.passwords.hash(password),
            auth_stamp=str(uuid.uuid4()),
        )
        self.dbsession.add(user)
        self.dbsession.flush()
        self.activity.record("user.create", user.username)
        return user

    def new_password(self) -> str:
        """A generated password that the panel's policy accepts (shown once
        by whoever asked for it, never stored)."""
        return generate_password(self.panel_settings().password_min_length)

    def set_password(self, user: User, password: str, *, skip_policy: bool = False) -> None:
        """Change the password; every session of the user ends."""
        if not skip_policy:
            self.check_password_policy(password)
        user.password_hash = self.passwords.hash(password)
        user.password_changed_at = utcnow()
        user.auth_stamp = str(uuid.uuid4())
        self.dbsession.flush()

    def end_sessions(self, user: User) -> None:
        """Every session of the user ends (they carry the old stamp)."""
        user.auth_stamp = str(uuid.uuid4())

    def update(self, user: User, username: str, *, role: str, full_name: str = "",
               email: str = "", group_id: str | None = None, actor: User | None = None) -> User:
        """Change a user's details (not the password). ``actor`` is the admin
        doing it: they may not take away their own admin role."""
        username = check_username(username)
        self._check_unique(username, user)
        group = self._check_fields(role, email, group_id)
        if user.is_admin and role != "admin":
            self._check_keeps_an_admin(user, "take the admin role from", "role")
            if actor is not None and actor.id == user.id:
                raise Invalid("You cannot remove your own admin role; another admin must do it.",
                              "role")
        old = user.username
        user.username = username
        user.full_name = (full_name or "").strip()
        user.email = (email or "").strip()
        user.role = role
        user.group = group
        self.dbsession.flush()
        self.activity.record("user.update", user.username, f"renamed from {old}" if old != username else "")
        return user

    def active_admins(self, excluding: User | None = None) -> int:
        stmt = select(func.count()).select_from(User).where(
            User.role == "admin", User.suspended.is_(False)
        )
        if excluding is not None:
            stmt = stmt.where(User.id != excluding.id)
        return self.dbsession.scalar(stmt)

    def is_last_admin(self, user: User) -> bool:
        return user.is_admin and not user.suspended and self.active_admins(excluding=user) == 0

    def _check_keeps_an_admin(self, user: User, doing: str, field: str | None = None) -> None:
        if self.is_last_admin(user):
            raise Invalid(
                f"{user.username} is the last active admin, so you cannot {doing} them: "
                "the panel would have no admin left. Make another user an admin first.", field
            )

    def suspend(self, user: User, actor: User | None = None) -> None:
        """The user can no longer sign in, and their sessions end."""
        if user.suspended:
            raise Invalid(f"{user.username} is already suspended.")
        self._check_keeps_an_admin(user, "suspend")
        if actor is not None and actor.id == user.id:
            raise Invalid("You cannot suspend your own account.")
        user.suspended = True
        self.end_sessions(user)
        self.dbsession.flush()
        self.activity.record("user.suspend", user.username)

    def reinstate(self, user: User) -> None:
        if not user.suspended:
            raise Invalid(f"{user.username} is not suspended.")
        user.suspended = False
        self.dbsession.flush()
        self.activity.record("user.reinstate", user.username)

    def reset_password(self, user: User, password: str | None = None) -> str | None:
        """Set the password an admin typed, or a generated one when none was
        typed (returned, to be shown once). Every session of the user ends."""
        generated = None if password else self.new_password()
        self.set_password(user, password or generated)
        self.activity.record("user.password_reset", user.username,
                             "generated" if generated else "typed by an admin")
        return generated

    def change_own_password(self, user: User, current: str, new: str) -> None:
        if not self.passwords.verify(user.password_hash, current or ""):
            raise Invalid("That is not your current password.", "current_password")
        if new == current:
            raise Invalid("The new password must differ from the current one.", "new_password")
        self.check_password_policy(new, "new_password")
        self.set_password(user, new, skip_policy=True)
        self.activity.record("profile.password", user.username, user=user)

    def reset_totp(self, user: User) -> None:
        """Turn the second factor off; the user may enrol again. Every
        session of the user ends (one may be an attacker's who lacked the code)."""
        user.totp_enabled = False
        user.totp_secret = None
        self.end_sessions(user)
        self.dbsession.flush()
        self.activity.record("user.reset_2fa", user.username)

    def dependants(self, user: User) -> dict[str, int]:
        """What deleting the user would also remove."""
        return {
            "SSH keys": self.dbsession.scalar(
                select(func.count()).select_from(UserKey).where(UserKey.user_id == user.id)
            ),
            "access rules": self.dbsession.scalar(
                select(func.count()).select_from(AccessRule).where(AccessRule.user_id == user.id)
            ),
        }

    def check_delete(self, user: User, actor: User | None = None) -> None:
        """Raise Invalid when ``actor`` may not delete ``user``."""
        self._check_keeps_an_admin(user, "delete")
        if actor is not None and actor.id == user.id:
            raise Invalid("You cannot delete your own account.")

    def delete(self, user: User, actor: User | None = None) -> dict[str, int]:
        """Delete the user, their SSH keys and the access rules that name
        them; returns what went, as :meth:`dependants` counts it."""
        self.check_delete(user, actor)
        gone = self.dependants(user)
        rules = self.dbsession.scalars(
            select(AccessRule).where(AccessRule.user_id == user.id)).all()
        keys = self.dbsession.scalars(select(UserKey).where(UserKey.user_id == user.id)).all()
        for row in [*rules, *keys]:
            self.dbsession.delete(row)
        self.dbsession.flush()
        self.dbsession.expire(user, ["keys"])
        self.dbsession.delete(user)
        self.dbsession.flush()
        self.activity.record("user.delete", user.username,
                             f"{plural(gone['SSH keys'], 'SSH key')} and "
                             f"{plural(gone['access rules'], 'access rule')} removed")
        return gone
