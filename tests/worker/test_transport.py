"""Relay and applier over a real broker: RabbitMQ beside MariaDB, the
server-less SQLAlchemy transport beside SQLite."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from ezpyr.replication.broker import changes_queue
from ezpyr.replication.messages import FixedKeys
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.outbox import resend_from, unsent_count
from ezpyr.users.models import UserGroup
from tests.backends import broker_url, delete_queues
from tests.replication.test_capture_apply import nodes  # noqa: F401 - fixture
from worker.applier import Applier
from worker.relay import Relay


CLUSTER_SECRET = "the-cluster-secret-of-these-tests"


@pytest.fixture
def link(nodes, backend, tmp_path):
    master, slave = nodes
    url = broker_url(backend, tmp_path)
    relay = Relay(master.engine, url, master.id, slave.id, FixedKeys(CLUSTER_SECRET))
    applier = Applier(slave.engine, url, slave.id, FixedKeys(CLUSTER_SECRET), peer_id=master.id)
    yield master, slave, relay, applier
    relay.close()
    applier.close()
    delete_queues(url, [changes_queue(slave.id).name])


def pump(relay, applier, rounds=50):
    """Relay and apply until two rounds in a row move nothing."""
    reports, idle = [], 0
    for _ in range(rounds):
        sent = relay.run_once()
        applier.receive(timeout=0.05)
        report = applier.apply_pending()
        if report.applied or report.duplicates or report.gap_from:
            reports.append(report)
        idle = 0 if (sent or report.applied or report.duplicates or report.gap_from) else idle + 1
        if idle >= 3:
            break
    return reports


def add_groups(master, names):
    with master.sessions() as s:
        for name in names:
            s.add(UserGroup(name=name))
            s.commit()


def test_changes_travel_through_the_broker(link):
    master, slave, relay, applier = link
    add_groups(master, [f"g{i}" for i in range(30)])
    reports = pump(relay, applier)
    assert sum(r.applied for r in reports) == 30
    assert slave.tables() == master.tables()
    with master.engine.connect() as conn:
        assert unsent_count(conn) == 0


def test_a_resent_stream_is_applied_once(link):
    master, slave, relay, applier = link
    add_groups(master, ["a", "b", "c"])
    pump(relay, applier)
    with master.engine.begin() as conn:
        assert resend_from(conn, master.id, 1, 1) == 3
    reports = pump(relay, applier)
    assert sum(r.duplicates for r in reports) == 3 and sum(r.applied for r in reports) == 0
    assert slave.tables() == master.tables()


def test_a_lost_message_is_detected_and_filled_by_a_resend(link):
    master, slave, relay, applier = link
    add_groups(master, ["a", "b", "c", "d"])
    table = OutboxEntry.__table__
    master.outbox()  # numbered, as the relay would
    with master.engine.begin() as conn:  # seq 2 "lost": never published
        conn.execute(update(table).where(table.c.seq == 2).values(sent_at=table.c.created_at))
    reports = pump(relay, applier)
    gaps = [r.gap_from for r in reports if r.gap_from]
    assert gaps and gaps[0] == (master.id, 1, 2)
    with slave.sessions() as s:
        assert sorted(s.scalars(select(UserGroup.name))) == ["a"]
    with master.engine.begin() as conn:
        resend_from(conn, *gaps[0])
    pump(relay, applier)
    assert slave.tables() == master.tables()


def test_entries_numbered_out_of_id_order_travel_in_seq_order(link):
    """The sequencer numbers entries as they become visible: one written
    first (a lower id) can become visible last and get the later seq. Sent,
    and sent again on a resend, they go in seq order: in id order the other
    node would see a gap that every resend would repeat."""
    master, slave, relay, applier = link
    add_groups(master, ["a", "b", "c", "d"])
    master.outbox()  # numbered 1..4 in id order, as the relay would
    table = OutboxEntry.__table__
    with master.engine.begin() as conn:  # as the race leaves them: b (the 2nd id) became visible last
        ids = list(conn.execute(select(table.c.id).order_by(table.c.id)).scalars())
        for entry_id, seq in ((ids[1], None), (ids[2], 2), (ids[3], 3), (ids[1], 4)):
            conn.execute(update(table).where(table.c.id == entry_id).values(seq=seq))
    reports = pump(relay, applier)
    assert [r.gap_from for r in reports if r.gap_from] == []
    assert slave.tables() == master.tables()
    with master.engine.begin() as conn:
        assert resend_from(conn, master.id, 1, 1) == 4
    reports = pump(relay, applier)
    assert [r.gap_from for r in reports if r.gap_from] == []
    assert sum(r.duplicates for r in reports) == 4


def test_a_batch_holds_no_more_than_its_bytes(nodes, backend, tmp_path):
    """Messages are applied in batches of at most ``batch_bytes`` of their
    bodies (one message alone whatever its size), however many the
    prefetch lets the broker send."""
    master, slave = nodes
    url = broker_url(backend, tmp_path)
    relay = Relay(master.engine, url, master.id, slave.id, FixedKeys(CLUSTER_SECRET), bundle=1)
    applier = Applier(slave.engine, url, slave.id, FixedKeys(CLUSTER_SECRET), peer_id=master.id,
                      batch_bytes=1)
    try:
        add_groups(master, [f"g{i}" for i in range(12)])
        while relay.run_once():
            pass
        applied = []
        while sum(applied) < 12 and len(applied) < 20:
            # held: one message, not the twelve the prefetch lets the broker send
            assert applier.receive(timeout=5) == 1
            applied.append(applier.apply_pending().applied)
        assert applied == [1] * 12
        assert slave.tables() == master.tables()
    finally:
        relay.close()
        applier.close()
        delete_queues(url, [changes_queue(slave.id).name])
