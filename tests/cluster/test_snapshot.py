"""A snapshot chunk loaded and read back is the same rows, whatever its text
holds (quotes, backslashes, "%", NUL, four-byte characters) and however many
statements the load takes; timestamps come back as the same instants."""
from __future__ import annotations

import datetime as dt

import pytest

from ezpyr.cluster import snapshot
from ezpyr.cluster.snapshot import Chunk, load_chunk, read_snapshot
from ezpyr.replication.writes import applying

AWKWARD = "it's 100% \\ \"quoted\" \x00 \n\t ünï 😀 %s %(name)s ? ;--"


def group_rows(count: int) -> list[dict]:
    return [{"id": f"g{i:05d}", "name": f"group {i}" + (AWKWARD if i % 7 == 0 else ""),
             "description": AWKWARD * (i % 3), "created_at": f"2026-01-02 03:04:05.{i:06d}"}
            for i in range(count)]


def copied(engine, rows: list[dict]) -> list[dict]:
    with engine.begin() as conn, applying(conn):
        load_chunk(conn, Chunk("server_groups", rows))
    with engine.connect() as conn:
        _vector, chunks = read_snapshot(conn)
        return [row for chunk in chunks if chunk.table == "server_groups" for row in chunk.rows]


@pytest.mark.parametrize("statement_chars", [snapshot.STATEMENT_CHARS, 2000])
def test_rows_come_back_as_they_went_in(engine, dbsession, monkeypatch, statement_chars):
    """2000 characters: the chunk goes as many INSERTs on MariaDB."""
    monkeypatch.setattr(snapshot, "STATEMENT_CHARS", statement_chars)
    rows = group_rows(300)
    back = copied(engine, rows)
    assert [{**row, "created_at": dt.datetime.fromisoformat(row["created_at"])} for row in back] == [
        {**row, "created_at": dt.datetime.fromisoformat(row["created_at"])} for row in rows]


def test_timestamps_are_read_as_the_databases_text_and_keep_their_instant(engine, dbsession):
    rows = group_rows(2)
    rows[0]["created_at"] = "2026-01-02T03:04:05+01:00"  # another zone: stored in UTC
    rows[1]["created_at"] = "2026-01-02T03:04:05.000001"
    back = copied(engine, rows)
    assert [row["created_at"] for row in back] == ["2026-01-02 02:04:05.000000", "2026-01-02 03:04:05.000001"]
