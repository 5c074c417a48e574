"""Row images as they travel: JSON-safe dicts keyed by column name."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Table
from sqlalchemy.types import TypeDecorator


def _is_datetime(column) -> bool:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance if hasattr(kind, "impl_instance") else kind.impl
    return isinstance(kind, DateTime) or (isinstance(kind, type) and issubclass(kind, DateTime))


def encode_row(table: Table, values: dict) -> dict:
    row = {}
    for column in table.columns:
        value = values.get(column.name)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        row[column.name] = value
    return row


def decode_row(table: Table, row: dict) -> dict:
    values = {}
    for column in table.columns:
        if column.name not in row:
            continue
        value = row[column.name]
        if value is not None and _is_datetime(column):
            value = dt.datetime.fromisoformat(value)
        values[column.name] = value
    return values
