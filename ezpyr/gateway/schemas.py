"""The JSON shape of the gateway's sessions: written by the API and by
``ezpyr-admin sessions --json``, and described in the OpenAPI document."""
from __future__ import annotations


from pydantic import BaseModel, Field

from ezpyr.api.schemas import UtcTime


class SessionOut(BaseModel):
    id: str
    username: str
    client_address: str = Field(description="where the user connected from")
    server: str = Field(description="the server's name")
    server_address: str = Field(description="user@host:port reached")
    command: str = Field(description="the command run; empty for an interactive shell")
    state: str = Field(description="live or ended")
    started_at: UtcTime
    ended_at: UtcTime | None
    exit_status: int | None
    bytes_in: int = Field(description="from the user")
    bytes_out: int = Field(description="to the user")
    guard_refusals: int = Field(description="commands the command guard refused")
    end_reason: str
    terminate_requested: bool
    recording: str = Field(description="the recording's file name in this node's session log directory")

    @classmethod
    def of(cls, row) -> dict:
        """``row`` (a GatewaySession) as JSON data."""
        return cls(id=row.id, username=row.username, client_address=row.client_address, server=row.server_name,
                   server_address=row.server_address, command=row.command,
                   state="live" if row.live else "ended", started_at=row.started_at, ended_at=row.ended_at,
                   exit_status=row.exit_status, bytes_in=row.bytes_in, bytes_out=row.bytes_out,
                   guard_refusals=row.guard_refusals, end_reason=row.end_reason,
                   terminate_requested=bool(row.terminate_requested),
                   recording=row.recording).model_dump(mode="json")


class SessionPage(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class TerminatedOut(BaseModel):
    session: SessionOut
    message: str
