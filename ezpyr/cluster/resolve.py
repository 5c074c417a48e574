"""Resolving a split-brain.

On the master (the node with the higher epoch), from a Verify made during
the split-brain: for every differing row the admin keeps this node's
version or the other node's (per row, per table, or all of one side).

1. Both nodes write a backup of their replicated tables to a file.
2. The choices are applied here as one new change (an outbox entry), and
   this node's vector takes in the other node's streams, so that what the
   other node did during the split counts as seen.
3. The other node is resynced from this node: it receives a consistent copy
   of every replicated table and this node's vector (the union of both
   histories), and leaves the split-brain.
4. Both nodes clear the split-brain; Verify is clean; replication runs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.snapshot import clear_replicated, load_chunk, read_snapshot, set_vector, table_counts, Chunk
from ezpyr.meta import replicated_tables, utcnow
from ezpyr.replication.apply import take_in, upsert_statement, version_vector
from ezpyr.replication.capture import REPLAYING, record_changes, sequence_committed
from ezpyr.replication.wake import wake_relay
from ezpyr.replication.rows import decode_row, encode_row
from ezpyr.replication.vector import VersionVector
from ezpyr.replication.writes import recording
from ezpyr.validation import Invalid

SIDES = ("here", "there")


# -- backups ------------------------------------------------------------------

def write_backup(connection: Connection, directory: str | Path, node_name: str) -> str:
    """Every replicated table and the vector, as JSON, in a new file
    readable by this node's owner only. Returns its path."""
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"ezpyr-backup-{node_name}-{stamp}.json"
    data = {"node": node_name, "taken_at": stamp,
            "vector": version_vector(connection).to_json(),
            "tables": {t.name: [encode_row(t, dict(r)) for r in connection.execute(select(t)).mappings()]
                       for t in replicated_tables()}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return str(path)


def backup_dir(settings: dict) -> str:
    default = Path(settings.get("ezpyr.secret_key_file", "var/x")).parent / "backups"
    return settings.get("ezpyr.backup_dir") or str(default)


# -- the admin's choices ----------------------------------------------------------

@dataclass
class Plan:
    all: str | None = None                                  # "here" / "there" for every row
    tables: dict = field(default_factory=dict)              # table -> side
    rows: dict = field(default_factory=dict)                # table -> {id: side}

    def side(self, table: str, row_id: str) -> str | None:
        return self.rows.get(table, {}).get(row_id) or self.tables.get(table) or self.all

    @classmethod
    def from_form(cls, params) -> "Plan":
        plan = cls(all=params.get("all") or None)
        for key, value in params.items():
            if value not in SIDES:
                continue
            if key.startswith("table:"):
                plan.tables[key[6:]] = value
            elif key.startswith("row:"):
                _, table, row_id = key.split(":", 2)
                plan.rows.setdefault(table, {})[row_id] = value
        shown = params.get("shown")  # one side for every row the page showed
        if shown in SIDES:
            for item in (params.get("shown_rows") or "").split():
                table, _, row_id = item.partition(":")
                plan.rows.setdefault(table, {}).setdefault(row_id, shown)
        if plan.all not in (None, *SIDES):
            raise Invalid("Choose this node's or the other node's data.")
        return plan


@dataclass
class Decision:
    table: str
    id: str
    side: str
    keep: dict | None       # the row as it will be (None: deleted)
    lose: dict | None       # the version that is dropped


def decide(report: dict, plan: Plan) -> list[Decision]:
    """Every differing row of a verify report, with the side chosen for it.
    Raises Invalid naming the rows without a choice."""
    decisions, missing = [], 0
    for table in report["tables"]:
        for diff in table["differing"]:
            if not diff.get("id"):
                raise Invalid(f"{table['table']} has more differing rows than a page shows; "
                              "choose a side for the whole table.")
            side = plan.side(table["table"], diff["id"])
            if side not in SIDES:
                missing += 1
                continue
            keep, lose = (diff["here"], diff["there"]) if side == "here" else (diff["there"], diff["here"])
            decisions.append(Decision(table["table"], diff["id"], side, keep, lose))
    if missing:
        raise Invalid(f"Choose a side for every differing row: {missing} row"
                      f"{'s have' if missing != 1 else ' has'} no choice yet.")
    return decisions


def unique_clashes(connection: Connection, decisions: list[Decision]) -> list[str]:
    """Rows that would claim a name another kept row has (e.g. two servers
    named web1 made on each side during the split)."""
    problems = []
    tables = {t.name: t for t in replicated_tables()}
    by_table: dict[str, list[Decision]] = {}
    for d in decisions:
        by_table.setdefault(d.table, []).append(d)
    for name, items in by_table.items():
        table = tables[name]
        unique_cols = [c.name for c in table.columns if c.unique]
        changed = {d.id for d in items}
        for column in unique_cols:
            kept = {}
            for row in connection.execute(select(table.c.id, table.c[column])):
                if row.id not in changed:
                    kept.setdefault(str(row[1]).lower(), []).append(row.id)
            for d in items:
                if d.keep is not None:
                    kept.setdefault(str(d.keep[column]).lower(), []).append(d.id)
            for value, ids in kept.items():
                if len(set(ids)) > 1:
                    problems.append(f"{name}: {len(set(ids))} rows would be named {value!r} "
                                    f"({', '.join(sorted(set(ids)))}); keep only one of them")
    return problems


# -- applying on the master -------------------------------------------------------

def apply_decisions(connection: Connection, decisions: list[Decision], peer_vector: dict,
                    actor: str) -> int:
    """On the master, in the caller's transaction: make every decided row
    as chosen, take in the other node's streams, and record it all as one
    new change. Returns the change's seq."""
    tables = {t.name: t for t in replicated_tables()}
    order = {t.name: i for i, t in enumerate(replicated_tables())}
    changes = []
    upserts = sorted((d for d in decisions if d.keep is not None), key=lambda d: order[d.table])
    deletes = sorted((d for d in decisions if d.keep is None), key=lambda d: -order[d.table])
    try:
        with recording(connection):
            for d in deletes:
                connection.execute(delete(tables[d.table]).where(tables[d.table].c.id == d.id))
                changes.append({"table": d.table, "op": "delete", "pk": d.id, "row": None})
            for d in upserts:
                table = tables[d.table]
                connection.execute(upsert_statement(connection, table), [decode_row(table, d.keep)])
                changes.append({"table": d.table, "op": "upsert", "pk": d.id, "row": d.keep})
    except IntegrityError as error:
        raise Invalid(f"The choices break a rule of the data ({error.orig}); nothing was changed.") from None
    take_in(connection, peer_vector)
    return record_changes(connection, changes, actor)


def leave_split_brain(connection: Connection) -> None:
    connection.execute(update(ClusterPeer.__table__).values(
        split_brain_since=None, split_brain_detail="", applier_state="running"))


# -- the slave's side of the resync ------------------------------------------------

def resync_staging(settings: dict) -> Path:
    return Path(backup_dir(settings)) / "resync-staging.jsonl"


class Resync:
    """The other node, receiving the master's resolved copy. The chunks wait
    in a staging file; only ``finish`` touches the database, in one
    transaction, so a copy cut off half-way leaves this node as it was."""

    def __init__(self, dbsession, staging: str | Path):
        self.dbsession = dbsession
        self.staging = Path(staging)
        dbsession.info[REPLAYING] = True

    def begin(self) -> None:
        self.staging.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))

    def _started(self) -> None:
        if not self.staging.exists():
            raise Invalid("no copy has begun (resync/begin first)")

    def load(self, table: str, rows: list) -> int:
        self._started()
        with open(self.staging, "a") as fh:
            fh.write(json.dumps({"table": table, "rows": rows}, separators=(",", ":")) + "\n")
        return len(rows)

    def finish(self, vector: dict, counts: dict) -> None:
        """Replace the replicated data with the staged copy, in the caller's
        transaction; refused (nothing changed) when the copy is incomplete."""
        self._started()
        connection = self.dbsession.connection()
        clear_replicated(connection)
        with open(self.staging) as fh:
            for line in fh:
                chunk = json.loads(line)
                load_chunk(connection, Chunk(chunk["table"], chunk["rows"]))
        have = table_counts(connection)
        wrong = {t: (have.get(t), n) for t, n in counts.items() if have.get(t) != n}
        if wrong:
            raise Invalid("the copy is incomplete: " + ", ".join(
                f"{t}: {h} here, {n} sent" for t, (h, n) in sorted(wrong.items())))
        set_vector(connection, VersionVector.from_json(vector))
        leave_split_brain(connection)
        self.staging.unlink()


# -- the whole resolution, as a job on the master -------------------------------------

def losses(decisions: list[Decision]) -> list[dict]:
    """What the choices drop: for each row, the version not kept."""
    return [{"table": d.table, "id": d.id, "kept": d.side, "lost": d.lose}
            for d in decisions if d.lose is not None]


def _send_copy(engine, client, progress) -> dict:
    """Every replicated table to the other node, which applies it only once
    all of it arrived; returns the vector the copy was taken at."""
    client.call("POST", "/cluster/api/resync/begin", {})
    sequence_committed(engine)
    with engine.connect() as conn:
        vector, chunks = read_snapshot(conn)
        counts = table_counts(conn)
        total, done = sum(counts.values()), 0
        for chunk in chunks:
            client.call("POST", "/cluster/api/resync/chunk", {"table": chunk.table, "rows": chunk.rows})
            done += len(chunk.rows)
            progress(2, 4, f"copying the resolved data to the other node ({done} of {total} rows)")
        conn.rollback()
    client.call("POST", "/cluster/api/resync/finish", {"vector": vector.to_json(), "counts": counts})
    return vector


def resolve(engine, secret_box, settings, decisions: list[Decision], actor: str, progress=None) -> dict:
    """The job: ``decisions`` come checked from ``ClusterActions.resolve_plan``."""
    from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerTls, PeerUnreachable
    from ezpyr.node.models import NodeIdentity

    progress = progress or (lambda done, total, message=None: None)
    with engine.connect() as conn:
        node = conn.execute(select(NodeIdentity.__table__)).mappings().one()
        peer = conn.execute(select(ClusterPeer.__table__)).mappings().one()
    client = ClusterClient(peer["address"], node["id"], secret_box.decrypt(peer["secret_encrypted"]),
                           timeout=120, tls=PeerTls.from_settings(settings))
    progress(0, 4, "writing backups on both nodes")
    with engine.connect() as conn:
        here_backup = write_backup(conn, backup_dir(settings), node["name"])
    there_backup = client.call("POST", "/cluster/api/backup", {})["path"]
    progress(1, 4, "applying the choices here")
    peer_vector = VersionVector.from_json(client.call("GET", "/cluster/api/status").get("vector", {}))
    with engine.begin() as conn:
        seq = apply_decisions(conn, decisions, peer_vector, actor)
    wake_relay(node["id"])
    progress(2, 4, "copying the resolved data to the other node")
    try:
        vector = _send_copy(engine, client, progress)
    except (PeerUnreachable, PeerRefused) as error:
        raise Invalid(f"The choices are applied on this node (change {seq}), but copying them to the other "
                      f"node failed ({error}); the other node is unchanged and both stay in the split-brain. "
                      "Run Verify and Resolve again (keep this node's rows) once it answers.") from None
    with engine.begin() as conn:
        leave_split_brain(conn)
        conn.execute(update(ClusterPeer.__table__).values(
            peer_vector=vector.dumps(), updated_at=utcnow()))
    progress(4, 4, "done")
    return {"backups": {"here": here_backup, "there": there_backup}, "decided": len(decisions),
            "lost": losses(decisions), "seq": seq}
