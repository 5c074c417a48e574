"""Two real nodes (panel + worker processes each, their own databases) on
both back ends: SQLite + the server-less transport, MariaDB + RabbitMQ."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest
from sqlalchemy import insert, select

from ezpyr.node.models import NodeIdentity
from ezpyr.replication.broker import changes_queue
from ezpyr.replication.models import OutboxEntry
from ezpyr.users.groups import UserGroupService
from ezpyr.users.models import UserGroup
from tests.backends import delete_queues
from tests.cluster_nodes import make_cluster, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path, backend, tmp_path_factory):
    a, b = make_cluster(tmp_path, backend, tmp_path_factory)
    yield a, b
    try:
        for node in (a, b):
            node.stop()
        if backend != "sqlite":
            delete_queues(a.broker_url, [changes_queue(n.status()["node"]["id"]).name for n in (a, b)])
    finally:
        a.close()
        b.close()


def add_groups(node, names):
    for name in names:
        with node.env.session(actor="test") as s:
            UserGroupService(s).create(name)


def in_sync(a, b) -> bool:
    return a.cluster("verify").get("in_sync") is True


def caught_up(a, b):
    """b holds everything a committed: a's relay has numbered every entry
    (a's vector counts only numbered ones) and the vectors agree."""
    return lambda: a.unnumbered() == 0 and a.vector() == b.vector() and a.vector()


def test_changes_on_the_master_reach_the_slave_which_refuses_writes(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    add_groups(master, ["ops", "dev"])
    wait_until(lambda: slave.count(UserGroup) == 2, 20, message="slave to get both groups")
    wait_until(lambda: master.status()["status"] == "connected", 20)
    with pytest.raises(Exception, match="does not accept changes"):
        add_groups(slave, ["sneaky"])
    assert slave.count(UserGroup) == 2
    assert in_sync(master, slave)


def test_a_csv_import_reaches_the_slave(cluster, tmp_path):
    """3,000 servers imported with ezpyr-admin on the master (one transaction,
    an outbox entry per thousand rows) arrive on the slave, and Verify agrees."""
    from ezpyr.servers.models import Server
    from tests.servers.conftest import HEADER, csv_rows

    master, slave = cluster
    master.start()
    slave.start()
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(HEADER + csv_rows(3000))
    done = master.run("ezpyr-admin", "servers", "import", str(fleet), "--json")
    assert json.loads(done.stdout)["imported"] == 3000
    wait_until(lambda: slave.count(Server) == 3000, 60, message="the slave to get the 3,000 servers")
    wait_until(caught_up(master, slave), 60, message="the slave to catch up")
    assert in_sync(master, slave)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    writer = threading.Thread(target=add_groups, args=(master, [f"g{i:04d}" for i in range(600)]))
    writer.start()
    wait_until(lambda: slave.count(UserGroup) >= 100, 60, message="slave to apply some changes")
    slave.kill_worker(signal.SIGKILL)  # the applier, mid-stream
    master.kill_worker(signal.SIGKILL)  # and the relay
    slave.start_worker()
    master.start_worker()
    writer.join()
    wait_until(caught_up(master, slave), 60, message="the slave to catch up")
    assert slave.count(UserGroup) == 600
    assert in_sync(master, slave)


def test_peer_down_for_1000_changes_then_back(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    wait_until(lambda: master.status()["status"] == "connected", 20)
    slave.stop()
    add_groups(master, [f"late{i:04d}" for i in range(1000)])
    wait_until(lambda: (s := master.status())["status"] == "unreachable" and s["backlog"] == 1000,
               20, message="master to show the slave unreachable with a backlog of 1000")
    slave.start()
    wait_until(caught_up(master, slave), 120, message="the backlog to drain")
    wait_until(lambda: master.status()["backlog"] == 0, 20, message="the backlog to read 0")
    assert slave.count(UserGroup) == 1000
    assert in_sync(master, slave)


def test_disconnect_stops_probing_and_connect_drains(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    assert master.cluster("disconnect")["status"] == "disconnected"
    assert slave.cluster("disconnect")["status"] == "disconnected"
    add_groups(master, ["queued1", "queued2"])
    # Disconnect holds the changes back on the master: not even sent to its broker
    wait_until(lambda: master.status()["backlog_unsent"] == 2, 20)
    time.sleep(3)  # well past a wake-up: still held back
    state = master.status()
    assert state["backlog_unsent"] == 2
    assert "disconnected by an admin" in state["worker"]["relay"]
    assert slave.count(UserGroup) == 0
    assert state["status"] == "disconnected"
    master.cluster("connect")
    slave.cluster("connect")
    wait_until(lambda: slave.count(UserGroup) == 2, 20)


def test_a_message_from_a_newer_schema_pauses_replication(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    add_groups(master, ["before"])
    wait_until(lambda: slave.count(UserGroup) == 1, 20)
    with master.env.session() as s:  # as if the master had been upgraded first
        node = s.scalars(select(NodeIdentity)).one()
        last = max(s.scalars(select(OutboxEntry.seq).where(OutboxEntry.origin == node.id)))
        s.execute(insert(OutboxEntry.__table__).values(
            origin=node.id, epoch=node.epoch, seq=last + 1, changes=json.dumps([]),
            actor="test", schema_revision="9999_future"))
    wait_until(lambda: "paused" in slave.status()["applier"], 30,
               message="the slave to pause replication")
    assert "9999_future" in slave.status()["applier"]
    assert "upgrade this node" in slave.status()["applier"]


@pytest.mark.serial
@pytest.mark.parametrize("backend", ["mariadb"], indirect=True)
def test_broker_restart_mid_stream_loses_nothing(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    writer = threading.Thread(target=add_groups, args=(master, [f"r{i:04d}" for i in range(300)]))
    writer.start()
    wait_until(lambda: slave.count(UserGroup) >= 50, 60)
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    writer.join()
    wait_until(caught_up(master, slave), 120, message="the slave to catch up after the restart")
    assert slave.count(UserGroup) == 300
    assert in_sync(master, slave)


# -- make master, rejoin, split-brain ------------------------------------------

def role(node):
    return node.status()["node"]["role"]


def test_graceful_switchover_with_writes_in_flight_loses_nothing(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    wait_until(lambda: master.status()["status"] == "connected", 20)
    refused = []

    def write():
        for i in range(300):
            try:
                add_groups(master, [f"w{i:04d}"])
            except Exception as error:  # the old master refuses once it stepped down
                refused.append((i, str(error)))

    writer = threading.Thread(target=write)
    writer.start()
    wait_until(lambda: slave.count(UserGroup) >= 30, 60)
    result = slave.cluster("make-master")
    writer.join()
    assert result["mode"] == "graceful", result
    assert role(slave) == "master" and role(master) == "slave"
    assert all("does not accept changes" in e for _, e in refused), refused[:3]
    committed = 300 - len(refused)
    wait_until(lambda: slave.count(UserGroup) == committed, 30)
    assert master.count(UserGroup) == committed
    add_groups(slave, ["after-switch"])  # the new master takes changes …
    wait_until(lambda: master.count(UserGroup) == committed + 1, 30)  # … and they flow back
    assert in_sync(master, slave)


def test_old_master_back_without_changes_becomes_slave(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    add_groups(master, ["before"])
    wait_until(lambda: slave.count(UserGroup) == 1, 20)
    master.stop()
    answer = slave.cluster("make-master")
    assert answer.get("needs_confirmation") and "does not answer" in answer["warning"]
    assert role(slave) == "slave"  # nothing changed without the confirmation
    assert slave.run("ezpyr-cluster", "make-master", "--force", "--yes").returncode == 0
    assert role(slave) == "master"
    add_groups(slave, ["on-new-master"])
    master.start()
    wait_until(lambda: role(master) == "slave", 30, message="the old master to step down")
    wait_until(lambda: master.count(UserGroup) == 2, 30)
    assert not master.status()["split_brain"] and not slave.status()["split_brain"]
    assert in_sync(master, slave)


def test_old_master_back_with_unreplicated_changes_gives_them_to_the_new_master(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    add_groups(master, ["replicated"])
    wait_until(lambda: slave.count(UserGroup) == 1, 20)
    slave.stop()
    add_groups(master, ["only-on-old-master"])
    master.stop()
    slave.start()
    assert slave.run("ezpyr-cluster", "make-master", "--force", "--yes").returncode == 0
    master.start()  # the new master made no changes: no conflict
    wait_until(lambda: role(master) == "slave", 30, message="the old master to step down")
    wait_until(lambda: slave.count(UserGroup) == 2, 30, message="its change to reach the new master")
    assert not slave.status()["split_brain"]
    assert in_sync(master, slave)


def test_changes_on_both_sides_are_a_split_brain_on_both(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    add_groups(master, ["common"])
    wait_until(lambda: slave.count(UserGroup) == 1, 20)
    slave.stop()
    add_groups(master, ["a-only"])  # the reference page's story
    master.stop()
    # The master's broker is down with it in the story; here it lives on, so
    # the slave's worker starts only after its own change (else it could take
    # "a-only" first, and "b-only" would rightly follow it, no split-brain).
    slave.start_panel()
    assert slave.run("ezpyr-cluster", "make-master", "--force", "--yes").returncode == 0
    add_groups(slave, ["b-only"])
    slave.start_worker()
    master.start()
    wait_until(lambda: master.status()["split_brain"] and slave.status()["split_brain"], 30,
               message="both nodes to see the split-brain")
    assert master.cluster("status")["status"] == "split_brain"
    assert role(master) == "slave" and role(slave) == "master"  # the lower epoch takes no changes
    time.sleep(2)  # neither applies the other's changes
    assert master.count(UserGroup) == 2 and slave.count(UserGroup) == 2
    with pytest.raises(Exception, match="does not accept changes"):
        add_groups(master, ["refused"])


def test_the_reference_story_split_brain_resolved_keeping_rows_from_each_side(cluster):
    """Slave down; servers added on the master; master down; slave made
    master; servers added there; old master back → split-brain on both;
    resolve keeping some rows from each side."""
    from ezpyr.servers.models import Server
    old, new = cluster
    old.start()
    new.start()
    add_groups(old, ["common"])
    wait_until(lambda: new.count(UserGroup) == 1, 20)
    new.stop()
    with old.env.session(actor="alice") as s:
        s.add_all([Server(name="web1", host="10.0.0.1"), Server(name="a-only", host="10.0.0.2")])
    old.stop()
    new.start_panel()  # its worker after its own changes: see the test above
    assert new.run("ezpyr-cluster", "make-master", "--force", "--yes").returncode == 0
    with new.env.session(actor="bob") as s:
        s.add_all([Server(name="web1", host="10.9.9.9"), Server(name="b-only", host="10.0.0.3")])
    new.start_worker()
    old.start()
    wait_until(lambda: old.status()["split_brain"] and new.status()["split_brain"], 30)
    preview = new.cluster("resolve", "--keep", "here")
    assert preview.get("applied") is False and preview["decided"] == 4  # nothing changed yet
    assert {item["lost"]["name"] for item in preview["lost"]} == {"web1", "a-only"}
    with old.env.engine.connect() as conn:
        ids = dict(conn.exec_driver_sql("SELECT name, id FROM servers").all())
    keep_a = f"servers:{ids['a-only']}=there"
    both_web1 = new.run("ezpyr-cluster", "resolve", "--keep", "here", "--row", keep_a,
                        "--row", f"servers:{ids['web1']}=there", "--yes", check=False)
    assert both_web1.returncode == 2 and "two rows with one name" in both_web1.stderr
    assert new.status()["split_brain"]  # refused: nothing changed
    done = new.run("ezpyr-cluster", "resolve", "--keep", "here", "--row", keep_a, "--yes", check=False)
    assert done.returncode == 0, done.stderr
    assert new.status()["split_brain"] is False
    wait_until(lambda: not old.status()["split_brain"], 30, message="the other node to leave the split-brain")
    def names(node):
        with node.env.engine.connect() as conn:
            return sorted(conn.exec_driver_sql("SELECT name FROM servers").scalars())

    assert names(new) == names(old) == ["a-only", "b-only", "web1"]
    with new.env.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT host FROM servers WHERE name = 'web1'").scalar() == "10.9.9.9"
    assert in_sync(old, new)
    backups = list((new.dir.parent).glob("**/ezpyr-backup-*.json"))
    assert len(backups) >= 2
    with new.env.session(actor="bob") as s:  # replication runs again
        s.add(Server(name="after", host="10.0.0.4"))
    wait_until(lambda: "after" in names(old), 30)
