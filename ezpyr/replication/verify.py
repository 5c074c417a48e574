"""Verify: do two nodes hold the same replicated data?

Each table is compared in chunks of consecutive primary keys. This node
cuts its own rows into chunks of at most ``chunk_rows`` rows; for each
chunk both nodes compute the row count and a checksum (the XOR of the rows'
64-bit hashes) over the same key range, at the same time. The other node
hashes at most ``limit`` rows per request: when it holds more rows in the
range it says where it stopped, and the chunk ends there. So no request
does work that grows with the table, and progress is counted in rows.

Only chunks that differ are compared row by row (a hash per row, paged the
same way), and only rows that differ cross the network in full. On
MariaDB/MySQL the hashing runs in SQL; on SQLite in Python. Both nodes of a
cluster use the same kind of database, so the two sides always hash the
same way.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Table, func, literal_column, select
from sqlalchemy.engine import Connection

from ezpyr.meta import replicated_tables
from ezpyr.replication.rows import encode_row

# Rows per chunk this node asks the other node to hash (ezpyr.verify.chunk_rows).
DEFAULT_CHUNK_ROWS = 10_000
# The most rows one request may ask a node to hash or list.
MAX_PAGE_ROWS = 100_000
# Seconds one verify request to the other node may take (ezpyr.verify.timeout).
DEFAULT_TIMEOUT = 60.0


def chunk_rows_setting(settings) -> int:
    try:
        rows = int(settings.get("ezpyr.verify.chunk_rows", DEFAULT_CHUNK_ROWS))
    except (TypeError, ValueError):
        rows = DEFAULT_CHUNK_ROWS
    return max(1, min(rows, MAX_PAGE_ROWS // 2))


def timeout_setting(settings) -> float:
    try:
        seconds = float(settings.get("ezpyr.verify.timeout", DEFAULT_TIMEOUT))
    except (TypeError, ValueError):
        seconds = DEFAULT_TIMEOUT
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


def tables_by_name() -> dict[str, Table]:
    return {t.name: t for t in replicated_tables()}


def _is_mysql(connection: Connection) -> bool:
    return connection.dialect.name in ("mysql", "mariadb")


def _sql_row_hash(connection: Connection, table: Table) -> str:
    """SQL for one row's hash (16 hex digits of MD5) over every column, NULL-safe."""
    quote = connection.dialect.identifier_preparer.quote
    parts = [f"IFNULL(HEX({quote(c.name)}), '-')" for c in table.columns]
    return f"LEFT(MD5(CONCAT_WS('|', {', '.join(parts)})), 16)"


def _py_row_hash(table: Table, row: dict) -> str:
    return hashlib.md5(json.dumps(encode_row(table, row), sort_keys=True).encode()).hexdigest()[:16]


def _in_range(table: Table, after: str | None, upto: str | None) -> list:
    """Rows whose key is after ``after`` and at most ``upto`` (None: no bound)."""
    bounds = []
    if after is not None:
        bounds.append(table.c.id > after)
    if upto is not None:
        bounds.append(table.c.id <= upto)
    return bounds


def chunk_end(connection: Connection, table: Table, after: str | None, rows: int,
              upto: str | None = None) -> str | None:
    """The key of the ``rows``-th row after ``after`` (not beyond ``upto``),
    or None when fewer rows are left."""
    return connection.execute(
        select(table.c.id).where(*_in_range(table, after, upto))
        .order_by(table.c.id).offset(rows - 1).limit(1)).scalar()


def range_checksum(connection: Connection, table: Table, after: str | None,
                   upto: str | None) -> tuple[int, str]:
    """(row count, checksum) of the rows in the range."""
    where = _in_range(table, after, upto)
    if _is_mysql(connection):
        xor = f"BIT_XOR(CAST(CONV({_sql_row_hash(connection, table)}, 16, 10) AS UNSIGNED))"
        count, checksum = connection.execute(
            select(func.count(), literal_column(xor)).select_from(table).where(*where)).one()
        return int(count), f"{int(checksum or 0):016x}"
    count, checksum = 0, 0
    for row in connection.execute(select(table).where(*where)).mappings():
        count += 1
        checksum ^= int(_py_row_hash(table, dict(row)), 16)
    return count, f"{checksum:016x}"


def range_row_hashes(connection: Connection, table: Table, after: str | None,
                     upto: str | None) -> dict[str, str]:
    """{row key: row hash} for the rows in the range."""
    where = _in_range(table, after, upto)
    if _is_mysql(connection):
        stmt = select(table.c.id, literal_column(_sql_row_hash(connection, table))).where(*where)
        return {row_id: digest.lower() for row_id, digest in connection.execute(stmt)}
    return {row["id"]: _py_row_hash(table, dict(row))
            for row in connection.execute(select(table).where(*where)).mappings()}


def _page_end(connection, table, after, upto, limit) -> str | None:
    """Where a page of at most ``limit`` rows of the range ends: ``upto``
    when the whole range fits, else the key of its ``limit``-th row."""
    end = chunk_end(connection, table, after, limit, upto)
    return upto if end is None else end


def checksum_page(connection: Connection, table: Table, after: str | None, upto: str | None,
                  limit: int) -> dict:
    """The checksum of at most ``limit`` rows of the range: {"upto": the key
    it stopped at (the asked ``upto`` when it covered the range), "count",
    "checksum"}."""
    end = _page_end(connection, table, after, upto, limit)
    count, checksum = range_checksum(connection, table, after, end)
    return {"upto": end, "count": count, "checksum": checksum}


def row_hash_page(connection: Connection, table: Table, after: str | None, upto: str | None,
                  limit: int) -> dict:
    """The row hashes of at most ``limit`` rows of the range: {"upto", "rows"}."""
    end = _page_end(connection, table, after, upto, limit)
    return {"upto": end, "rows": range_row_hashes(connection, table, after, end)}


def rows_by_id(connection: Connection, table: Table, ids: list[str]) -> dict[str, dict]:
    out = {}
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        for row in connection.execute(select(table).where(table.c.id.in_(part))).mappings():
            out[row["id"]] = encode_row(table, dict(row))
    return out


@dataclass
class TableReport:
    table: str
    rows_here: int
    rows_there: int
    differing: list[dict] = field(default_factory=list)  # {"id", "here", "there"}

    @property
    def in_sync(self) -> bool:
        return not self.differing and self.rows_here == self.rows_there

    def as_dict(self) -> dict:
        return {"table": self.table, "rows_here": self.rows_here, "rows_there": self.rows_there,
                "in_sync": self.in_sync, "differing": self.differing}


class Peer:
    """What verify needs of the other node (the cluster client, or another
    connection in tests and benchmarks). Each call does bounded work."""

    def checksum(self, table: str, after: str | None, upto: str | None, limit: int) -> dict: ...
    def row_hashes(self, table: str, after: str | None, upto: str | None, limit: int) -> dict: ...
    def rows(self, table: str, ids: list[str]) -> dict: ...
    def provenance(self, table: str, ids: list[str]) -> dict: ...


class LocalPeer(Peer):
    def __init__(self, connection: Connection):
        self.connection = connection

    def checksum(self, table, after, upto, limit):
        return checksum_page(self.connection, tables_by_name()[table], after, upto, limit)

    def row_hashes(self, table, after, upto, limit):
        return row_hash_page(self.connection, tables_by_name()[table], after, upto, limit)

    def rows(self, table, ids):
        return rows_by_id(self.connection, tables_by_name()[table], ids)

    def provenance(self, table, ids):
        from ezpyr.cluster.resolve import provenance
        return provenance(self.connection, table, ids)


class PeerAnswerInvalid(RuntimeError):
    """The other node answered a page that does not move on."""


def _stopped_at(answer: dict, after: str | None, upto: str | None) -> str | None:
    """Where the other node's page ended; it must end after ``after``."""
    end = answer.get("upto")
    if end == upto:
        return end
    if not isinstance(end, str) or (after is not None and end <= after) or (
            upto is not None and end > upto):
        raise PeerAnswerInvalid(f"the other node answered a page ending at {end!r}, "
                                f"not within ({after!r}, {upto!r}]")
    return end


def _differing_ids(connection, peer, table, after, upto, limit):
    """The keys of the rows that differ in the range, in key order, asking
    the other node for at most ``limit`` row hashes at a time."""
    while True:
        theirs = peer.row_hashes(table.name, after, upto, limit)
        end = _stopped_at(theirs, after, upto)
        there = theirs.get("rows") or {}
        here = range_row_hashes(connection, table, after, end)
        yield from sorted(i for i in set(here) | set(there) if here.get(i) != there.get(i))
        if end == upto:
            return
        after = end


def verify(connection: Connection, peer: Peer, *, progress=None, max_rows: int = 1000,
           with_provenance: bool = False, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> list[TableReport]:
    """Compare every replicated table here with the peer's, ``chunk_rows``
    rows at a time. At most ``max_rows`` differing rows per table are
    fetched in full. ``progress(done, total, message)`` counts the rows of
    this node compared so far."""
    chunk_rows = max(1, min(int(chunk_rows), MAX_PAGE_ROWS // 2))
    limit = 2 * chunk_rows  # the other node may hold a few more rows in a chunk
    tables = replicated_tables()
    counts = {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
              for t in tables}
    total, done = sum(counts.values()), 0
    reports = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-peer") as other_node:
        for table in tables:
            report = TableReport(table.name, 0, 0)
            shown, more = [], 0
            after = None
            while True:
                upto = chunk_end(connection, table, after, chunk_rows)
                # the other node hashes its rows while this node hashes its own
                asked = other_node.submit(peer.checksum, table.name, after, upto, limit)
                mine = range_checksum(connection, table, after, upto)
                theirs = asked.result()
                end = _stopped_at(theirs, after, upto)
                if end != upto:  # the other node holds more rows here: the chunk ends where it stopped
                    upto = end
                    mine = range_checksum(connection, table, after, upto)
                report.rows_here += mine[0]
                report.rows_there += int(theirs["count"])
                if mine != (int(theirs["count"]), theirs["checksum"]):
                    for row_id in _differing_ids(connection, peer, table, after, upto, limit):
                        if len(shown) < max_rows:
                            shown.append(row_id)
                        else:
                            more += 1
                done += mine[0]
                if progress:
                    progress(min(done, total), total, f"{table.name}: {report.rows_here:,} of "
                             f"{counts[table.name]:,} rows compared")
                if upto is None:
                    break
                after = upto
            if shown:
                rows_here = rows_by_id(connection, table, shown)
                rows_there = peer.rows(table.name, shown)
                report.differing = [{"id": i, "here": rows_here.get(i), "there": rows_there.get(i)}
                                    for i in shown]
                if with_provenance:
                    from ezpyr.cluster.resolve import provenance
                    made_here = provenance(connection, table.name, shown)
                    made_there = peer.provenance(table.name, shown)
                    for diff in report.differing:
                        diff["here_change"] = made_here.get(diff["id"])
                        diff["there_change"] = made_there.get(diff["id"])
            if more:
                report.differing.append({"id": None, "more": more})
            reports.append(report)
    if progress:
        progress(total, total, "compared")
    return reports
