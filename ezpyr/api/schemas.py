"""The API's JSON shapes (pydantic), used to read bodies, to write answers
and to make the OpenAPI document."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


# A time as the database keeps it (naive, in UTC), written with its zone
# ("…Z"): an RFC 3339 date-time, as the OpenAPI document's format says.
UtcTime = Annotated[dt.datetime, AfterValidator(_as_utc)]


def utc_text(value: dt.datetime) -> str:
    """``value`` as a UtcTime field writes it in JSON (``…Z``), for answers
    written without a model. A naive value (as every row holds it) is
    written as it is: a list of 100 servers writes 200 of them, and the
    round trip through an aware value cost four times as much."""
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return _as_utc(value).isoformat().replace("+00:00", "Z")


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
    expires_at: UtcTime | None
