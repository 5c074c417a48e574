"""The API's JSON shapes (pydantic), used to read bodies, to write answers
and to make the OpenAPI document."""
from __future__ import annotations

import datetime as dt
from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    error: str
    fields: dict[str, str] | None = None


class DeletedOut(BaseModel):
    deleted: str
    removed: dict[str, int]


class MeOut(BaseModel):
    username: str
    admin: bool
    token: str
    read_only: bool
    expires_at: dt.datetime | None


class ClusterOut(BaseModel):
    node: dict
    other_node: dict | None
    status: str
    split_brain: bool
    backlog: int
    backlog_unsent: int
    backlog_queued: int
    lag_seconds: float | None
    warnings: list[str] = []
