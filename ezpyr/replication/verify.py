"""Verify: do two nodes hold the same replicated data?

Each table is compared in pages of consecutive primary keys: both nodes, at
the same time, hash the next ``chunk_rows`` rows after the same key and
answer the row count, a checksum (the XOR of the rows' CRC32, as
pt-table-checksum computes it, each times a factor from the row's key so
that equal changes to two rows do not cancel) and the key they stopped at. When both
stopped at the same key the page is compared as it is; otherwise it ends at
the lower of the two keys and the node that went further hashes again up
to there. So no request does work that grows with the table, the pages
realign after any difference, and progress is counted in rows.

Only pages that differ are compared row by row (a 64-bit MD5 prefix per
row, paged the same way), and only rows that differ cross the network in
full. On MariaDB/MySQL the hashing runs in SQL; on SQLite in Python. Both
nodes of a cluster use the same kind of database, so the two sides always
hash the same way.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Table, case, func, literal_column, select
from sqlalchemy.engine import Connection

from ezpyr.meta import replicated_tables
from ezpyr.replication.outbox import provenance
from ezpyr.replication.rows import encode_row

# Rows per page this node asks the other node to hash (ezpyr.verify.chunk_rows).
DEFAULT_CHUNK_ROWS = 50_000
# A differing page of more rows than this is cut into at most MAX_SPLITS
# parts, checksummed in one request, before rows are compared one by one.
SPLIT_ROWS = 1000
MAX_SPLITS = 64
# The most rows one request may ask a node to hash or list.
MAX_PAGE_ROWS = 100_000
# Seconds one verify request to the other node may take (ezpyr.verify.timeout).
DEFAULT_TIMEOUT = 60.0


def chunk_rows_setting(settings) -> int:
    try:
        rows = int(settings.get("ezpyr.verify.chunk_rows", DEFAULT_CHUNK_ROWS))
    except (TypeError, ValueError):
        rows = DEFAULT_CHUNK_ROWS
    return max(1, min(rows, MAX_PAGE_ROWS))


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


def _sql_row_text(connection: Connection, table: Table) -> str:
    """SQL for one row as text, the way pt-table-checksum makes it: the
    columns joined by a separator (the ASCII unit separator, which no
    stored text holds in practice), then a flag per column telling NULL
    from empty. Cheaper than hexing every column, which doubles the bytes
    hashed."""
    quote = connection.dialect.identifier_preparer.quote
    names = [quote(c.name) for c in table.columns]
    flags = ", ".join(f"ISNULL({name})" for name in names)
    return f"CONCAT_WS(CHAR(31 USING utf8mb4), {', '.join(names)}, CONCAT({flags}))"


def _sql_row_hash(connection: Connection, table: Table) -> str:
    """SQL for one row's hash: 16 hex digits of MD5 (names a changed row)."""
    return f"LEFT(MD5({_sql_row_text(connection, table)}), 16)"


def _sql_row_crc(connection: Connection, table: Table) -> str:
    """SQL for the number a row adds to its page's checksum (pages XOR
    them): the CRC32 of the row's text times an odd number made from its
    key. CRC32 is linear, so XORing plain CRCs lets two rows changed the
    same way at the same place cancel out (a page with two servers moved
    from port 22 to 23 looked unchanged); the key's factor makes each
    row's change count differently. CRC32 is half the price of MD5."""
    quote = connection.dialect.identifier_preparer.quote
    return f"CRC32({_sql_row_text(connection, table)}) * (CRC32({quote(table.c.id.name)}) | 1)"


def _py_row_text(table: Table, row: dict) -> bytes:
    return json.dumps(encode_row(table, row), sort_keys=True).encode()


def _py_row_crc(table: Table, row: dict) -> int:
    """What ``_sql_row_crc`` computes, for SQLite (over the row's JSON text)."""
    return zlib.crc32(_py_row_text(table, row)) * (zlib.crc32(str(row["id"]).encode()) | 1)


def _py_row_hash(table: Table, row: dict) -> str:
    return hashlib.md5(_py_row_text(table, row)).hexdigest()[:16]


def _in_range(table: Table, after: str | None, upto: str | None) -> list:
    """Rows whose key is after ``after`` and at most ``upto`` (None: no bound)."""
    bounds = []
    if after is not None:
        bounds.append(table.c.id > after)
    if upto is not None:
        bounds.append(table.c.id <= upto)
    return bounds


def _page(table: Table, columns: list, after: str | None, upto: str | None, limit: int):
    """The first ``limit`` rows of the range, in key order."""
    return select(*columns).where(*_in_range(table, after, upto)).order_by(table.c.id).limit(limit)


def _stopped(count: int, last: str | None, upto: str | None, limit: int) -> str | None:
    """Where a page ended: ``upto`` when it held fewer rows than ``limit``
    (it covered the range), else the key of its last row."""
    return last if count >= limit else upto


def checksum_page(connection: Connection, table: Table, after: str | None, upto: str | None,
                  limit: int) -> dict:
    """Row count and checksum of the first ``limit`` rows of the range (one
    pass): {"upto": the key it stopped at, "count", "checksum"}."""
    if _is_mysql(connection):
        page = _page(table, [table.c.id, literal_column(_sql_row_crc(connection, table)).label("crc")],
                     after, upto, limit).subquery("page")
        count, checksum, last = connection.execute(select(
            func.count(), literal_column("BIT_XOR(page.crc)"), func.max(page.c.id))).one()
        count, checksum = int(count), int(checksum or 0)
    else:
        count, checksum, last = 0, 0, None
        for row in connection.execute(_page(table, [table], after, upto, limit)).mappings():
            count += 1
            checksum ^= _py_row_crc(table, dict(row))
            last = row["id"]
    return {"upto": _stopped(count, last, upto, limit), "count": count, "checksum": f"{checksum:016x}"}


def split_checksums(connection: Connection, table: Table, after: str | None, upto: str | None,
                    splits: list[str], limit: int) -> dict:
    """Row count and checksum of each part (after, s1], (s1, s2] … (sk, upto]
    of the first ``limit`` rows of the range, in one pass: {"upto": the key
    it stopped at, "parts": [[count, checksum], …]}."""
    counts, checksums, last = [0] * (len(splits) + 1), [0] * (len(splits) + 1), None
    if _is_mysql(connection):
        part = case(*[(table.c.id <= key, n) for n, key in enumerate(splits)], else_=len(splits))
        page = _page(table, [table.c.id, literal_column(_sql_row_crc(connection, table)).label("crc"),
                             part.label("part")], after, upto, limit).subquery("page")
        for n, count, checksum, part_last in connection.execute(
                select(page.c.part, func.count(), literal_column("BIT_XOR(page.crc)"),
                       func.max(page.c.id)).group_by(page.c.part).order_by(page.c.part)):
            counts[n], checksums[n], last = int(count), int(checksum or 0), part_last
    else:
        for row in connection.execute(_page(table, [table], after, upto, limit)).mappings():
            n = bisect.bisect_left(splits, row["id"])
            counts[n] += 1
            checksums[n] ^= _py_row_crc(table, dict(row))
            last = row["id"]
    return {"upto": _stopped(sum(counts), last, upto, limit),
            "parts": [[count, f"{checksum:016x}"] for count, checksum in zip(counts, checksums)]}


def every_nth_key(connection: Connection, table: Table, after: str | None, upto: str | None,
                  step: int, most: int) -> list[str]:
    """Every ``step``-th key of the range (at most ``most`` of them), below ``upto``."""
    numbered = select(table.c.id, func.row_number().over(order_by=table.c.id).label("n")).where(
        *_in_range(table, after, upto)).subquery("numbered")
    keys = connection.execute(select(numbered.c.id).where(numbered.c.n % step == 0)
                              .order_by(numbered.c.id).limit(most)).scalars().all()
    return [key for key in keys if upto is None or key < upto]


def row_hash_page(connection: Connection, table: Table, after: str | None, upto: str | None,
                  limit: int) -> dict:
    """The hash of each of the first ``limit`` rows of the range:
    {"upto": the key it stopped at, "rows": {row key: row hash}}."""
    if _is_mysql(connection):
        stmt = _page(table, [table.c.id, literal_column(_sql_row_hash(connection, table))],
                     after, upto, limit)
        rows = {row_id: digest.lower() for row_id, digest in connection.execute(stmt)}
    else:
        rows = {row["id"]: _py_row_hash(table, dict(row))
                for row in connection.execute(_page(table, [table], after, upto, limit)).mappings()}
    last = next(reversed(rows)) if rows else None  # rows came in key order
    return {"upto": _stopped(len(rows), last, upto, limit), "rows": rows}


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

    def checksum(self, table: str, after: str | None, upto: str | None, limit: int,
                 splits: list[str] | None = None) -> dict: ...
    def row_hashes(self, table: str, after: str | None, upto: str | None, limit: int) -> dict: ...
    def rows(self, table: str, ids: list[str]) -> dict: ...
    def provenance(self, table: str, ids: list[str]) -> dict: ...


class LocalPeer(Peer):
    def __init__(self, connection: Connection):
        self.connection = connection

    def checksum(self, table, after, upto, limit, splits=None):
        if splits is not None:
            return split_checksums(self.connection, tables_by_name()[table], after, upto, splits, limit)
        return checksum_page(self.connection, tables_by_name()[table], after, upto, limit)

    def row_hashes(self, table, after, upto, limit):
        return row_hash_page(self.connection, tables_by_name()[table], after, upto, limit)

    def rows(self, table, ids):
        return rows_by_id(self.connection, tables_by_name()[table], ids)

    def provenance(self, table, ids):
        return provenance(self.connection, table, ids)


class PeerAnswerInvalid(RuntimeError):
    """The other node answered a page that does not move on."""


def _stopped_at(answer: dict, after: str | None, upto: str | None) -> str | None:
    """Where the other node's page ended: after ``after``, at most ``upto``."""
    end = answer.get("upto")
    if end == upto:
        return end
    if not isinstance(end, str) or (after is not None and end <= after) or (
            upto is not None and end > upto):
        raise PeerAnswerInvalid(f"the other node answered a page ending at {end!r}, "
                                f"not within ({after!r}, {upto!r}]")
    return end


def _lower(a: str | None, b: str | None) -> str | None:
    """The lower of two page ends (None: the end of the table)."""
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


def _differing_ids(connection, peer, other_node, table, after, upto, limit):
    """The keys of the rows that differ in the range, in key order, asking
    the other node for at most ``limit`` row hashes at a time (while this
    node hashes its own)."""
    while True:
        asked = other_node.submit(peer.row_hashes, table.name, after, upto, limit)
        here = row_hash_page(connection, table, after, upto, MAX_PAGE_ROWS)["rows"]
        theirs = asked.result()
        end = _stopped_at(theirs, after, upto)
        there = theirs.get("rows") or {}
        if end != upto:  # the other node stopped first: keep this node's rows up to there
            here = {i: h for i, h in here.items() if i <= end}
        yield from sorted(i for i in set(here) | set(there) if here.get(i) != there.get(i))
        if end == upto:
            return
        after = end


def _differing_in_page(connection, peer, other_node, table, after, upto, limit, rows_here,
                       split_rows):
    """The keys of the rows that differ in a differing page: a page of more
    than ``split_rows`` rows is first cut into parts, checksummed by both
    nodes in one request each, and only the differing parts are compared
    row by row."""
    if rows_here <= split_rows:
        yield from _differing_ids(connection, peer, other_node, table, after, upto, limit)
        return
    step = -(-rows_here // MAX_SPLITS)
    splits = every_nth_key(connection, table, after, upto, step, MAX_SPLITS)
    asked = other_node.submit(peer.checksum, table.name, after, upto, limit, splits)
    here = split_checksums(connection, table, after, upto, splits, limit)
    theirs = asked.result()
    parts = theirs.get("parts")
    if _stopped_at(theirs, after, upto) != upto or not isinstance(parts, list) or len(parts) != len(
            here["parts"]):  # the other node holds more rows here than a page: row by row
        yield from _differing_ids(connection, peer, other_node, table, after, upto, limit)
        return
    bounds = [after, *splits, upto]
    for n, (mine, their) in enumerate(zip(here["parts"], parts)):
        if mine != their:
            yield from _differing_ids(connection, peer, other_node, table, bounds[n], bounds[n + 1],
                                      limit)


def verify(connection: Connection, peer: Peer, *, progress=None, max_rows: int = 1000,
           with_provenance: bool = False, chunk_rows: int = DEFAULT_CHUNK_ROWS,
           split_rows: int = SPLIT_ROWS) -> list[TableReport]:
    """Compare every replicated table here with the peer's, ``chunk_rows``
    rows at a time. At most ``max_rows`` differing rows per table are
    fetched in full. ``progress(done, total, message)`` counts the rows of
    this node compared so far."""
    limit = max(1, min(int(chunk_rows), MAX_PAGE_ROWS))
    tables = replicated_tables()
    # counted only to show progress (a count reads every row's key once more)
    counts = {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
              for t in tables} if progress else {}
    total, done = sum(counts.values()), 0
    reports = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-peer") as other_node:
        for table in tables:
            report = TableReport(table.name, 0, 0)
            shown, more = [], 0
            after = None
            while True:
                # the other node hashes its next rows while this node hashes its own
                asked = other_node.submit(peer.checksum, table.name, after, None, limit)
                mine = checksum_page(connection, table, after, None, limit)
                theirs = asked.result()
                end = _lower(mine["upto"], _stopped_at(theirs, after, None))
                if mine["upto"] != end:  # the other node stopped first: the page ends there
                    mine = checksum_page(connection, table, after, end, limit)
                if theirs["upto"] != end:
                    theirs = peer.checksum(table.name, after, end, limit)
                    _stopped_at(theirs, after, end)
                report.rows_here += mine["count"]
                report.rows_there += int(theirs["count"])
                if (mine["count"], mine["checksum"]) != (int(theirs["count"]), theirs["checksum"]):
                    for row_id in _differing_in_page(connection, peer, other_node, table, after, end,
                                                     limit, mine["count"], split_rows):
                        if len(shown) < max_rows:
                            shown.append(row_id)
                        else:
                            more += 1
                done += mine["count"]
                if progress:
                    progress(min(done, total), total, f"{table.name}: {report.rows_here:,} of "
                             f"{counts[table.name]:,} rows compared")
                if end is None:
                    break
                after = end
            if shown:
                rows_here = rows_by_id(connection, table, shown)
                rows_there = peer.rows(table.name, shown)
                report.differing = [{"id": i, "here": rows_here.get(i), "there": rows_there.get(i)}
                                    for i in shown]
                if with_provenance:
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
