"""The worker at run time, as an operator meets it: two real nodes, real
ezpyr-worker processes, the real broker. How many broker connections a
worker holds over time, how much CPU it uses idle, and how fast it notices
a dead AMQP link (a forwarder frozen with SIGSTOP: no FIN, no RST)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ezpyr.replication.broker import changes_queue
from ezpyr.users.models import UserGroup
from tests.backends import delete_queues
from tests.cluster_nodes import ClusterNode, free_port, make_cluster, pair, wait_until
from tests.functional.test_replication_cluster import add_groups, cluster  # noqa: F401 - fixture

FORWARDER = Path(__file__).resolve().parents[1] / "tcp_forwarder.py"


def broker_connections(pid: int, node: ClusterNode) -> int:
    """Open connections of process ``pid`` to brokers: descriptors of
    the brokers' SQLite files, or TCP sockets to an AMQP port."""
    fds = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    if node.backend == "sqlite":
        return sum(1 for t in targets if re.search(r"/broker[^/]*\.sqlite$", t))
    amqp_ports = {int(re.search(r":(\d+)/", node.broker_url).group(1))}
    inodes = {t[8:-1] for t in targets if t.startswith("socket:[")}
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[9] in inodes and remote_port in amqp_ports and fields[3] == "01":  # ESTABLISHED
                count += 1
    return count


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connected(node) -> bool:
    return node.status()["status"] == "connected"


def test_connections_stay_constant_idle_and_under_a_trickle(cluster):
    master, slave = cluster
    master.start()
    slave.start()
    wait_until(lambda: connected(master) and connected(slave), 30, message="both nodes connected")
    add_groups(master, ["warm-up"])
    wait_until(lambda: slave.count(UserGroup) == 1, 20)
    time.sleep(2)
    nodes = {"master": master, "slave": slave}
    baseline = {name: broker_connections(node.worker.pid, node) for name, node in nodes.items()}
    # the relay (this node's broker) and the applier (the other node's) hold one each
    assert all(count >= 1 for count in baseline.values()), baseline
    seen = []
    for i in range(20):  # a trickle: a change, half a second, both nodes asked their status
        add_groups(master, [f"trickle-{i}"])
        time.sleep(0.5)
        seen.append({name: broker_connections(node.worker.pid, node) for name, node in nodes.items()})
        assert connected(master) and connected(slave), (master.status(), slave.status())
    wait_until(lambda: slave.count(UserGroup) == 21, 20)
    time.sleep(5)  # and idle again
    seen.append({name: broker_connections(node.worker.pid, node) for name, node in nodes.items()})
    assert all(sample == baseline for sample in seen), (baseline, seen)
    for node in nodes.values():
        assert "QueuePool limit" not in node.logs()


@pytest.fixture
def production_paced_cluster(tmp_path, backend, tmp_path_factory):
    """Two nodes probing each other as often as production does (2 s)."""
    a, b = make_cluster(tmp_path, backend, tmp_path_factory, probe_interval=2.0)
    yield a, b
    for node in (a, b):
        node.stop()
    if backend != "sqlite":
        delete_queues(a.broker_url, [changes_queue(n.status()["node"]["id"]).name for n in (a, b)])
    a.close()
    b.close()


def test_an_idle_worker_uses_almost_no_cpu(production_paced_cluster):
    master, slave = production_paced_cluster
    master.start()
    slave.start()
    wait_until(lambda: connected(master) and connected(slave), 30, message="both nodes connected")
    time.sleep(2)
    before = {n.name: cpu_seconds(n.worker.pid) for n in (master, slave)}
    started = time.monotonic()
    time.sleep(10)
    elapsed = time.monotonic() - started
    used = {n.name: (cpu_seconds(n.worker.pid) - before[n.name]) / elapsed for n in (master, slave)}
    # CPU time is counted, not wall time: load elsewhere hardly changes it.
    # The old polling worker used 23 % of a core.
    # (Bound loosely: a second test process on the other core makes CPU time
    # dearer; bench/idle.py measures it on a quiet machine.)
    assert all(share < 0.05 for share in used.values()), used


def start_forwarder(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(FORWARDER), str(port), "127.0.0.1", "5672"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "forwarding"
    return process


@pytest.mark.parametrize("backend", ["mariadb"], indirect=True)
def test_a_dead_amqp_link_is_noticed_within_two_heartbeats(tmp_path, backend, tmp_path_factory):
    from ezpyr.secretbox import generate_key, write_key_file

    port = free_port()
    forwarder = start_forwarder(port)
    key_file = tmp_path / "secret.key"
    write_key_file(key_file, generate_key())
    heartbeat = 2.0
    # the master's broker is reached through the forwarder, by its relay and by the slave's applier
    master = ClusterNode(tmp_path, "node-a", backend, tmp_path_factory, key_file,
                         broker=f"amqp://guest:guest@127.0.0.1:{port}//", heartbeat=heartbeat)
    slave = ClusterNode(tmp_path, "node-b", backend, tmp_path_factory, key_file, heartbeat=heartbeat)
    try:
        pair(master, slave)
        master.start()
        slave.start()
        add_groups(master, [f"before-{i}" for i in range(20)])
        wait_until(lambda: slave.count(UserGroup) == 20, 30)

        forwarder.send_signal(signal.SIGSTOP)  # the link goes silent: sockets open, nothing flows
        wait_until(lambda: "reconnecting to the other node's broker" in slave.status()["applier"],
                   2 * heartbeat + 8, message="the slave's applier to notice the dead link")
        applier = slave.status()["applier"]
        assert "heartbeats missed" in applier or "did not answer" in applier, applier
        wait_until(lambda: "reconnecting to this node's broker" in master.status()["worker"]["relay"],
                   2 * heartbeat + 8, message="the master's relay to notice the dead link")
        add_groups(master, ["during-the-cut"])  # committed on the master, waits in its outbox

        forwarder.kill()  # the link comes back as a new one
        forwarder.wait()
        forwarder = start_forwarder(port)
        wait_until(lambda: slave.count(UserGroup) == 21, 30, message="the change made during the cut")
        wait_until(lambda: connected(slave) and "reconnecting" not in slave.status()["applier"], 20)
        resends = slave.logs().count("to resend")
        assert resends <= 1, slave.logs()
    finally:
        forwarder.send_signal(signal.SIGCONT)
        forwarder.kill()
        forwarder.wait()
        for node in (master, slave):
            node.stop()
        delete_queues(slave.broker_url, [changes_queue(n.status()["node"]["id"]).name
                                         for n in (master, slave)])
        master.close()
        slave.close()
