"""The JSON shapes of users, their SSH keys, user groups, sign-in lockouts
and API tokens: read from API bodies, written by the API and by
``ezpyr-admin --json``, and described in the OpenAPI document."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ezpyr.api.schemas import Strict, UtcTime
from ezpyr.users.models import ROLES

Role = Literal[ROLES]  # "admin" or "user"


# -- users ------------------------------------------------------------------------------

class UserIn(Strict):
    username: str = Field(max_length=32, description="the gateway login: lower-case letters, digits, "
                                                     "'_' or '-', starting with a letter or '_'")
    password: str | None = Field(None, max_length=1024,
                                 description="absent or null: one is generated and returned this once")
    role: Role = "user"
    full_name: str = Field("", max_length=200)
    email: str = Field("", max_length=254)
    group: str | None = Field(None, max_length=100, description="a user group's name, or null")


class UserPatch(Strict):
    username: str | None = Field(None, max_length=32)
    role: Role | None = None
    full_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254)
    group: str | None = Field(None, max_length=100, description="a user group's name; \"\" for none")


class UserOut(BaseModel):
    id: str
    username: str
    full_name: str
    email: str
    role: str
    group: str | None
    suspended: bool
    totp_enabled: bool
    locked: bool = Field(description="held back from signing in on this node after failed sign-ins")
    keys: int = Field(description="how many SSH keys the user has")
    password_changed_at: UtcTime
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def of(cls, user, *, locked: bool, keys: int) -> dict:
        """``user`` as JSON data; ``locked`` and ``keys`` come from other
        services (the sign-in counts and the keys)."""
        return cls(id=user.id, username=user.username, full_name=user.full_name, email=user.email,
                   role=user.role, group=user.group.name if user.group else None,
                   suspended=bool(user.suspended), totp_enabled=bool(user.totp_enabled), locked=locked,
                   keys=keys, password_changed_at=user.password_changed_at, created_at=user.created_at,
                   updated_at=user.updated_at).model_dump(mode="json")


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class PasswordIn(Strict):
    password: str | None = Field(None, max_length=1024,
                                 description="absent or null: one is generated and returned this once")


class UserWithPassword(BaseModel):
    """A user just made, or whose password was just reset."""

    user: UserOut
    password: str | None = Field(description="the generated password, shown this once and never stored; "
                                             "null when the request gave one")


# -- SSH keys ----------------------------------------------------------------------------

class KeyIn(Strict):
    public_key: str = Field(max_length=16384, description="one OpenSSH public key line, "
                                                          "e.g. \"ssh-ed25519 AAAA… me@laptop\"")
    name: str = Field("", max_length=100, description="empty: the key's comment")


class KeyOut(BaseModel):
    id: str
    name: str
    type: str
    fingerprint: str
    public_key: str
    created_at: UtcTime

    @classmethod
    def of(cls, key) -> dict:
        return cls(id=key.id, name=key.name, type=key.key_type, fingerprint=key.fingerprint,
                   public_key=key.public_key, created_at=key.created_at).model_dump(mode="json")


class KeyPage(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None


# -- user groups ---------------------------------------------------------------------------

class UserGroupIn(Strict):
    name: str = Field(max_length=100, description="unique, case-insensitively")
    description: str = Field("", max_length=2000)


class UserGroupPatch(Strict):
    name: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=2000)


class UserGroupOut(BaseModel):
    id: str
    name: str
    description: str
    members: int

    @classmethod
    def of(cls, group, members: int) -> dict:
        return cls(id=group.id, name=group.name, description=group.description,
                   members=members).model_dump(mode="json")


class UserGroupPage(BaseModel):
    items: list[UserGroupOut]
    next_cursor: str | None


# -- sign-in lockouts (this node's) ---------------------------------------------------------

class LockoutOut(BaseModel):
    kind: Literal["pair", "address", "account", "all"] = Field(
        description="pair: an account from one address; address: every account from one address; "
                    "account: an account from addresses it never signed in from; all: every account")
    username: str = Field(description="empty unless the lockout is of one account")
    address: str = Field(description="empty unless the lockout is of one address")
    failures: int
    until: UtcTime = Field(description="when it ends by itself (UTC)")

    @classmethod
    def of(cls, hold: dict) -> dict:
        return cls(kind=hold["kind"], username=hold["username"] or "", address=hold["address"] or "",
                   failures=hold["failures"], until=hold["until"]).model_dump(mode="json")


class LockoutPage(BaseModel):
    items: list[LockoutOut]
    next_cursor: str | None


class AddressIn(Strict):
    address: str = Field(max_length=64, description="a locked-out address, as the lockout list shows it")


class ReleasedOut(BaseModel):
    released: str


# -- API tokens ------------------------------------------------------------------------------

class TokenOut(BaseModel):
    """A token, never its secret."""

    id: str
    name: str
    owner: str = Field(description="the username whose rights it has, at most")
    prefix: str = Field(description="how its secret starts, to recognise it")
    read_only: bool
    expires_at: UtcTime | None
    expired: bool
    created_at: UtcTime

    @classmethod
    def of(cls, token) -> dict:
        return cls(id=token.id, name=token.name, owner=token.owner.username, prefix=f"ezp_{token.prefix}_",
                   read_only=bool(token.read_only), expires_at=token.expires_at, expired=token.expired(),
                   created_at=token.created_at).model_dump(mode="json")


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None
