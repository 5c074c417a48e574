"""Add makes the secondary's system accounts before it reports done."""
from __future__ import annotations

import json

from ezpyr.passwords import Passwords
from ezpyr.secretbox import generate_key, write_key_file
from ezpyr.users.services import UserService
from support.sshd import node_settings, provisioned_pair
from tests.cluster_nodes import ClusterNode
from tests.conftest import CHEAP_ARGON2


def test_add_makes_the_secondarys_accounts(tmp_path, backend, tmp_path_factory):
    """500 users on MariaDB, the production database (the accounts' work is
    the same on both back ends: one batch request makes them all); 50 on
    SQLite, which Add copies by the same code."""
    users = 500 if backend == "mariadb" else 50
    key_file, sshds = provisioned_pair(tmp_path, ("sshd-primary", "sshd-secondary"))
    nodes = []
    try:
        for i, (name, own, other) in enumerate((("primary", *sshds), ("secondary", *reversed(sshds)))):
            secret_key = tmp_path / f"{name}.key"
            write_key_file(secret_key, generate_key())
            nodes.append(ClusterNode(tmp_path, name, backend, tmp_path_factory, secret_key,
                                     secondary_of=nodes[0].address if i else None,
                                     extra_settings=node_settings(own, other, key_file)))
        primary, secondary = nodes
        with primary.env.session(actor="test") as s:
            service = UserService(s, Passwords.from_settings(CHEAP_ARGON2))
            for i in range(users):
                service.create(f"user{i:04d}", "Pass-word-1234", skip_policy=True)
        primary.start()
        secondary.start()
        primary.run("ezpyr-grant-host", "127.0.0.1")
        result = primary.run("ezpyr-cluster", "add", secondary.address, "--setup-key", secondary.setup_key,
                             "--json")
        accounts = json.loads(result.stdout)["accounts"]
        # done means done: the accounts are there when Add returns
        made = set(sshds[1].passwd())
        assert len(made) == users + 1 and {"admin", "user0000", f"user{users - 1:04d}"} <= made
        assert accounts["errors"] == [] and accounts["node"] == "other"
        assert sshds[1].authorized_keys("user0042").read_text() == ""
    finally:
        for node in nodes:
            node.close()
        for sshd in sshds:
            sshd.stop()
