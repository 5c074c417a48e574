"""The gateway on either node of a real two-node cluster: it reads only its
own node's database, so a session works on the master, on the slave, on the
master while the slave is down and on the slave while the master is down;
each node keeps its own sessions."""
from __future__ import annotations

import os
from pathlib import Path

import pexpect
import pytest
from sqlalchemy import func, select

from ezpyr.access.models import AccessRule
from ezpyr.gateway.models import GatewaySession
from ezpyr.gateway.services import GatewayKeyService
from ezpyr.passwords import Passwords
from ezpyr.servers.models import Server
from ezpyr.users.keys import UserKeyService
from ezpyr.users.services import UserService
from tests.cluster_nodes import make_cluster, wait_until
from tests.conftest import CHEAP_ARGON2
from tests.factories import PASSWORD
from support import gateway as harness

ALICE = harness.account("alice")
TARGET = harness.account("target")

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path, backend, tmp_path_factory, world):
    os.chmod(tmp_path, 0o755)
    master, slave = make_cluster(tmp_path, backend, tmp_path_factory)
    gateways = {}
    try:
        for node in (master, slave):
            sock, logs = node.dir / "gateway.sock", node.dir / "sessions"
            text = node.ini.read_text().replace(
                "[app:main]\n", f"[app:main]\nezpyr.gateway.socket = {sock}\n"
                                f"ezpyr.gateway.log_dir = {logs}\n", 1)
            node.ini.write_text(text)
            node.start()
            service = harness.GatewayProcess(node.ini, sock)
            sshd = harness.Sshd(node.dir, "gateway-sshd",
                                harness.gateway_block(sock, harness.EZSH_HOME / "ezsh"))
            sshd.authorize(ALICE, Path(f"{world.user_keys[ALICE]}.pub").read_text())
            service.start()
            sshd.start()
            gateways[node.name] = (node, service, sshd)
        yield gateways
    finally:
        for node, service, sshd in gateways.values():
            sshd.stop()
            service.stop()
        master.close()
        slave.close()


def one_shot(world, sshd, text: str) -> tuple[int, str]:
    argv = harness.ssh_argv(sshd.port, ALICE, world.user_keys[ALICE], "web",
                            f"echo {text}-$((1+1))")
    child = harness.spawn(argv)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before.decode(errors="replace")


def sessions(node) -> int:
    with node.env.session() as db:
        return db.scalar(select(func.count()).select_from(GatewaySession))


def test_the_gateway_works_on_either_node_and_with_the_other_down(cluster, world):
    (master, gw_master, sshd_master), (slave, gw_slave, sshd_slave) = cluster.values()
    target = world.targets["web2"]
    with master.env.session(actor="test") as db:
        user = UserService(db, Passwords.from_settings(CHEAP_ARGON2)).create(ALICE,
                                                                             PASSWORD)
        UserKeyService(db).add(
            user, Path(f"{world.user_keys[ALICE]}.pub").read_text(), "laptop")
        server = Server(name="web", host="127.0.0.1", port=target.port,
                        remote_user=TARGET)
        db.add(server)
        db.flush()
        db.add(AccessRule(user=user, server=server))
        key = GatewayKeyService(db, master.env.secret_box).current()
        target.authorize(TARGET, key.public_key)

    def on_slave():
        with slave.env.session() as db:
            return db.scalars(select(AccessRule)).first() is not None
    wait_until(on_slave, 60, message="the access rule to reach the slave")

    status, output = one_shot(world, sshd_master, "on-master")
    assert (status, "on-master-2" in output) == (0, True), output

    def pinned_on_slave():
        with slave.env.session() as db:
            return db.scalars(select(Server.host_key)).first() is not None
    wait_until(pinned_on_slave, 60, message="the host key pin to reach the slave")

    status, output = one_shot(world, sshd_slave, "on-slave")
    assert (status, "on-slave-2" in output) == (0, True), output
    assert (sessions(master), sessions(slave)) == (1, 1)  # each node keeps its own

    slave.stop()  # the slave's panel and worker are down
    status, output = one_shot(world, sshd_master, "slave-down")
    assert (status, "slave-down-2" in output) == (0, True), output

    slave.start()
    master.stop()  # the master is down
    status, output = one_shot(world, sshd_slave, "master-down")
    assert (status, "master-down-2" in output) == (0, True), output
    assert (sessions(master), sessions(slave)) == (2, 2)

