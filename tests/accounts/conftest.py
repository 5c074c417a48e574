"""Two real nodes, each with its own real sshd and its own accounts root."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from ezpyr.secretbox import generate_key, write_key_file
from support.sshd import NodeSshd, node_settings, provisioned_pair
from tests.cluster_nodes import ClusterNode, pair


@dataclass
class AccountsCluster:
    master: ClusterNode
    slave: ClusterNode
    sshd_master: NodeSshd
    sshd_slave: NodeSshd

    def accounts(self, *args: str, check: bool = True):
        return self.master.run("ezpyr-accounts", *args, check=check)


@pytest.fixture
def accounts_cluster(tmp_path, backend, tmp_path_factory):
    secret_key = tmp_path / "secret.key"
    write_key_file(secret_key, generate_key())
    key_file, sshds = provisioned_pair(tmp_path)
    nodes = []
    try:
        for name, own, other in (("node-a", *sshds), ("node-b", *reversed(sshds))):
            nodes.append(ClusterNode(tmp_path, name, backend, tmp_path_factory, secret_key,
                                     extra_settings=node_settings(own, other, key_file)))
        pair(*nodes)
        for node in nodes:
            node.start()
        yield AccountsCluster(nodes[0], nodes[1], *sshds)
    finally:
        for node in nodes:
            node.close()
        for sshd in sshds:
            sshd.stop()
