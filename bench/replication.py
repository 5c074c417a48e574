"""Replication benchmark of the shipped product, beside MariaDB's own replication.

    .venv/bin/python bench/replication.py                       # full size (about 15-25 min)
    .venv/bin/python bench/replication.py --smoke               # 1-2 min: small sizes
    .venv/bin/python bench/replication.py --only a,c --anchors /tmp/ezpyr-bench-anchors --json out.json

Two real nodes on MariaDB + RabbitMQ, set up the way an operator does it:
``ezpyr-init`` from an ini this bench writes, ``ezpyr-grant-host``, ``ezpyr-init
--secondary``, ``pserve`` and ``ezpyr-worker`` for each node as processes, then
``ezpyr-cluster add`` through the cluster API. Every change is made through the
services the panel uses (ServerService + the activity log entry, in one
transaction per change, from writer processes with NodeEnv sessions, like
waitress threads of a panel), never written into the outbox by hand.

  a  lag at --rate changes/s offered for --seconds (open loop, --lag-threads writers):
     from just before the writing transaction starts to the row being visible in the
     slave's database (polled every --poll-ms); offered and achieved rate, p50/p99/max.
  b  the highest rate --max-writers concurrent writers sustain through the services for
     --max-seconds (closed loop), beside the same MariaDB committing the same rows with
     plain single-row INSERTs from as many threads (no ezpyr): achieved rates and ratio.
  c  catch-up: the slave's ezpyr-worker stopped (SIGTERM), --catchup changes made one per
     transaction (parallel writers), the master's worker publishes them, then the slave's
     ezpyr-worker is started: changes applied per second, from its start to the last one.
  d  Verify of --verify-rows rows through ``ezpyr-cluster verify``: the servers table is
     filled to that size with bulk SQL, identically on both nodes (no outbox entries, the
     version vectors stay equal); then --changed rows are changed on the slave's database
     and Verify must name exactly those.

--anchors DIR|FILE (results.json of the yardstick's anchors/run_all.sh from the same run)
adds each matching MariaDB figure and the ratio; bench/all.py runs both.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from profiling import Profiler  # noqa: E402
from benchlib import (  # noqa: E402
    Figures, Run, add_secondary, anchor_paths, compare, database_url, die_with_parent, load_anchors, log, make_cluster,
    mysql, pct, rounded, run_writers, scalar, server_fields, size_mismatches, start_all, verify_cli, wait_connected,
)


# -- a. lag ---------------------------------------------------------------------------------

def lag_poller(db: str, prefix: str, n: int, poll_s: float, ready, stop, q) -> None:
    """Polls the slave's database for the rows ``prefix00000000`` … in name order and
    records when each is first seen (time.time_ns). Runs in a process of its own."""
    die_with_parent()
    conn = mysql(db)
    seen = [0] * n
    low = 0
    polls = 0
    ready.set()
    grace = None
    end = f"{prefix}~"
    while low < n:
        t0 = time.perf_counter()
        with conn.cursor() as c:
            c.execute("SELECT name FROM servers WHERE name >= %s AND name < %s",
                      (f"{prefix}{low:08d}", end))
            rows = c.fetchall()
        now = time.time_ns()
        polls += 1
        for (name,) in rows:
            k = int(name[len(prefix):])
            if k < n and not seen[k]:
                seen[k] = now
        while low < n and seen[low]:
            low += 1
        if stop.is_set():
            grace = grace or time.monotonic() + 30
            if time.monotonic() > grace:
                break
        dt = time.perf_counter() - t0
        if dt < poll_s:
            time.sleep(poll_s - dt)
    conn.close()
    q.put({"seen": seen, "polls": polls})


def measure_lag(figs, primary, secondary, args, anchors):
    n = int(args.rate * args.seconds)
    prefix = "bench-a-"
    print(f"\n[a] lag: {args.rate:g} changes/s offered for {args.seconds:g} s ({n} changes, "
          f"{args.lag_threads} writer threads in 1 process, via {args.via}), slave polled every {args.poll_ms:g} ms",
          flush=True)
    ctx = mp.get_context("spawn")
    ready, stop, q = ctx.Event(), ctx.Event(), ctx.Queue()
    poller = ctx.Process(target=lag_poller, args=(secondary.db, prefix, n, args.poll_ms / 1000, ready, stop, q),
                         daemon=True)
    poller.start()
    try:
        ready.wait(30)
        prof = args.profiler

        def profile(pids):
            prof.start("a-writers-wallclock", pids[0], idle=True)
            prof.start("a-master-worker", primary.worker.pid)
            prof.start("a-slave-worker", secondary.worker.pid)

        records, start_wall = run_writers(primary, range(n), procs=1, threads=args.lag_threads, mode="paced",
                                          prefix=prefix, name_check=args.name_check, rate=args.rate,
                                          on_start=profile, via=args.via)
        prof.stop()
        stop.set()
        result = q.get(timeout=120)
    finally:
        stop.set()
        poller.join(10)
        if poller.is_alive():
            poller.terminate()
    seen = result["seen"]
    ok = [r for r in records if r[4] is None]
    errors = [r for r in records if r[4] is not None]
    last_end = max(r[2] for r in ok) / 1e9 if ok else start_wall
    achieved = len(ok) / max(last_end - start_wall, 1e-9)
    lag = [(seen[k] - t0) / 1e6 for k, t0, t1, _, _ in ok if seen[k]]
    lag_ack = [(seen[k] - t1) / 1e6 for k, t0, t1, _, _ in ok if seen[k]]
    commit = [(t1 - t0) / 1e6 for k, t0, t1, _, _ in ok]
    slip = [(t0 / 1e9 - sched) * 1000 for k, t0, t1, sched, _ in ok]
    missing = len([1 for k, *_ in ok if not seen[k]])
    figs.figure("lag_offered", "a. offered rate", float(args.rate), "changes/s")
    figs.figure("lag_achieved", "a. achieved rate (committed / time from first scheduled start to last commit)",
                round(achieved, 1), "changes/s", committed=len(ok), errors=len(errors),
                percent_of_offered=round(100 * achieved / args.rate, 1))
    if errors:
        figs.note(f"a. {len(errors)} writes failed; first: {errors[0][4]}")
    figs.figure("lag_seen", "a. changes seen on the slave", len(lag), f"of {len(ok)}", missing=missing)
    figs.figure("lag_p50", "a. lag p50 (before the transaction starts -> visible on the slave)",
                rounded(pct(lag, 50)), "ms")
    figs.figure("lag_p99", "a. lag p99 (before the transaction starts -> visible on the slave)",
                rounded(pct(lag, 99)), "ms")
    figs.figure("lag_max", "a. lag max", rounded(max(lag) if lag else None), "ms")
    figs.figure("lag_ack_p50", "a. lag after the master's commit returned, p50", rounded(pct(lag_ack, 50)), "ms")
    figs.figure("lag_ack_p99", "a. lag after the master's commit returned, p99", rounded(pct(lag_ack, 99)), "ms")
    figs.figure("lag_commit_p50", "a. master write (service + commit, or POST until 303) p50", rounded(pct(commit, 50)), "ms")
    figs.figure("lag_commit_p99", "a. master write (service + commit, or POST until 303) p99", rounded(pct(commit, 99)), "ms")
    figs.figure("lag_slip_p99", "a. writers' start behind the open-loop schedule, p99", rounded(pct(slip, 99)), "ms")
    figs.data["settings"]["a"] = {"via": args.via, "rate": args.rate, "seconds": args.seconds, "changes": n,
                                  "writer_threads": args.lag_threads, "poll_ms": args.poll_ms}
    compare(figs, anchors, "lag_achieved", "lag_rate", lower_is_better=False, target="≥0.99 of offered",
            label="a. achieved rate at the offered rate", met=achieved >= 0.99 * args.rate)
    compare(figs, anchors, "lag_p50", "lag_p50", lower_is_better=True, target="", label="a. lag p50")
    reached = achieved >= 0.99 * args.rate
    if not reached:
        figs.note(f"a. only {100 * achieved / args.rate:.0f} % of the offered rate was achieved: the lag figures are "
                  "those of a writer falling behind its schedule, not of the offered rate, and the lag target "
                  "(which presumes ≥ 99 % achieved) counts as not met")
    p99 = figs.data["figures"]["lag_p99"]["value"]
    anchor_p99 = anchors.get("lag_p99", {}).get("value")
    compare(figs, anchors, "lag_p99", "lag_p99", lower_is_better=True, target="≤2", label="a. lag p99",
            met=None if not anchor_p99 or p99 is None else (reached and p99 <= 2 * anchor_p99))


# -- b. highest sustained rate, ezpyr vs plain INSERTs ----------------------------------------

SERVER_COLUMNS = ("id", "name", "host", "port", "remote_user", "auth_method", "password_encrypted",
                  "group_id", "description", "created_at", "updated_at")


def flat_out(threads: int, seconds: float, connect, write) -> tuple[int, float, list]:
    """``threads`` threads, each with ``connect()``'s connection (or session), calling ``write(conn, k, now)``
    for row k after row k (shared counter) as fast as they can for ``seconds``:
    (rows, elapsed, latencies ms)."""
    import datetime as dt
    counter = iter(range(10 ** 9))
    lock = threading.Lock()
    lat: list[list] = [[] for _ in range(threads)]
    start = time.time() + 1.0
    deadline = start + seconds
    ends = [0.0] * threads

    def work(i):
        conn = connect()
        while time.time() < start:
            time.sleep(0.001)
        while True:
            with lock:
                k = next(counter)
            if time.time() >= deadline:
                break
            now = dt.datetime.utcnow()
            t0 = time.perf_counter()
            write(conn, k, now)
            lat[i].append((time.perf_counter() - t0) * 1000)
        ends[i] = time.time()
        conn.close()

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rows = sum(len(x) for x in lat)
    return rows, max(ends) - start, [v for x in lat for v in x]


def plain_inserts(db: str, threads: int, seconds: float) -> tuple[int, float, list]:
    """Single-row autocommit INSERTs (PyMySQL, no ORM) of the same rows ezpyr stores."""
    sql = (f"INSERT INTO servers ({', '.join(SERVER_COLUMNS)}) VALUES ({', '.join(['%s'] * len(SERVER_COLUMNS))})")

    def write(conn, k, now):
        f = server_fields(k)
        with conn.cursor() as c:
            c.execute(sql, (str(uuid.uuid4()), f"plain-{k:08d}", f["host"], f["port"], f["remote_user"], "key",
                            None, None, f["description"], now, now))

    return flat_out(threads, seconds, lambda: mysql(db), write)


def orm_inserts(db: str, threads: int, seconds: float) -> tuple[int, float, list]:
    """The fixed stack's floor: the same rows through SQLAlchemy's ORM on PyMySQL, one
    transaction per row as a service commits one, without anything ezpyr adds
    (no name check, activity entry, outbox entry or capture)."""
    from sqlalchemy import MetaData, Table, create_engine
    from sqlalchemy.orm import Session, registry

    engine = create_engine(database_url(db), pool_size=threads, max_overflow=0)
    table = Table("servers", MetaData(), autoload_with=engine)

    class Row:
        def __init__(self, **values):
            for key, value in values.items():
                setattr(self, key, value)

    registry().map_imperatively(Row, table)

    def write(session, k, now):
        f = server_fields(k)
        with session.begin():
            session.add(Row(id=str(uuid.uuid4()), name=f"orm-{k:08d}", host=f["host"], port=f["port"],
                            remote_user=f["remote_user"], auth_method="key", password_encrypted=None, group_id=None,
                            description=f["description"], created_at=now, updated_at=now))
        session.expunge_all()  # as a session per unit of work would start empty

    try:
        return flat_out(threads, seconds, lambda: Session(engine), write)
    finally:
        engine.dispose()


def measure_max_rate(figs, primary, secondary, args, run):
    w = args.max_writers
    procs = args.max_procs
    threads = max(1, w // procs)
    print(f"\n[b] highest sustained rate: {procs * threads} concurrent writers ({procs} process(es) x {threads} "
          f"threads, via {args.via}) for {args.max_seconds:g} s, beside plain INSERTs from {w} threads", flush=True)
    conn = mysql()
    plain_db = run.database("plain")
    with conn.cursor() as c:
        c.execute(f"CREATE DATABASE `{plain_db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        c.execute(f"CREATE TABLE `{plain_db}`.servers LIKE `{primary.db}`.servers")  # same columns, indexes (no FKs)
    conn.close()
    rows, elapsed, lat = plain_inserts(plain_db, w, args.max_seconds)
    plain_rate = rows / elapsed
    figs.figure("max_plain_rate", f"b. plain single-row INSERT commits, {w} threads, same MariaDB, no ezpyr",
                round(plain_rate, 1), "rows/s", rows=rows, seconds=round(elapsed, 2),
                latency_p50_ms=rounded(pct(lat, 50)), latency_p99_ms=rounded(pct(lat, 99)))
    rows, elapsed, lat = orm_inserts(plain_db, w, args.max_seconds)
    orm_rate = rows / elapsed
    figs.figure("max_orm_rate", f"b. the stack's floor: the same rows through SQLAlchemy's ORM, a transaction each, "
                f"{w} threads, no ezpyr", round(orm_rate, 1), "rows/s", rows=rows, seconds=round(elapsed, 2),
                latency_p50_ms=rounded(pct(lat, 50)), latency_p99_ms=rounded(pct(lat, 99)),
                share_of_plain=rounded(orm_rate / plain_rate if plain_rate else None))
    before = scalar_db(primary.db, "SELECT COUNT(*) FROM servers")
    with primary.connect() as pc:
        seq0 = primary.vector_seq(pc, primary.node_id)
    prof = args.profiler

    def profile(pids):
        prof.start("b-writers-wallclock", pids[0], idle=True)
        prof.start("b-master-worker", primary.worker.pid)

    records, start_wall = run_writers(primary, range(10 ** 8), procs=procs, threads=threads, mode="flat out",
                                      prefix="bench-b-", name_check=args.name_check, seconds=args.max_seconds,
                                      on_start=profile, via=args.via)
    prof.stop()
    ok = [r for r in records if r[4] is None]
    errors = [r for r in records if r[4] is not None]
    end = max(r[2] for r in ok) / 1e9 if ok else start_wall + args.max_seconds
    rate = len(ok) / (end - start_wall)
    t_end = time.monotonic()
    lat = [(r[2] - r[1]) / 1e6 for r in ok]
    figs.note(f"b. offered: closed loop on both sides (each of the {w} writers starts its next change when its "
              "last one has committed), so the achieved rate is the highest the writers sustain")
    figs.figure("max_ezpyr_rate", f"b. ezpyr changes committed ({'the panel over HTTP' if args.via == 'http' else 'the services'}"
                f"), {procs * threads} writers (closed loop)", round(rate, 1), "changes/s", committed=len(ok), errors=len(errors),
                seconds=round(end - start_wall, 2), servers_before=before,
                latency_p50_ms=rounded(pct(lat, 50)), latency_p99_ms=rounded(pct(lat, 99)))
    if errors:
        figs.note(f"b. {len(errors)} writes failed; first: {errors[0][4]}")
    figs.figure("max_ratio", "b. ezpyr / plain INSERT rate", rounded(rate / plain_rate if plain_rate else None),
                "x")
    figs.figure("max_orm_ratio", "b. ezpyr / the stack's floor (ORM, no ezpyr)",
                rounded(rate / orm_rate if orm_rate else None), "x")
    # the slave was applying all along: how far behind was it when the writers stopped?
    with primary.connect() as pc:
        target = primary.vector_seq(pc, primary.node_id)
    behind_s = wait_applied(secondary, primary.node_id, target, timeout=args.timeout)
    figs.figure("max_slave_tail", "b. slave caught up this long after the writers stopped",
                rounded(time.monotonic() - t_end if behind_s is not None else None, 2), "s",
                changes=target - seq0)
    figs.data["settings"]["b"] = {"via": args.via, "writers": procs * threads, "processes": procs, "threads": threads,
                                  "seconds": args.max_seconds, "name_check": args.name_check}
    row = {"label": f"b. sustained rate, {w} writers (plain INSERT vs ezpyr {'panel (HTTP)' if args.via == 'http' else 'services'})",
           "ezpyr": round(rate, 1), "mariadb": round(plain_rate, 1), "unit": "changes/s",
           "ratio": rounded(rate / plain_rate if plain_rate else None), "target": "≥0.5",
           "met": (rate / plain_rate >= 0.5) if plain_rate else None, "lower_is_better": False,
           "mariadb_key": "plain INSERTs measured by this bench (same MariaDB, same run)"}
    figs.data.setdefault("compare", []).append(row)
    print(f"  COMPARE {row['label']}: MariaDB {row['mariadb']} | ezpyr {row['ezpyr']} | ratio {row['ratio']} "
          f"| target ≥0.5 {'met' if row['met'] else 'NOT met'}", flush=True)


def scalar_db(db, sql, args=None):
    conn = mysql(db)
    try:
        return scalar(conn, sql, args)
    finally:
        conn.close()


def wait_applied(node, origin: str, seq: int, timeout: float, poll: float = 0.02):
    """Seconds until ``node``'s version vector holds ``origin``'s stream up to ``seq``."""
    conn = node.connect()
    t0 = time.monotonic()
    try:
        while True:
            if node.vector_seq(conn, origin) >= seq:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                return None
            node.check_alive()
            time.sleep(poll)
    finally:
        conn.close()


# -- c. catch-up ------------------------------------------------------------------------------

def unsent(node) -> int | None:
    try:
        return int(scalar_db(node.db, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"))
    except Exception:  # noqa: BLE001 - the outbox changed shape: use what the status says
        return node.status().get("backlog_unsent")


def measure_catchup(figs, primary, secondary, args, anchors):
    n = args.catchup
    print(f"\n[c] catch-up: slave's ezpyr-worker stopped, {n} changes one per transaction "
          f"({args.catchup_procs} processes x {args.catchup_threads} threads), then the worker started", flush=True)
    with primary.connect() as pc:
        seq0 = primary.vector_seq(pc, primary.node_id)
    if wait_applied(secondary, primary.node_id, seq0, timeout=args.timeout) is None:
        raise RuntimeError("the slave did not catch up before the catch-up measurement")
    secondary.stop_worker()
    t = time.monotonic()
    shown = [t]

    def progress():
        now = time.monotonic()
        if now - shown[0] < 15:
            return
        shown[0] = now
        with primary.connect() as pc:
            done = primary.vector_seq(pc, primary.node_id) - seq0
        rate = done / max(now - t - 3, 1e-9)
        log(f"c. backlog: {done:,} of {n:,} changes written ({rate:.0f}/s; "
            f"about {(n - done) / rate / 60 if rate else float('inf'):.1f} min to go)")

    records, start_wall = run_writers(primary, range(n), procs=args.catchup_procs, threads=args.catchup_threads,
                                      mode="flat out", prefix="bench-c-", name_check=args.catchup_name_check,
                                      on_wait=progress, via=args.catchup_via)
    ok = [r for r in records if r[4] is None]
    errors = [r for r in records if r[4] is not None]
    end = max(r[2] for r in ok) / 1e9
    figs.figure("catchup_write_rate", "c. backlog written through the services (slave's worker stopped)",
                round(len(ok) / (end - start_wall), 1), "changes/s", committed=len(ok), errors=len(errors),
                seconds=round(end - start_wall, 1), name_check=args.catchup_name_check)
    if errors:
        figs.note(f"c. {len(errors)} writes failed; first: {errors[0][4]}")
    with primary.connect() as pc:
        seq1 = primary.vector_seq(pc, primary.node_id)
    # like the anchor (IO thread has everything before START SLAVE SQL_THREAD): wait until
    # the master's worker has published the whole backlog to the broker
    t_pub = time.monotonic()
    left = None
    while time.monotonic() - t_pub < args.timeout:
        left = unsent(primary)
        if left == 0:
            break
        primary.check_alive()
        time.sleep(0.2)
    figs.figure("catchup_published_after", "c. backlog all published by the master's worker, after the writes ended",
                round(time.monotonic() - t_pub, 2), "s", unsent_left=left)
    if left:
        figs.note(f"c. {left} outbox entries were still unsent after {args.timeout:g} s; the slave's worker "
                  "was started anyway (the figure then includes publishing)")
    changes = seq1 - seq0
    t_spawn = secondary.start_worker()
    conn = secondary.connect()
    first_t = first_seq = None
    done_t = None
    try:
        while time.monotonic() - t_spawn < args.timeout:
            s = secondary.vector_seq(conn, primary.node_id)
            now = time.monotonic()
            if first_t is None and s > seq0:
                first_t, first_seq = now, s
                args.profiler.start("c-slave-worker-catching-up", secondary.worker.pid)
            if s >= seq1:
                done_t = now
                break
            secondary.check_alive()
            time.sleep(0.005)
        rows = scalar(conn, "SELECT COUNT(*) FROM servers WHERE name LIKE 'bench-c-%'")
    finally:
        conn.close()
        args.profiler.stop()
    if done_t is None:
        figs.figure("catchup_rate", "c. catch-up apply rate", None, "changes/s")
        figs.note(f"c. the slave did not catch up within {args.timeout:g} s")
    else:
        figs.figure("catchup_rate", "c. catch-up: changes applied per second, from the worker's start to the last",
                    round(changes / (done_t - t_spawn), 1), "changes/s", changes=changes,
                    seconds=round(done_t - t_spawn, 2), rows_on_slave=rows, rows_committed=len(ok))
        figs.figure("catchup_rate_running", "c. the same, from the first applied change (worker start-up left out)",
                    round((seq1 - first_seq) / max(done_t - first_t, 1e-9), 1), "changes/s",
                    startup_s=round(first_t - t_spawn, 2))
        if rows != len(ok):
            figs.note(f"c. the slave holds {rows} of the {len(ok)} rows committed on the master")
    figs.data["settings"]["c"] = {"via": args.catchup_via, "changes": n, "processes": args.catchup_procs, "threads": args.catchup_threads,
                                  "name_check": args.catchup_name_check}
    compare(figs, anchors, "catchup_rate", "catchup_single_apply_rate", lower_is_better=False, target="≥2",
            label="c. catch-up, one change per transaction")


# -- d. verify --------------------------------------------------------------------------------

BULK_SQL = """INSERT INTO `{db}`.servers (id, name, host, port, remote_user, auth_method, password_encrypted,
  group_id, description, created_at, updated_at)
SELECT LOWER(CONCAT(LEFT(h, 8), '-', SUBSTR(h, 9, 4), '-4', SUBSTR(h, 14, 3), '-',
                    SUBSTR('89ab', 1 + (seq % 4), 1), SUBSTR(h, 18, 3), '-', SUBSTR(h, 21, 12))),
       CONCAT('bulk-', LPAD(seq, 8, '0')),
       CONCAT('10.', (seq >> 16) & 255, '.', (seq >> 8) & 255, '.', seq & 255),
       22, IF(seq % 4, 'root', 'deploy'), 'key', NULL, NULL,
       CONCAT('Production jump target in rack ', seq % 97, '; owned by team ', seq % 13,
              '; patched monthly; access via bastion only; notes: ', LEFT(h, 13)),
       UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
FROM (SELECT seq, MD5(CONCAT(seq, '-', RAND())) AS h FROM seq_{lo}_to_{hi}) AS t"""


def measure_verify(figs, primary, secondary, args, anchors):
    print(f"\n[d] Verify through `ezpyr-cluster verify` of {args.verify_rows:,} rows in servers", flush=True)
    with primary.connect() as pc:
        seq = primary.vector_seq(pc, primary.node_id)
    if wait_applied(secondary, primary.node_id, seq, timeout=args.timeout) is None:
        raise RuntimeError("the slave did not catch up before the Verify measurement")
    have = scalar_db(primary.db, "SELECT COUNT(*) FROM servers")
    bulk = max(0, args.verify_rows - have)
    t = time.monotonic()
    conn = mysql(primary.db)  # seq_1_to_N (MariaDB's SEQUENCE engine) needs a current database
    with conn.cursor() as c:
        for lo in range(1, bulk + 1, 100_000):
            hi = min(bulk, lo + 99_999)
            c.execute("BEGIN")
            c.execute(BULK_SQL.format(db=primary.db, lo=lo, hi=hi))
            c.execute("COMMIT")
        # the same rows, byte for byte, on the slave
        for lo in range(1, bulk + 1, 100_000):
            hi = min(bulk, lo + 99_999)
            c.execute("BEGIN")
            c.execute(f"INSERT INTO `{secondary.db}`.servers SELECT * FROM `{primary.db}`.servers "
                      f"WHERE name BETWEEN %s AND %s", (f"bulk-{lo:08d}", f"bulk-{hi:08d}"))
            c.execute("COMMIT")
    conn.close()
    rows_p = scalar_db(primary.db, "SELECT COUNT(*) FROM servers")
    rows_s = scalar_db(secondary.db, "SELECT COUNT(*) FROM servers")
    figs.note(f"d. bulk-loaded {bulk:,} servers rows with INSERT … SELECT (not through ezpyr: no outbox "
              f"entries, version vectors untouched and equal) identically into both nodes' databases in "
              f"{time.monotonic() - t:.1f} s; servers now {rows_p:,} rows on the master, {rows_s:,} on the slave; "
              f"the other {have:,} rows came through replication in a-c")
    took, code, out = verify_cli(primary, timeout=args.timeout)
    clean = bool(out.get("in_sync"))
    total_rows = sum(t["rows_here"] for t in out.get("tables", []))
    figs.figure("verify_clean_s", f"d. `ezpyr-cluster verify` wall time, {rows_p:,} servers rows, nodes identical",
                round(took, 2) if "error" not in out else None, "s", exit_code=code, in_sync=clean,
                rows_compared=total_rows, error=out.get("error"))
    if "error" in out:
        figs.note(f"d. Verify failed: {out['error']}")
    elif not clean:
        figs.note("d. Verify said the identical nodes differ: " + json.dumps(
            [t for t in out["tables"] if not t["in_sync"]])[:1000])
    # change rows directly in the slave's database (as the anchor changes the replica's)
    conn = secondary.connect()
    with conn.cursor() as c:
        c.execute("SELECT id FROM servers")
        ids = [r[0] for r in c.fetchall()]
        changed = random.Random(42).sample(ids, min(args.changed, len(ids)))
        del ids
        for k, rid in enumerate(changed):
            c.execute("UPDATE servers SET description = CONCAT(description, ' [drift]'), port = port + %s "
                      "WHERE id = %s", (k + 1, rid))
    conn.close()
    took2, code2, out2 = verify_cli(primary, timeout=args.timeout)
    named = {d["id"] for t in out2.get("tables", []) for d in t.get("differing", []) if d.get("id")}
    other_tables = [t["table"] for t in out2.get("tables", []) if not t["in_sync"] and t["table"] != "servers"]
    exact = named == set(changed) and not other_tables
    figs.figure("verify_drift_s", f"d. `ezpyr-cluster verify` wall time after {len(changed)} rows changed on the slave",
                round(took2, 2) if "error" not in out2 else None, "s", exit_code=code2, error=out2.get("error"))
    figs.figure("verify_drift_named", "d. rows Verify names as differing", len(named), f"(changed: {len(changed)})",
                exactly_the_changed=exact, changed_found=len(named & set(changed)),
                others=len(named - set(changed)), other_tables=other_tables)
    if "error" in out2:
        figs.note(f"d. Verify after the change failed: {out2['error']}")
    figs.data["settings"]["d"] = {"verify_rows": args.verify_rows, "bulk_loaded": bulk, "changed": len(changed)}
    ptsync = anchors.get("ptsync_rows", {})
    row = {"label": f"d. rows named as differing after {len(changed)} were changed on the slave "
                    "(MariaDB: pt-table-sync --print)",
           "ezpyr": len(named), "mariadb": ptsync.get("value"), "unit": "rows", "ratio": None,
           "target": f"exactly the {len(changed)}", "met": exact, "lower_is_better": None,
           "mariadb_key": "ptsync_rows", "mariadb_changed_found": ptsync.get("changed_rows_found")}
    figs.data.setdefault("compare", []).append(row)
    print(f"  COMPARE {row['label']}: MariaDB {row['mariadb']} (of them changed: {row['mariadb_changed_found']}) | "
          f"ezpyr {len(named)} (exactly the changed: {exact})", flush=True)
    compare(figs, anchors, "verify_clean_s", "ptcs_clean_time", lower_is_better=True, target="≤1",
            label="d. Verify, identical (vs pt-table-checksum, default 128M buffer pool)")
    compare(figs, anchors, "verify_drift_s", "ptcs_drift_time", lower_is_better=True, target="≤1",
            label=f"d. Verify naming the {len(changed)} changed rows (vs pt-table-checksum)")
    if "ptcs_drift_time" in anchors and "ptsync_time" in anchors:
        anchors = dict(anchors, ptcs_plus_ptsync={"value": round(anchors["ptcs_drift_time"]["value"]
                                                                 + anchors["ptsync_time"]["value"], 3)})
        compare(figs, anchors, "verify_drift_s", "ptcs_plus_ptsync", lower_is_better=True, target="",
                label="d. Verify naming the changed rows (vs pt-table-checksum + pt-table-sync --print; informative)")
    if "ptcs_clean_time@buffer pool 1G" in anchors:
        compare(figs, anchors, "verify_clean_s", "ptcs_clean_time@buffer pool 1G", lower_is_better=True,
                target="", label="d. Verify, identical (vs pt-table-checksum, 1G pool; informative)")


# -- main -------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="a,b,c,d", help="which measurements (default a,b,c,d)")
    p.add_argument("--smoke", action="store_true",
                   help="small sizes (bench/all.py --smoke runs the anchors at the same): --seconds 5 --max-seconds 5 --catchup 2000 "
                        "--verify-rows 50000")
    p.add_argument("--rate", type=float, default=200, help="a: changes/s offered (200)")
    p.add_argument("--seconds", type=float, default=30, help="a: seconds of steady load (30, as the anchor)")
    p.add_argument("--lag-threads", type=int, default=8,
                   help="a: writer threads in one process (8, as a production panel's waitress threads)")
    p.add_argument("--poll-ms", type=float, default=1.0, help="a: slave poll interval (1 ms, as the anchor)")
    p.add_argument("--max-writers", type=int, default=8, help="b: concurrent writers (8)")
    p.add_argument("--max-procs", type=int, default=1,
                   help="b: writer processes the writers are spread over (1: one panel-like process)")
    p.add_argument("--max-seconds", type=float, default=30, help="b: seconds per side (30)")
    p.add_argument("--name-check", choices=["panel", "indexed"], default="panel",
                   help="a, b: the server-name check as the panel does it (ServerLookup.name_owner: on MariaDB "
                        "a seek of the case-insensitive unique index) or the bench's own exact-name lookup "
                        "(default panel)")
    p.add_argument("--via", choices=["services", "http"], default="services",
                   help="a, b: how changes are made: ServerService in a NodeEnv session per change, as the panel's "
                        "view calls it (default), or the panel's New server form over HTTP to pserve (signed in "
                        "as the admin; the panel's waitress threads then bound the concurrency)")
    p.add_argument("--catchup-via", choices=["services", "http"], default="services", help="c: see --via")
    p.add_argument("--catchup", type=int, default=100_000, help="c: backlog of changes (100,000, as the anchor)")
    p.add_argument("--catchup-procs", type=int, default=4, help="c: writer processes (4)")
    p.add_argument("--catchup-threads", type=int, default=2, help="c: threads per writer process (2)")
    p.add_argument("--catchup-name-check", choices=["panel", "indexed"], default="panel",
                   help="c: see --name-check (default panel)")
    p.add_argument("--verify-rows", type=int, default=1_000_000, help="d: servers rows (1,000,000, as the anchor)")
    p.add_argument("--changed", type=int, default=10, help="d: rows changed on the slave (10)")
    p.add_argument("--timeout", type=float, default=1800, help="longest wait for any one step (s)")
    p.add_argument("--anchors", help="anchor results: run_all.sh's $BASE folder or a results json")
    p.add_argument("--json", help="also write every figure to this file ('-' for stdout)")
    p.add_argument("--keep", action="store_true", help="keep the node folders (logs, inis) until the next bench run; databases are dropped")
    p.add_argument("--profile", metavar="DIR",
                   help="sample the writers and workers with py-spy during a, b and c's catch-up: raw stacks "
                        "and a summary per process in DIR")
    args = p.parse_args(argv)
    args.profiler = Profiler(args.profile)
    if args.smoke:
        defaults = {"seconds": 30, "max_seconds": 30, "catchup": 100_000, "verify_rows": 1_000_000}
        small = {"seconds": 5, "max_seconds": 5, "catchup": 2000, "verify_rows": 50_000}
        for k, v in small.items():
            if getattr(args, k) == defaults[k]:
                setattr(args, k, v)
    only = set(args.only.split(","))
    anchors = load_anchors(anchor_paths(args.anchors))
    figs = Figures("replication")
    figs.data["command"] = " ".join([sys.executable, *sys.argv])
    conn = mysql()
    with conn.cursor() as c:
        c.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'innodb_buffer_pool_size', "
                  "'innodb_flush_log_at_trx_commit', 'sync_binlog', 'log_bin')")
        figs.data["settings"]["mariadb"] = dict(c.fetchall())
    conn.close()
    print(f"ezpyr's MariaDB: {figs.data['settings']['mariadb']}", flush=True)
    if not anchors:
        figs.note("no anchor figures given (--anchors): no ratios")
    for warning in size_mismatches(anchors, catchup=args.catchup if "c" in only else None,
                                   verify_rows=args.verify_rows if "d" in only else None):
        figs.note("SIZE MISMATCH: " + warning)
    with Run(keep=args.keep) as run:
        t = time.monotonic()
        primary, secondary = make_cluster(run)
        start_all(primary, secondary)
        took, added = add_secondary(primary, secondary)
        wait_connected(primary, secondary)
        log(f"cluster up in {time.monotonic() - t:.1f} s (Add {took:.1f} s): master {primary.address} "
            f"({primary.db}), slave {secondary.address} ({secondary.db}), broker {run.broker_url.split('@')[-1]}")
        try:
            if "a" in only:
                measure_lag(figs, primary, secondary, args, anchors)
            if "b" in only:
                measure_max_rate(figs, primary, secondary, args, run)
            if "c" in only:
                measure_catchup(figs, primary, secondary, args, anchors)
            if "d" in only:
                measure_verify(figs, primary, secondary, args, anchors)
        except BaseException:
            for node in (primary, secondary):
                for name in ("worker.log", "panel.log"):
                    log(f"--- {node.name} {name} (tail)\n{node.tail(name, 1500)}")
            raise
    if args.json:
        text = json.dumps(figs.data, indent=1, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
