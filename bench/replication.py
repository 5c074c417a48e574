"""Replication benchmark: prints its figures, asserts nothing.

    .venv/bin/python bench/replication.py                 # MariaDB + RabbitMQ, all three
    .venv/bin/python bench/replication.py --backend sqlite --backlog 20000 --verify-rows 100000

1. steady load: --rate changes/s for --seconds; lag from the master's
   commit to the slave's commit, p50/p99;
2. backlog: --backlog changes queued while the slave's applier is stopped,
   then started: changes applied per second until drained;
3. verify of --verify-rows rows in one table: seconds.

It runs the worker's own relay and applier (worker/relay.py,
worker/applier.py) in threads against two real databases and a real broker.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select  # noqa: E402

from ezpyr.database import make_engine, make_session_factory  # noqa: E402
import ezpyr.replication.capture  # noqa: E402,F401 - installs change capture
from ezpyr.meta import utcnow  # noqa: E402
from ezpyr.node.models import NodeIdentity  # noqa: E402
from ezpyr.replication.apply import version_vector  # noqa: E402
from ezpyr.replication.broker import changes_queue  # noqa: E402
from ezpyr.replication.models import OutboxEntry, VersionVectorEntry  # noqa: E402
from ezpyr.replication.rows import encode_row  # noqa: E402
from ezpyr.replication.schema import code_revision  # noqa: E402
from ezpyr.replication.verify import LocalPeer, verify  # noqa: E402
from ezpyr.users.models import UserGroup  # noqa: E402
from tests.backends import (  # noqa: E402
    RABBITMQ_URL, create_mariadb_database, delete_queues, drop_database,
)
from tests.conftest import migrate  # noqa: E402
from worker.applier import Applier  # noqa: E402
from worker.relay import Relay  # noqa: E402


class BenchNode:
    def __init__(self, backend: str, workdir: Path, role: str):
        if backend == "sqlite":
            self.url = f"sqlite:///{workdir / f'{role}-{uuid.uuid4().hex[:6]}.sqlite'}"
        else:
            self.url = create_mariadb_database("ezpyr_bench")
        migrate(self.url)
        self.engine = make_engine({"sqlalchemy.url": self.url})
        self.sessions = make_session_factory(self.engine)
        with self.sessions() as s:
            node = NodeIdentity(name=role, role=role, epoch=1)
            s.add(node)
            s.commit()
            self.id = node.id

    def close(self):
        self.engine.dispose()
        drop_database(self.url)


class Pump:
    """Relay (master) and applier (slave) threads, like the worker's."""

    def __init__(self, master, slave, broker):
        self.relay = Relay(master.engine, broker, slave.id, batch=1000)
        self.applier = Applier(slave.engine, broker, slave.id)
        self.lags: list[float] = []
        self.stop = threading.Event()
        self.apply_on = threading.Event()
        self.apply_on.set()
        self.threads = [threading.Thread(target=self._relay, daemon=True),
                        threading.Thread(target=self._apply, daemon=True)]
        for t in self.threads:
            t.start()

    def _relay(self):
        while not self.stop.is_set():
            if self.relay.run_once() == 0:
                time.sleep(0.002)

    def _apply(self):
        while not self.stop.is_set():
            if not self.apply_on.is_set():
                self.applier.close()
                self.apply_on.wait(0.1)
                continue
            self.applier.receive(timeout=0.02)
            report = self.applier.apply_pending()
            self.lags.extend(report.lags)
            if report.gap_from:
                raise RuntimeError(f"unexpected gap {report.gap_from}")

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)
        self.relay.close()
        self.applier.close()


def applied(slave, master_id) -> int:
    with slave.engine.connect() as conn:
        return version_vector(conn).get((master_id, 1), 0)


def wait_for(slave, master_id, seq, timeout=600):
    deadline = time.monotonic() + timeout
    while applied(slave, master_id) < seq:
        if time.monotonic() > deadline:
            raise RuntimeError(f"slave stuck at {applied(slave, master_id)} of {seq}")
        time.sleep(0.01)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def steady(master, slave, pump, rate, seconds, writers=4):
    """``writers`` threads, each committing at rate/writers per second, so
    that one slow commit does not lower the offered rate."""
    pump.lags.clear()
    counts = [0] * writers

    def write(index):
        interval = writers / rate
        start = time.monotonic() + index * interval / writers
        n = 0
        with master.sessions() as s:
            while time.monotonic() - start < seconds:
                s.add(UserGroup(name=f"steady-{uuid.uuid4().hex}"))
                s.commit()
                n += 1
                time.sleep(max(0.0, start + n * interval - time.monotonic()))
        counts[index] = n

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = sum(counts)
    with master.engine.connect() as conn:
        last = version_vector(conn)[(master.id, 1)]
    wait_for(slave, master.id, last)
    time.sleep(0.2)
    lags = [x * 1000 for x in pump.lags]
    print(f"steady load: {n} changes in {seconds} s ({n / seconds:.0f}/s); "
          f"lag p50 {pct(lags, 50):.1f} ms, p99 {pct(lags, 99):.1f} ms, max {max(lags):.1f} ms "
          f"({len(lags)} measured)")
    return {"changes": n, "lag_p50_ms": pct(lags, 50), "lag_p99_ms": pct(lags, 99)}


def backlog(master, slave, pump, count):
    pump.apply_on.clear()
    time.sleep(0.3)
    table = UserGroup.__table__
    with master.engine.begin() as conn:
        seq0 = version_vector(conn)[(master.id, 1)]
        rows, entries = [], []
        for i in range(count):
            row = {"id": str(uuid.uuid4()), "name": f"backlog-{i}", "description": "",
                   "created_at": utcnow()}
            rows.append(row)
            entries.append({"origin": master.id, "epoch": 1, "seq": seq0 + i + 1,
                            "changes": json.dumps([{"table": "user_groups", "op": "upsert",
                                                    "pk": row["id"], "row": encode_row(table, row)}]),
                            "actor": "bench", "schema_revision": code_revision(),
                            "created_at": utcnow()})
        for start in range(0, count, 5000):
            conn.execute(insert(table), rows[start:start + 5000])
            conn.execute(insert(OutboxEntry.__table__), entries[start:start + 5000])
        vv = VersionVectorEntry.__table__
        conn.execute(vv.update().where(vv.c.origin == master.id).values(seq=seq0 + count))
    t0 = time.monotonic()
    while True:
        with master.engine.connect() as conn:
            left = conn.execute(select(OutboxEntry.id).where(OutboxEntry.sent_at.is_(None)).limit(1)).first()
        if left is None:
            break
        time.sleep(0.05)
    published = time.monotonic() - t0
    print(f"backlog: {count} changes published to the broker in {published:.1f} s "
          f"({count / published:.0f}/s)")
    t0 = time.monotonic()
    pump.apply_on.set()
    wait_for(slave, master.id, seq0 + count)
    took = time.monotonic() - t0
    print(f"backlog: {count} changes applied in {took:.1f} s ({count / took:.0f} changes/s)")
    return {"backlog": count, "catch_up_per_s": count / took, "publish_per_s": count / published}


def verify_rows(master, slave, rows):
    table = UserGroup.__table__
    now = utcnow()
    for node in (master, slave):
        with node.engine.begin() as conn:
            conn.execute(table.delete())
            batch = []
            for i in range(rows):
                batch.append({"id": str(uuid.UUID(int=i + 1)), "name": f"v{i:08d}", "description": "",
                              "created_at": now})
                if len(batch) == 10000:
                    conn.execute(insert(table), batch)
                    batch = []
            if batch:
                conn.execute(insert(table), batch)
    t0 = time.monotonic()
    with master.engine.connect() as a, slave.engine.connect() as b:
        reports = verify(a, LocalPeer(b))
    took = time.monotonic() - t0
    clean = all(r.in_sync for r in reports)
    print(f"verify: {rows} rows in user_groups compared in {took:.2f} s ({'in sync' if clean else 'DIFFER'})")
    return {"verify_rows": rows, "verify_seconds": took}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["mariadb", "sqlite"], default="mariadb")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--verify-rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["steady", "backlog", "verify"])
    args = parser.parse_args()
    import tempfile
    workdir = Path(tempfile.mkdtemp(prefix="ezpyr-bench-"))
    broker = RABBITMQ_URL if args.backend == "mariadb" else f"sqla+sqlite:///{workdir / 'broker.sqlite'}"
    master = BenchNode(args.backend, workdir, "master")
    slave = BenchNode(args.backend, workdir, "slave")
    print(f"backend: {args.backend}, broker: {broker.split('@')[-1]}")
    figures = {}
    pump = Pump(master, slave, broker)
    try:
        if args.only in (None, "steady"):
            figures.update(steady(master, slave, pump, args.rate, args.seconds))
        if args.only in (None, "backlog"):
            figures.update(backlog(master, slave, pump, args.backlog))
        pump.close()
        if args.only in (None, "verify"):
            figures.update(verify_rows(master, slave, args.verify_rows))
    finally:
        pump.close()
        if args.backend == "mariadb":
            delete_queues(broker, [changes_queue(slave.id).name])
        master.close()
        slave.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
