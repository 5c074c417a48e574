"""Verify: do two nodes hold the same replicated data?

Per table, each node computes a row count and bucketed checksums: rows go
to one of 256 buckets by the first two hex digits of their UUID key, and a
bucket's checksum is the XOR of its rows' hashes. Only buckets that differ
are looked at row by row (a hash per row), and only rows that differ cross
the network in full. On MariaDB/MySQL the hashing runs in SQL; on SQLite
in Python. Both nodes of a cluster use the same kind of database, so the
two sides always hash the same way.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from sqlalchemy import Table, func, literal_column, select, text
from sqlalchemy.engine import Connection

from ezpyr.meta import replicated_tables
from ezpyr.replication.rows import encode_row


def tables_by_name() -> dict[str, Table]:
    return {t.name: t for t in replicated_tables()}


def _is_mysql(connection: Connection) -> bool:
    return connection.dialect.name in ("mysql", "mariadb")


def _sql_row_hash(connection: Connection, table: Table) -> str:
    """SQL for one row's hash (hex MD5) over every column, NULL-safe."""
    quote = connection.dialect.identifier_preparer.quote
    parts = [f"IFNULL(HEX({quote(c.name)}), '-')" for c in table.columns]
    return f"MD5(CONCAT_WS('|', {', '.join(parts)}))"


def _py_row_hash(table: Table, row: dict) -> str:
    return hashlib.md5(json.dumps(encode_row(table, row), sort_keys=True).encode()).hexdigest()


def table_digest(connection: Connection, table: Table) -> dict:
    """{"count": n, "buckets": {bucket: [count, checksum]}}"""
    buckets: dict[str, list] = {}
    if _is_mysql(connection):
        row_hash = _sql_row_hash(connection, table)
        quote = connection.dialect.identifier_preparer.quote
        sql = text(
            f"SELECT LEFT(id, 2) AS b, COUNT(*) AS n, "
            f"BIT_XOR(CAST(CONV(LEFT({row_hash}, 16), 16, 10) AS UNSIGNED)) AS x1, "
            f"BIT_XOR(CAST(CONV(RIGHT({row_hash}, 16), 16, 10) AS UNSIGNED)) AS x2 "
            f"FROM {quote(table.name)} GROUP BY LEFT(id, 2)"
        )
        for b, n, x1, x2 in connection.execute(sql):
            buckets[b] = [int(n), f"{int(x1):016x}{int(x2):016x}"]
    else:
        acc: dict[str, list] = {}
        for row in connection.execute(select(table)).mappings():
            b = row["id"][:2]
            entry = acc.setdefault(b, [0, 0])
            entry[0] += 1
            entry[1] ^= int(_py_row_hash(table, dict(row)), 16)
        buckets = {b: [n, f"{x:032x}"] for b, (n, x) in acc.items()}
    return {"count": sum(n for n, _ in buckets.values()), "buckets": buckets}


def bucket_row_hashes(connection: Connection, table: Table, buckets: list[str]) -> dict[str, str]:
    """{row id: row hash} for the rows in the given buckets."""
    if not buckets:
        return {}
    out = {}
    prefix = func.substr(table.c.id, 1, 2)
    if _is_mysql(connection):
        stmt = select(table.c.id, literal_column(_sql_row_hash(connection, table))).where(
            prefix.in_(buckets))
        for row_id, digest in connection.execute(stmt):
            out[row_id] = digest.lower()
    else:
        for row in connection.execute(select(table).where(prefix.in_(buckets))).mappings():
            out[row["id"]] = _py_row_hash(table, dict(row))
    return out


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
    connection in tests and benchmarks)."""

    def digests(self, tables: list[str]) -> dict: ...
    def row_hashes(self, table: str, buckets: list[str]) -> dict: ...
    def rows(self, table: str, ids: list[str]) -> dict: ...
    def provenance(self, table: str, ids: list[str]) -> dict: ...


class LocalPeer(Peer):
    def __init__(self, connection: Connection):
        self.connection = connection

    def digests(self, tables):
        known = tables_by_name()
        return {name: table_digest(self.connection, known[name]) for name in tables}

    def row_hashes(self, table, buckets):
        return bucket_row_hashes(self.connection, tables_by_name()[table], buckets)

    def rows(self, table, ids):
        return rows_by_id(self.connection, tables_by_name()[table], ids)

    def provenance(self, table, ids):
        from ezpyr.cluster.resolve import provenance
        return provenance(self.connection, table, ids)


def verify(connection: Connection, peer: Peer, *, progress=None, max_rows: int = 1000,
           with_provenance: bool = False) -> list[TableReport]:
    """Compare every replicated table here with the peer's. At most
    ``max_rows`` differing rows per table are fetched in full."""
    tables = replicated_tables()
    theirs_all = peer.digests([t.name for t in tables])
    reports = []
    for index, table in enumerate(tables):
        mine = table_digest(connection, table)
        theirs = theirs_all[table.name]
        report = TableReport(table.name, mine["count"], theirs["count"])
        differing_buckets = sorted(
            b for b in set(mine["buckets"]) | set(theirs["buckets"])
            if mine["buckets"].get(b) != theirs["buckets"].get(b)
        )
        if differing_buckets:
            here = bucket_row_hashes(connection, table, differing_buckets)
            there = peer.row_hashes(table.name, differing_buckets)
            ids = sorted(i for i in set(here) | set(there) if here.get(i) != there.get(i))
            shown = ids[:max_rows]
            rows_here = rows_by_id(connection, table, shown)
            rows_there = peer.rows(table.name, shown)
            report.differing = [{"id": i, "here": rows_here.get(i), "there": rows_there.get(i)}
                                for i in shown]
            if with_provenance and shown:
                from ezpyr.cluster.resolve import provenance
                made_here = provenance(connection, table.name, shown)
                made_there = peer.provenance(table.name, shown)
                for diff in report.differing:
                    diff["here_change"] = made_here.get(diff["id"])
                    diff["there_change"] = made_there.get(diff["id"])
            if len(ids) > max_rows:
                report.differing.append({"id": None, "more": len(ids) - max_rows})
        reports.append(report)
        if progress:
            progress(index + 1, len(tables))
    return reports
