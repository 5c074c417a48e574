"""The body of every cluster API request, one schema per endpoint.

pydantic (v2, strict mode): each body is declared once as a typed model,
checked in one call, and every refusal names the field and why. Nothing the
other node sends reaches a service or the database before its body passed:
a body that is not JSON, nests too deeply, holds a number out of range, a
value of the wrong type, an unknown table or a row without all its columns
is a 400 with that message.

Fields a model does not declare are ignored (a newer peer may send more);
a row image must hold exactly its table's columns.
"""
from __future__ import annotations

import datetime as dt
import json
from functools import cache
from typing import Annotated, Any, Optional

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model,
)
from sqlalchemy import Boolean, Float, Integer, String

from ezpyr.meta import Timestamp, replicated_tables
from ezpyr.replication.verify import DEFAULT_CHUNK_ROWS, MAX_PAGE_ROWS, MAX_SPLITS

# The largest value an INTEGER column holds on both back ends.
INT_MAX = 2**31 - 1
MAX_IDS = 5000

RowKey = Annotated[str, StringConstraints(max_length=64)]
NodeId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")]
Whole = Annotated[int, Field(ge=0, le=INT_MAX)]
StreamKey = Annotated[str, StringConstraints(max_length=80, pattern=r"^[0-9A-Za-z-]{1,64}:[0-9]{1,10}$")]


class BadBody(ValueError):
    """A body this node refuses; the message says what is wrong with it."""


def _replicated_table(name: str) -> str:
    if name not in {t.name for t in replicated_tables()}:
        raise ValueError(f"{name[:80]!r} is not a replicated table")
    return name


TableName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_replicated_table)]


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Sealed(Body):
    """A setup request: its payload sealed under the setup key."""

    sealed: Annotated[str, StringConstraints(min_length=1, max_length=256 * 1024 * 1024)]


class Empty(Body):
    """Endpoints that take no arguments: any JSON object, or nothing."""


class RotateSecret(Body):
    """The next cluster secret, encrypted under a key derived from the current one."""

    secret: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class Resend(Body):
    origin: NodeId
    epoch: Whole
    seq: Whole


class Page(Body):
    table: TableName
    after: Optional[RowKey] = None
    upto: Optional[RowKey] = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_ROWS)] = DEFAULT_CHUNK_ROWS


class SplitPage(Page):
    splits: Optional[Annotated[list[RowKey], Field(max_length=MAX_SPLITS)]] = None


class RowIds(Body):
    table: TableName
    ids: Annotated[list[RowKey], Field(max_length=MAX_IDS)] = []


class Primary(Body):
    id: NodeId
    name: Annotated[str, StringConstraints(max_length=100)] = ""
    address: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    broker_url: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    epoch: Whole = 1


class SetupBegin(Body):
    primary: Primary


class SetupFinish(Body):
    vector: Annotated[dict[StreamKey, Whole], Field(max_length=10_000)]
    counts: Annotated[dict[TableName, Whole], Field(max_length=100)]
    epoch: Whole
    secret: Annotated[str, StringConstraints(max_length=4096)]
    data_key: Annotated[str, StringConstraints(max_length=4096)]


class HandedOver(Body):
    master: NodeId
    epoch: Whole


class ResyncFinish(Body):
    vector: Annotated[dict[StreamKey, Whole], Field(max_length=10_000)] = {}
    counts: Annotated[dict[TableName, Whole], Field(max_length=100)] = {}


class Chunk(Body):
    """A chunk of rows of one table: each row is checked against the
    table's own row schema (see :func:`row_schema`): only there, once
    (checking each row as a dict first, too, copied every row of the chunk)."""

    table: TableName
    rows: Annotated[list[Any], Field(max_length=100_000)] = []


# -- row images ------------------------------------------------------------------

def _iso_timestamp(value: str) -> str:
    dt.datetime.fromisoformat(value)  # ValueError: refused
    return value


def _column_type(column):
    kind = column.type
    if isinstance(kind, Timestamp):
        return Annotated[str, StringConstraints(max_length=40), AfterValidator(_iso_timestamp)]
    if isinstance(kind, Boolean):
        return bool
    if isinstance(kind, Integer):
        return Annotated[int, Field(ge=-INT_MAX - 1, le=INT_MAX)]
    if isinstance(kind, Float):
        return float
    if isinstance(kind, String) and kind.length:
        return Annotated[str, StringConstraints(max_length=kind.length)]
    return Annotated[str, StringConstraints(max_length=16 * 1024 * 1024)]


@cache
def row_schema(table_name: str) -> type[BaseModel]:
    """The model of one row image of a replicated table: every column
    present, each of its column's type and size, nothing else."""
    table = {t.name: t for t in replicated_tables()}[table_name]
    fields = {}
    for column in table.columns:
        kind = _column_type(column)
        fields[column.name] = (Optional[kind] if column.nullable else kind, ...)
    return create_model(f"Row_{table_name}", __config__=ConfigDict(strict=True, extra="forbid"),
                        **fields)


def check_rows(chunk: Chunk) -> list[dict]:
    schema = row_schema(chunk.table)
    for number, row in enumerate(chunk.rows, 1):
        try:
            schema.model_validate(row)
        except ValidationError as error:
            raise BadBody(f"row {number} of {chunk.table}: {_first_error(error)}") from None
    return chunk.rows


# -- parsing ---------------------------------------------------------------------

def _first_error(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "the body"
    return f"{where}: {first['msg']}"


def parse(model: type[Body], raw: bytes | None) -> Body:
    """The body as ``model``; raises BadBody."""
    try:
        data = json.loads(raw or b"{}")
    except ValueError:  # UnicodeDecodeError too; and numbers of more than 4,300 digits
        raise BadBody("the body is not JSON") from None
    except RecursionError:
        raise BadBody("the body nests too deeply") from None
    return check(model, data)


def check(model: type[Body], data) -> Body:
    """Already parsed JSON as ``model``; raises BadBody."""
    if not isinstance(data, dict):
        raise BadBody("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadBody(_first_error(error)) from None
