"""The JSON shapes of servers and server groups: read from API bodies,
written by the API and by ``ezpyr-admin --json``, and described in the
OpenAPI document."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ezpyr.api.schemas import Strict, UtcTime, utc_text

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
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def of(cls, server) -> dict:
        """``server`` as JSON data."""
        return cls(id=server.id, name=server.name, host=server.host, port=server.port,
                   remote_user=server.remote_user, auth_method=server.auth_method,
                   has_password=bool(server.password_encrypted),
                   group=server.group.name if server.group else None, description=server.description,
                   created_at=server.created_at, updated_at=server.updated_at).model_dump(mode="json")

    @staticmethod
    def of_rows(rows) -> list[dict]:
        """Rows of :data:`ROW_FIELDS`, in that order (``ezpyr.servers.api.server_rows``
        selects them), as JSON data, written directly: a page of 100 servers
        costs a fifth of what a model per server (or one TypeAdapter call,
        or reading the rows' fields by name) costs. The tests hold each item
        equal to :meth:`of` of the same server."""
        return [{"id": id_, "name": name, "host": host, "port": port, "remote_user": remote_user,
                 "auth_method": auth_method, "has_password": bool(has_password), "group": group,
                 "description": description, "created_at": utc_text(created_at), "updated_at": utc_text(updated_at)}
                for (id_, name, host, port, remote_user, auth_method, has_password, group, description, created_at,
                     updated_at) in rows]


# the order of a row that ServerOut.of_rows reads
ROW_FIELDS = ("id", "name", "host", "port", "remote_user", "auth_method", "has_password", "group", "description",
              "created_at", "updated_at")


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

    @classmethod
    def of(cls, group, servers: int) -> dict:
        return cls(id=group.id, name=group.name, description=group.description,
                   servers=servers).model_dump(mode="json")


class ServerGroupPage(BaseModel):
    items: list[ServerGroupOut]
    next_cursor: str | None


class HostKeyResetOut(BaseModel):
    server: str
    was_pinned: str | None = Field(description="the fingerprint that was pinned; null when none was")
