"""The JSON shape of the activity log's entries: written by the API and by
``ezpyr-admin activity list --json``, and described in the OpenAPI document."""
from __future__ import annotations


from pydantic import BaseModel, Field

from ezpyr.api.schemas import UtcTime


class ActivityOut(BaseModel):
    id: int
    at: UtcTime = Field(description="when (UTC)")
    username: str = Field(description="who: a user, \"cli\" for ezpyr-admin, or what a visitor typed")
    action: str = Field(description="what, e.g. server.create")
    target: str
    details: str
    remote_addr: str = Field(description="from which address")
    node: str = Field(description="the node that recorded it (the log is node-local)")

    @classmethod
    def of(cls, entry) -> dict:
        """``entry`` as JSON data."""
        return cls(id=entry.id, at=entry.at, username=entry.username, action=entry.action,
                   target=entry.target, details=entry.details, remote_addr=entry.remote_addr,
                   node=entry.node_name).model_dump(mode="json")


class ActivityPage(BaseModel):
    items: list[ActivityOut]
    next_cursor: str | None
