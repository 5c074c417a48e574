"""The JSON shapes of access rules and of a user's effective access: read
from API bodies, written by the API and by ``ezpyr-admin access … --json``,
and described in the OpenAPI document.

A rule's subject and target are named as people name them: the subject as
``{"user_group": "ops"}`` or ``{"user": "alice"}``, the target as
``{"server_group": "web"}`` or ``{"server": "db1"}`` (server and server
group names without regard to case, the exact case first). An answer gives
each side's kind, id and name."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ezpyr.api.schemas import Strict, UtcTime
from ezpyr.servers.schemas import ServerOut

# exactly one of the two names (the model checks it; the document says it)
ONE_NAME = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1})


class SubjectIn(Strict):
    """Who gets access: a user group's name or a username (exactly one)."""

    model_config = ONE_NAME
    user_group: str | None = Field(None, min_length=1, max_length=100, description="a user group's name")
    user: str | None = Field(None, min_length=1, max_length=32, description="a username")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.user_group is None) == (self.user is None):
            raise ValueError("name a user group (user_group) or a user (user): exactly one")
        return self


class TargetIn(Strict):
    """What they may reach: a server group's name or a server's name (exactly one)."""

    model_config = ONE_NAME
    server_group: str | None = Field(None, min_length=1, max_length=100, description="a server group's name")
    server: str | None = Field(None, min_length=1, max_length=100, description="a server's name")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.server_group is None) == (self.server is None):
            raise ValueError("name a server group (server_group) or a server (server): exactly one")
        return self


class AccessRuleIn(Strict):
    subject: SubjectIn
    target: TargetIn


class SubjectOut(BaseModel):
    kind: Literal["user_group", "user"]
    id: str
    name: str = Field(description="the user group's name or the username")


class TargetOut(BaseModel):
    kind: Literal["server_group", "server"]
    id: str
    name: str


class AccessRuleOut(BaseModel):
    id: str
    subject: SubjectOut
    target: TargetOut
    label: str = Field(description='as the panel and the activity log name it: "user group ops → server web1"')
    created_at: UtcTime

    @classmethod
    def of(cls, rule) -> dict:
        """``rule`` as JSON data."""
        from ezpyr.access.services import rule_label
        if rule.user_group is not None:
            subject = SubjectOut(kind="user_group", id=rule.user_group.id, name=rule.user_group.name)
        else:
            subject = SubjectOut(kind="user", id=rule.user.id, name=rule.user.username)
        if rule.server_group is not None:
            target = TargetOut(kind="server_group", id=rule.server_group.id, name=rule.server_group.name)
        else:
            target = TargetOut(kind="server", id=rule.server.id, name=rule.server.name)
        return cls(id=rule.id, subject=subject, target=target, label=rule_label(rule),
                   created_at=rule.created_at).model_dump(mode="json")


class AccessRulePage(BaseModel):
    items: list[AccessRuleOut]
    next_cursor: str | None


class ReachOut(ServerOut):
    """A server the user may reach, and the rules that grant it."""

    via: list[str] = Field(description="each granting rule's label, the user's own rules first")
    rules: list[str] = Field(description="each granting rule's id, in the same order")

    @classmethod
    def of(cls, reach) -> dict:
        return cls(**ServerOut.of(reach.server), via=reach.via,
                   rules=[rule.id for rule in reach.rules]).model_dump(mode="json")


class EffectiveAccessOut(BaseModel):
    user_id: str
    user: str = Field(description="the username")
    suspended: bool = Field(description="a suspended user reaches nothing")
    servers: list[ReachOut]

    @classmethod
    def of(cls, user, reaches) -> dict:
        return cls(user_id=user.id, user=user.username, suspended=bool(user.suspended),
                   servers=[ReachOut.of(r) for r in reaches]).model_dump(mode="json")
