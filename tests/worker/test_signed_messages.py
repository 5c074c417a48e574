"""Whoever can publish to a broker cannot write to the other node: messages
published straight to the real queue (RabbitMQ beside MariaDB, the
server-less transport beside SQLite) unsigned, forged, re-labelled or
reflected are refused, recorded and rejected, and the receiving node's
data is unchanged; a genuine message replayed is a no-op."""
from __future__ import annotations

import json

from kombu import Connection, Producer
from sqlalchemy import func, select

from ezpyr.replication.broker import EXCHANGE, changes_queue, queue_depth
from ezpyr.replication.messages import (
    SIGNATURE_HEADER, FixedKeys, Keyring, Refusal, outbox_message_json, seal,
)
from ezpyr.replication.models import RefusedChange
from ezpyr.replication.refusals import refusal_summary
from ezpyr.users.models import User
from ezpyr.users.services import UserService
from ezpyr.replication.writes import applying
from tests.replication.test_capture_apply import nodes  # noqa: F401 - fixture
from tests.worker.test_transport import CLUSTER_SECRET, link, pump  # noqa: F401 - fixture


def publish_raw(applier, recipient: str, body: bytes, headers: dict | None) -> None:
    """Straight to the recipient's queue, as anyone holding the broker's
    credentials could."""
    with Connection(applier.broker_url) as conn:
        channel = conn.default_channel
        changes_queue(recipient)(channel).declare()
        Producer(channel, exchange=EXCHANGE).publish(
            body, routing_key=recipient, content_type="application/json", content_encoding="binary",
            headers=headers or {}, delivery_mode=2)


def drain(applier, rounds: int = 20) -> list:
    """Receive and handle what waits in the queue; returns the reports."""
    reports, idle = [], 0
    for _ in range(rounds):
        applier.receive(timeout=0.1)
        report = applier.apply_pending()
        reports.append(report)
        idle = 0 if (report.refused or report.applied or report.duplicates) else idle + 1
        if idle >= 3:
            break
    return reports


def admin_entry(master, passwords):
    """A genuine change of the master's: a new admin, numbered, not sent."""
    with master.sessions() as s:
        UserService(s, passwords).create("mallory", "Pass-word-123", role="admin", skip_policy=True)
        s.commit()
    return master.outbox()[-1]


def users(node) -> list[str]:
    with node.sessions() as s:
        return sorted(s.scalars(select(User.username)))


def refusals(node) -> list[str]:
    with node.sessions() as s:
        return list(s.scalars(select(RefusedChange.reason).order_by(RefusedChange.id)))


def waiting(applier, recipient) -> int:
    with Connection(applier.broker_url) as conn:
        return queue_depth(conn, recipient)[0]


def test_unsigned_forged_and_relabelled_messages_are_refused_and_change_nothing(link, passwords):
    master, slave, relay, applier = link
    entry = admin_entry(master, passwords)
    genuine = outbox_message_json(entry)
    body, headers = seal([genuine], master.id, slave.id, Keyring(CLUSTER_SECRET))
    forged_seq = json.loads(genuine)
    forged_seq["seq"] = 7
    relabelled = body.replace(genuine.encode(), json.dumps(forged_seq).encode())
    attempts = [
        (body, None),  # no signature
        (body, {SIGNATURE_HEADER: "0" * 64}),  # a made-up one
        seal([genuine], master.id, slave.id, Keyring("a guessed secret"))[:2],  # another secret
        (relabelled, headers),  # a genuine signature on other bytes
        seal([genuine], master.id, "some-other-node", Keyring(CLUSTER_SECRET)),  # for another node
        (b"\x80\x04 not json at all", {SIGNATURE_HEADER: "x"}),
    ]
    for attempt_body, attempt_headers in attempts:
        publish_raw(applier, slave.id, attempt_body, attempt_headers)
    reports = drain(applier)
    assert sum(len(r.refused) for r in reports) == len(attempts)
    assert sum(r.applied for r in reports) == 0
    assert users(slave) == []  # no admin was made on the other node
    assert refusals(slave) == [Refusal.UNSIGNED.value, Refusal.FORGED.value, Refusal.FORGED.value,
                               Refusal.FORGED.value, Refusal.MISADDRESSED.value, Refusal.FORGED.value]
    with slave.engine.connect() as conn:
        summary = refusal_summary(conn)
        assert summary.total == len(attempts) and "signature" in summary.words
        assert conn.scalar(select(func.count()).select_from(RefusedChange)) == len(attempts)
        assert "mallory" not in json.dumps([r.detail for r in conn.execute(select(RefusedChange))])
    assert waiting(applier, slave.id) == 0  # rejected, not requeued for ever
    with slave.engine.connect() as conn:
        from ezpyr.replication.apply import version_vector
        assert version_vector(conn) == {}
    # the genuine one still arrives, through the relay
    pump(relay, applier)
    assert users(slave) == ["mallory"] and slave.tables() == master.tables()


def test_a_replayed_genuine_message_is_a_no_op(link, passwords):
    master, slave, relay, applier = link
    entry = admin_entry(master, passwords)
    body, headers = seal([outbox_message_json(entry)], master.id, slave.id, Keyring(CLUSTER_SECRET))
    publish_raw(applier, slave.id, body, headers)
    assert sum(r.applied for r in drain(applier)) == 1
    with slave.engine.begin() as conn, applying(conn):  # a later state, as if applied since
        conn.execute(User.__table__.update().values(full_name="changed since"))
    before = slave.tables()
    for _ in range(3):  # the same bytes, captured and published again
        publish_raw(applier, slave.id, body, headers)
    reports = drain(applier)
    assert sum(r.duplicates for r in reports) == 3
    assert sum(r.applied for r in reports) == 0 and not any(r.refused for r in reports)
    assert slave.tables() == before
    assert waiting(applier, slave.id) == 0


def test_a_message_from_another_sender_is_refused(link, passwords):
    """Signed with the cluster secret, but claiming a stream that is not its
    sender's (or a sender that is not the other node)."""
    master, slave, relay, applier = link
    entry = admin_entry(master, passwords)
    keyring = Keyring(CLUSTER_SECRET)
    publish_raw(applier, slave.id, *seal([outbox_message_json(entry)], "not-the-master", slave.id, keyring))
    reports = drain(applier)
    assert [reason for r in reports for reason, _ in r.refused] == [Refusal.WRONG_ORIGIN]
    assert users(slave) == []


def test_during_a_rotation_both_secrets_are_accepted_then_the_old_one_retires(link, passwords):
    master, slave, relay, applier = link

    class Rolling(FixedKeys):
        retired = False

        def retire_previous(self, keyring):
            self.retired = True
            self._keyring = Keyring(keyring.current)

    applier.keys = keys = Rolling("new secret", previous=CLUSTER_SECRET)
    admin_entry(master, passwords)
    pump(relay, applier)  # the master still signs with the old secret: accepted, kept
    assert users(slave) == ["mallory"] and not keys.retired
    relay.keys = FixedKeys("new secret")
    with master.sessions() as s:
        UserService(s, passwords).create("trent", "Pass-word-123", skip_policy=True)
        s.commit()
    pump(relay, applier)
    assert users(slave) == ["mallory", "trent"] and keys.retired
    old = seal([outbox_message_json(master.outbox()[-1])], master.id, slave.id, Keyring(CLUSTER_SECRET))
    publish_raw(applier, slave.id, *old)  # the old secret, after it retired
    assert [reason for r in drain(applier) for reason, _ in r.refused] == [Refusal.FORGED]
    assert refusals(slave) == [Refusal.FORGED.value]


def test_no_secret_yet_leaves_messages_waiting(link, passwords):
    master, slave, relay, applier = link

    class Empty(FixedKeys):
        def keyring(self, connection=None):
            return None

    admin_entry(master, passwords)
    relay.run_once()
    applier.keys = Empty("unused")
    applier.receive(timeout=0.5)
    report = applier.apply_pending()
    assert report.paused and not report.refused and users(slave) == []
    applier.keys = FixedKeys(CLUSTER_SECRET)
    pump(relay, applier)
    assert users(slave) == ["mallory"]


def test_a_signed_change_of_an_unknown_table_is_refused_unless_from_a_newer_schema(link):
    master, slave, relay, applier = link
    keyring = Keyring(CLUSTER_SECRET)

    def change(revision):
        return json.dumps({"origin": master.id, "epoch": 1, "seq": 1, "schema_revision": revision,
                           "changes": [{"table": "not_a_table", "op": "delete", "pk": "x"}]})

    from ezpyr.replication.schema import code_revision
    publish_raw(applier, slave.id, *seal([change(code_revision())], master.id, slave.id, keyring))
    reports = drain(applier)
    assert [reason for r in reports for reason, _ in r.refused] == [Refusal.MALFORMED]
    publish_raw(applier, slave.id, *seal([change("9999_future")], master.id, slave.id, keyring))
    applier.receive(timeout=1.0)
    report = applier.apply_pending()
    assert "9999_future" in report.paused and not report.refused
    assert refusals(slave) == [Refusal.MALFORMED.value]
