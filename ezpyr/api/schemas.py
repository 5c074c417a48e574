"""The API's JSON shapes (pydantic), used to read bodies, to write answers
and to make the OpenAPI document."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    error: str
    fields: dict[str, str] | None = None


class ServerIn(Strict):
    name: str = Field(max_length=100, description="unique, case-insensitively")
    host: str = Field(max_length=255, description="host name or IP address")
    port: int = Field(22, ge=1, le=65535)
    remote_user: str = Field("root", max_length=32)
    auth_method: Literal["key", "password"] = "key"
    password: str = Field("", max_length=1024, description="only with auth_method password; never returned")
    group: str | None = Field(None, max_length=100, description="a server group's name, or null")
    description: str = Field("", max_length=2000)


class ServerPatch(Strict):
    name: str | None = Field(None, max_length=100)
    host: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    remote_user: str | None = Field(None, max_length=32)
    auth_method: Literal["key", "password"] | None = None
    password: str | None = Field(None, max_length=1024, description="empty or absent: keep the stored one")
    group: str | None = Field(None, max_length=100, description="a group's name; \"\" for none")
    description: str | None = Field(None, max_length=2000)


class ServerOut(BaseModel):
    id: str
    name: str
    host: str
    port: int
    remote_user: str
    auth_method: str
    has_password: bool
    group: str | None
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ServerPage(BaseModel):
    items: list[ServerOut]
    next_cursor: str | None


class ServerGroupIn(Strict):
    name: str = Field(max_length=100)
    description: str = Field("", max_length=2000)


class ServerGroupPatch(Strict):
    name: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=2000)


class ServerGroupOut(BaseModel):
    id: str
    name: str
    description: str
    servers: int


class ServerGroupPage(BaseModel):
    items: list[ServerGroupOut]
    next_cursor: str | None


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
