"""Row images as they travel: JSON-safe dicts keyed by column name."""
from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import DateTime, Table
from sqlalchemy.types import TypeDecorator


def _is_datetime(column) -> bool:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance if hasattr(kind, "impl_instance") else kind.impl
    return isinstance(kind, DateTime) or (isinstance(kind, type) and issubclass(kind, DateTime))


@functools.cache
def datetime_columns(table: Table) -> frozenset:
    """The names of ``table``'s datetime columns (worked out once per table:
    rows are encoded and decoded by the hundred thousand)."""
    return frozenset(column.name for column in table.columns if _is_datetime(column))


def encode_row(table: Table, values: dict) -> dict:
    row = {}
    for column in table.columns:
        value = values.get(column.name)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        row[column.name] = value
    return row


def decode_row(table: Table, row: dict) -> dict:
    stamps = datetime_columns(table)
    values = {}
    for column in table.columns:
        name = column.name
        if name not in row:
            continue
        value = row[name]
        if value is not None and name in stamps:
            value = dt.datetime.fromisoformat(value)
        values[name] = value
    return values
