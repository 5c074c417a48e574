"""A consistent copy of every replicated table, taken at a known version
vector, and loading it into another node's database."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from ezpyr.meta import replicated_tables
from ezpyr.replication.apply import version_vector
from ezpyr.replication.models import VersionVectorEntry
from ezpyr.replication.rows import decode_row, encode_row

CHUNK = 2000


@dataclass
class Chunk:
    table: str
    rows: list[dict]  # encoded (JSON-safe)


def table_counts(connection: Connection) -> dict[str, int]:
    from sqlalchemy import func
    return {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in replicated_tables()}


def hold_snapshot(connection: Connection) -> None:
    """Make the connection's reads one consistent snapshot. InnoDB does so
    from the first read of the transaction; SQLite's driver opens a
    transaction only for writes, so open a read transaction explicitly."""
    if connection.dialect.name == "sqlite":
        raw = connection.connection.driver_connection
        if not raw.in_transaction:
            raw.execute("BEGIN")


def read_snapshot(connection: Connection, chunk: int = CHUNK) -> tuple[dict, Iterator[Chunk]]:
    """The vector and the chunks of one snapshot. ``connection`` must be in
    a transaction that sees one consistent state (REPEATABLE READ on
    MariaDB, a read transaction on SQLite) for as long as the chunks are read."""
    hold_snapshot(connection)
    vector = version_vector(connection)

    def chunks():
        for table in replicated_tables():
            last = ""
            while True:
                rows = connection.execute(
                    select(table).where(table.c.id > last).order_by(table.c.id).limit(chunk)
                ).mappings().all()
                if not rows:
                    break
                yield Chunk(table.name, [encode_row(table, dict(r)) for r in rows])
                last = rows[-1]["id"]

    return vector, chunks()


def clear_replicated(connection: Connection) -> None:
    """Empty every replicated table (children first) and the vector."""
    for table in reversed(replicated_tables()):
        connection.execute(delete(table))
    connection.execute(delete(VersionVectorEntry.__table__))


def load_chunk(connection: Connection, chunk: Chunk) -> None:
    table = {t.name: t for t in replicated_tables()}[chunk.table]
    if chunk.rows:
        connection.execute(insert(table), [decode_row(table, row) for row in chunk.rows])


def set_vector(connection: Connection, vector: dict) -> None:
    table = VersionVectorEntry.__table__
    connection.execute(delete(table))
    if vector:
        connection.execute(insert(table), [
            {"origin": origin, "epoch": epoch, "seq": seq} for (origin, epoch), seq in vector.items()
        ])


def copy_snapshot(source: Connection, target: Connection,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Replace the target's replicated data with the source's; returns the
    vector the copy was taken at. Both connections are in transactions the
    caller commits (the target's only when everything arrived)."""
    total = sum(table_counts(source).values())
    vector, chunks = read_snapshot(source)
    clear_replicated(target)
    done = 0
    for chunk in chunks:
        load_chunk(target, chunk)
        done += len(chunk.rows)
        if progress:
            progress(done, total)
    set_vector(target, vector)
    return vector
