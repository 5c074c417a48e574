"""Making, finding and revoking API tokens.

A token reads ``ezp_<prefix>_<secret>``; only the SHA-256 of the whole
string is stored. A token has at most its owner's rights: a suspended or
deleted owner's tokens stop working, a non-admin's token reaches no admin
action, and a read-only token changes nothing."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import Select, select

from ezpyr.activity.services import NoActivity
from ezpyr.api.models import ApiToken
from ezpyr.meta import utcnow
from ezpyr.paging import cap_search
from ezpyr.users.models import User
from ezpyr.validation import Invalid

TOKEN_PREFIX = "ezp_"
MAX_DAYS = 3650


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_token_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A token needs a name (what it is for, e.g. 'inventory sync').", "name")
    if len(name) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Invalid("A token name has at most 100 characters and no control characters.", "name")
    return name


def check_days(days) -> int | None:
    """Days until it expires; None (or empty) for never."""
    if days in (None, ""):
        return None
    try:
        days = int(days)
    except (TypeError, ValueError):
        raise Invalid("Expiry is a number of days (1 to 3650), or empty for never.", "expires_days") from None
    if not 1 <= days <= MAX_DAYS:
        raise Invalid("Expiry is a number of days (1 to 3650), or empty for never.", "expires_days")
    return days


class TokenService:
    """API tokens; making and revoking one is recorded in the activity log."""

    def __init__(self, dbsession, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()

    def search(self, text: str = "") -> Select:
        """Tokens by name (whose name contains ``text``)."""
        text = cap_search(text)
        stmt = select(ApiToken).order_by(ApiToken.name)
        if text:
            stmt = stmt.where(ApiToken.name.contains(text, autoescape=True))
        return stmt

    def all(self) -> list[ApiToken]:
        return list(self.dbsession.scalars(self.search()))

    def get(self, token_id: str) -> ApiToken | None:
        return self.dbsession.get(ApiToken, token_id)

    def by_name(self, name: str) -> ApiToken | None:
        return self.dbsession.scalars(select(ApiToken).where(ApiToken.name == name)).first()

    def create(self, name: str, owner: User, *, read_only: bool = True,
               expires_days=None) -> tuple[ApiToken, str]:
        """The new token and its secret (shown once, never stored)."""
        name = check_token_name(name)
        days = check_days(expires_days)
        if owner is None:
            raise Invalid("A token needs an owner (an existing user).", "owner")
        if owner.suspended:
            raise Invalid(f"{owner.username} is suspended: a token of theirs would not work.", "owner")
        if self.by_name(name) is not None:
            raise Invalid(f"A token named {name!r} exists already.", "name")
        prefix = secrets.token_hex(4)
        secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        token = ApiToken(name=name, owner=owner, secret_hash=digest(secret), prefix=prefix,
                         read_only=bool(read_only),
                         expires_at=utcnow() + dt.timedelta(days=days) if days else None)
        self.dbsession.add(token)
        self.dbsession.flush()
        self.activity.record("token.create", token.name,
                             f"owner {owner.username}, {'read-only' if token.read_only else 'read-write'}")
        return token, secret

    def revoke(self, token: ApiToken) -> None:
        self.dbsession.delete(token)
        self.dbsession.flush()
        self.activity.record("token.revoke", token.name)

    def authenticate(self, secret: str) -> tuple[ApiToken | None, str]:
        """The token for ``secret`` and "" — or None and why it is refused."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None, "not an ezpyr API token"
        wanted = digest(secret)
        # the owner in the same query (every API call asks for both); once
        # loaded, token.owner finds it in the session without a query
        found = self.dbsession.execute(select(ApiToken, User).outerjoin(User, ApiToken.owner_id == User.id)
                                       .where(ApiToken.secret_hash == wanted)).first()
        token = found[0] if found is not None else None
        if token is None or not hmac.compare_digest(token.secret_hash, wanted):
            return None, "unknown or revoked token"
        if token.expired():
            return None, "the token has expired"
        if token.owner is None or token.owner.suspended:
            return None, "the token's owner is suspended"
        return token, ""
