"""Signed change messages on two real nodes (panel and worker processes,
their own databases and brokers): a forged message published straight to
the queue changes nothing and shows on the status, and the cluster secret
rotates while changes flow, with nothing refused or lost."""
from __future__ import annotations

import json
import threading

import pytest
from kombu import Connection, Producer
from sqlalchemy import select

from ezpyr.cluster.models import ClusterPeer
from ezpyr.replication.broker import EXCHANGE, changes_queue
from ezpyr.replication.messages import SIGNATURE_HEADER, Keyring, seal
from ezpyr.users.models import User, UserGroup
from tests.cluster_nodes import wait_until
from tests.functional.test_replication_cluster import add_groups, caught_up, cluster, in_sync  # noqa: F401

pytestmark = pytest.mark.slow


def forged_admin(master, slave) -> str:
    """A change message making an admin, as an attacker would write it: the
    next seq of the master's stream, the master's vector as its context."""
    master_id = master.status()["node"]["id"]
    (stream, seq), = [(k, v) for k, v in slave.vector().items() if k[0] == master_id and v]
    row = {"id": "00000000-0000-4000-8000-000000000666", "username": "intruder", "full_name": "",
           "email": "", "role": "admin", "group_id": None, "password_hash": "$argon2id$x",
           "auth_stamp": "x", "suspended": False, "totp_secret": None, "totp_enabled": False,
           "password_changed_at": "2026-01-01T00:00:00", "created_at": "2026-01-01T00:00:00",
           "updated_at": "2026-01-01T00:00:00"}
    return json.dumps({"origin": master_id, "epoch": stream[1], "seq": seq + 1, "changes": [
        {"table": "users", "op": "upsert", "pk": row["id"], "row": row}],
        "context": {f"{o}:{e}": n for (o, e), n in master.vector().items()}})


def publish(broker_url: str, recipient: str, body: bytes, headers: dict) -> None:
    with Connection(broker_url) as conn:
        channel = conn.default_channel
        changes_queue(recipient)(channel).declare()
        Producer(channel, exchange=EXCHANGE).publish(
            body, routing_key=recipient, content_type="application/json", content_encoding="binary",
            headers=headers, delivery_mode=2)


def secrets_of(node) -> tuple:
    with node.env.session() as s:
        peer = s.scalars(select(ClusterPeer)).one()
        box = node.env.secret_box
        return tuple(box.decrypt(v) if v else None for v in (
            peer.secret_encrypted, peer.next_secret_encrypted, peer.previous_secret_encrypted))


def test_a_forged_message_on_the_real_queue_changes_nothing_on_the_other_node(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    add_groups(master, ["before"])
    wait_until(lambda: slave.count(UserGroup) == 1, 30, message="replication to run")
    wait_until(caught_up(master, slave), 30)
    master_id, slave_id = master.status()["node"]["id"], slave.status()["node"]["id"]
    users_before = slave.count(User)
    message = forged_admin(master, slave)
    body = f'{{"v":1,"from":"{master_id}","to":"{slave_id}","bundle":[{message}]}}'.encode()
    publish(master.broker_url, slave_id, body, {})  # unsigned
    publish(master.broker_url, slave_id, body, {SIGNATURE_HEADER: "ab" * 32})  # forged
    publish(master.broker_url, slave_id, *seal([message], master_id, slave_id, Keyring("guessed")))
    wait_until(lambda: slave.status()["refused_messages"]["total"] == 3, 30,
               message="the slave to refuse the three messages")
    with slave.env.session() as s:
        assert s.scalars(select(User).where(User.username == "intruder")).first() is None
    assert slave.count(User) == users_before
    status = slave.cluster("status")
    assert status["refused_messages"]["total"] == 3
    assert status["refused_messages"]["last_reason"] == "bad-signature"
    assert "refused" in slave.run("ezpyr-cluster", "status").stdout
    # replication goes on, and the nodes hold the same data
    add_groups(master, ["after"])
    wait_until(lambda: slave.count(UserGroup) == 2, 30, message="replication to go on")
    wait_until(caught_up(master, slave), 30)
    assert in_sync(master, slave)
    # the control: the same change, signed with the cluster secret, is applied
    master.stop()
    message = forged_admin(master, slave)
    publish(master.broker_url, slave_id, *seal([message], master_id, slave_id, Keyring(secrets_of(slave)[0])))
    wait_until(lambda: slave.count(User) == users_before + 1, 30, message="the signed change to apply")
    assert slave.status()["refused_messages"]["total"] == 3


def test_the_cluster_secret_rotates_while_changes_flow(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    add_groups(master, ["warm-up"])
    wait_until(lambda: slave.count(UserGroup) == 1, 30)
    old = secrets_of(master)[0]
    assert secrets_of(slave)[0] == old
    stop = threading.Event()
    written = []

    def writer():
        while not stop.is_set() and len(written) < 200:
            add_groups(master, [f"during-{len(written)}"])
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_until(lambda: len(written) >= 10, 30)
        result = master.cluster("rotate-secret")
        assert result.get("rotated") is True, result
        wait_until(lambda: len(written) >= 30, 30)
    finally:
        stop.set()
        thread.join()
    add_groups(master, ["after"])
    total = len(written) + 2
    wait_until(lambda: slave.count(UserGroup) == total, 60, message="every change to arrive")
    new = secrets_of(master)[0]
    assert new != old and secrets_of(slave)[0] == new
    # the old secret is dropped on both once nothing signed with it can arrive
    wait_until(lambda: secrets_of(master)[1:] == (None, None) and secrets_of(slave)[1:] == (None, None),
               30, message="both nodes to drop the old secret")
    for node in (master, slave):
        assert node.status()["refused_messages"]["total"] == 0
    # run from the slave, too: the master takes it and replication goes on
    assert slave.cluster("rotate-secret").get("rotated") is True
    add_groups(master, ["after-second"])
    wait_until(lambda: slave.count(UserGroup) == total + 1, 30)
    assert secrets_of(master)[0] == secrets_of(slave)[0] != new
    wait_until(caught_up(master, slave), 30)
    assert in_sync(master, slave)
