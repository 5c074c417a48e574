"""A consistent copy of every replicated table, taken at a known version
vector, and loading it into another node's database."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterator

from sqlalchemy import String, Table, cast, delete, insert, select
from sqlalchemy.engine import Connection

from ezpyr.meta import replicated_tables
from ezpyr.replication.apply import version_vector
from ezpyr.replication.models import VersionVectorEntry
from ezpyr.replication.rows import datetime_columns, decode_row

# Rows per chunk: one request of Add or a resync, about 5 MB of JSON for servers
# (each request's own cost, checking its signature and nonce, committing, is
# paid half as often as with 5,000).
CHUNK = 10_000


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
            columns = _as_sent(table)
            names = [column.name for column in table.columns]
            last = ""
            while True:
                rows = connection.execute(
                    select(*columns).where(table.c.id > last).order_by(table.c.id).limit(chunk)
                ).all()
                if not rows:
                    break
                yield Chunk(table.name, [dict(zip(names, row)) for row in rows])
                last = rows[-1].id

    return vector, chunks()


def clear_replicated(connection: Connection) -> None:
    """Empty every replicated table (children first) and the vector."""
    for table in reversed(replicated_tables()):
        connection.execute(delete(table))
    connection.execute(delete(VersionVectorEntry.__table__))


def load_chunk(connection: Connection, chunk: Chunk) -> None:
    """Insert a chunk's rows: one executemany per set of columns (a chunk
    has one), the values converted as SQLAlchemy would bind them, handed
    to the driver directly (it sends them as multi-row INSERTs)."""
    table = {t.name: t for t in replicated_tables()}[chunk.table]
    by_columns: dict[tuple, list] = {}
    for row in chunk.rows:
        by_columns.setdefault(tuple(name for name in row if name in table.c), []).append(row)
    for names, rows in by_columns.items():
        _insert_rows(connection, table, names, rows)


def _as_sent(table: Table) -> list:
    """The table's columns as a copy reads them, in column order: the
    datetimes as the database's own text ('2026-11-26 04:05:06.123456' on
    both back ends, which the loading side reads with fromisoformat), so
    that neither the driver nor this node converts them to datetime objects
    and back (a fifth of the primary's time in an Add)."""
    stamps = datetime_columns(table)
    return [cast(column, String).label(column.name) if column.name in stamps else column
            for column in table.columns]


def _insert_rows(connection: Connection, table: Table, names: tuple, rows: list[dict]) -> None:
    columns = [table.c[name] for name in names]
    paramstyle = connection.dialect.paramstyle
    if not columns or paramstyle not in ("qmark", "format", "pyformat"):
        connection.execute(insert(table), [decode_row(table, row) for row in rows])
        return
    dialect = connection.dialect
    stamps = [n for n, name in enumerate(names) if name in datetime_columns(table)]
    binds = [(n, column.type.dialect_impl(dialect).bind_processor(dialect)) for n, column in enumerate(columns)]
    binds = [(n, bind) for n, bind in binds if bind is not None]
    values = []
    for row in rows:
        value = [row[name] for name in names]
        for n in stamps:
            if value[n] is not None:
                value[n] = dt.datetime.fromisoformat(value[n])
        for n, bind in binds:
            value[n] = bind(value[n])
        values.append(tuple(value))
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) VALUES "
    if dialect.driver == "pymysql":
        _insert_escaped(connection, head, values)
        return
    marker = "?" if paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(f"{head}({', '.join([marker] * len(names))})", values)


# Characters of one multi-row INSERT: at most 1,000,000 bytes (as PyMySQL's
# executemany makes them) even if every character takes four.
STATEMENT_CHARS = 250_000


def _insert_escaped(connection: Connection, head: str, values: list[tuple]) -> None:
    """What PyMySQL's executemany sends (multi-row INSERTs, each value escaped
    by the driver's own ``Connection.escape``), built without its layers of
    calls per value, which were a third of the secondary's time in an Add."""
    escape = connection.connection.driver_connection.escape
    batch, size = [], 0
    for value in values:
        text = "(" + ",".join(map(escape, value)) + ")"
        if batch and size + len(text) > STATEMENT_CHARS:
            _execute_literal(connection, head + ",".join(batch))
            batch, size = [], 0
        batch.append(text)
        size += len(text) + 1
    if batch:
        _execute_literal(connection, head + ",".join(batch))


def _execute_literal(connection: Connection, statement: str) -> None:
    """A statement without parameters: the driver must not read its "%"s."""
    connection.exec_driver_sql(statement, execution_options={"no_parameters": True})


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
