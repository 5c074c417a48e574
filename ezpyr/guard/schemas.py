"""The JSON shapes of command guard rules and of "test a command": read
from API bodies, written by the API and by ``ezpyr-admin guard … --json``,
and described in the OpenAPI document. A rule's user group is named by its
name (``"user_group": "ops"``)."""
from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field, model_validator

from ezpyr.api.schemas import Strict, UtcTime
from ezpyr.guard.services import MAX_DESCRIPTION, MAX_PATTERN

PATTERN = ("a Python regular expression, searched in each simple command of a line (anchor with ^); "
           "one that can take exponential time is refused")


class GuardRuleIn(Strict):
    user_group: str = Field(min_length=1, max_length=100, description="the user group's name")
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN, description=PATTERN)
    description: str = Field("", max_length=MAX_DESCRIPTION)


class GuardRulePatch(Strict):
    user_group: str | None = Field(None, min_length=1, max_length=100, description="move it to this user group")
    pattern: str | None = Field(None, min_length=1, max_length=MAX_PATTERN, description=PATTERN)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


class GuardRuleOut(BaseModel):
    id: str
    user_group: str = Field(description="the user group's name")
    pattern: str
    description: str
    created_at: UtcTime

    @classmethod
    def of(cls, rule) -> dict:
        """``rule`` as JSON data."""
        return cls(id=rule.id, user_group=rule.user_group.name, pattern=rule.pattern,
                   description=rule.description, created_at=rule.created_at).model_dump(mode="json")


class GuardRulePage(BaseModel):
    items: list[GuardRuleOut]
    next_cursor: str | None


class GuardTestIn(Strict):
    """A command line, and whose rules to try it against: a user group's,
    or a user's (the rules of the user's group): exactly one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 2, "maxProperties": 2})
    command: str = Field(min_length=1, max_length=10000, description="the command line, as typed at the gateway")
    user_group: str | None = Field(None, min_length=1, max_length=100, description="a user group's name")
    user: str | None = Field(None, min_length=1, max_length=32, description="a username")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.user_group is None) == (self.user is None):
            raise ValueError("name a user group (user_group) or a user (user): exactly one")
        return self


class GuardTestOut(BaseModel):
    command: str
    allowed: bool
    user_group: str | None = Field(description="the user group whose rules were tried; null: the user is in none")
    user: str | None = Field(description="the username, when a user was named")
    rules_checked: int
    refused_by: list[GuardRuleOut] = Field(description="the rules that match (empty: allowed)")

    @classmethod
    def of(cls, verdict) -> dict:
        return cls(command=verdict.command, allowed=verdict.allowed,
                   user_group=verdict.group.name if verdict.group else None,
                   user=verdict.user.username if verdict.user else None,
                   rules_checked=verdict.rule_count,
                   refused_by=[GuardRuleOut.of(r) for r in verdict.refused_by]).model_dump(mode="json")
