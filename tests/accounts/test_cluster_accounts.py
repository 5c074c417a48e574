"""System accounts follow users on both nodes: real nodes (panel and
worker processes), a real sshd per node, the agent's real writes of the
account files and real usermod/userdel, checked by reading each node's
passwd, shadow and authorized_keys."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess

import webtest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyramid.paster import get_app
from sqlalchemy import select

from ezpyr.accounts.models import AccountTask
from ezpyr.passwords import Passwords
from ezpyr.users.keys import UserKeyService
from ezpyr.users.models import User
from ezpyr.users.services import UserService
from tests.cluster_nodes import ADMIN_PASSWORD, wait_until
from tests.conftest import CHEAP_ARGON2
from tests.factories import PASSWORD, login

PASSWORDS = Passwords.from_settings(CHEAP_ARGON2)


def new_key() -> str:
    return Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def on(node, work):
    """Run ``work(users, keys, session)`` on ``node`` in one transaction, as the panel does."""
    with node.env.session() as s:
        return work(UserService(s, PASSWORDS), UserKeyService(s), s)


def user(users, name) -> User:
    return users.by_username(name)


def tasks(node, target=None) -> list[AccountTask]:
    with node.env.session() as s:
        stmt = select(AccountTask).order_by(AccountTask.id)
        if target:
            stmt = stmt.where(AccountTask.target == target)
        return list(s.scalars(stmt))


def settled(cluster, timeout=90):
    wait_until(lambda: not tasks(cluster.master), timeout,
               message=f"account tasks to be applied: {[(t.target, t.username, t.error) for t in tasks(cluster.master)]}")


def wanted(node) -> dict:
    """username -> (locked, keys) as the users table says."""
    with node.env.session() as s:
        return {u.username: (u.suspended, sorted(k.public_key for k in u.keys))
                for u in s.scalars(select(User))}


def accounts_on(sshd, managed_only: bool = False) -> dict:
    """username -> (locked, keys), read from the node's own files."""
    result = {}
    shadow = sshd.shadow()
    for name, entry in sshd.passwd().items():
        if managed_only and entry[4] != "ezpyr managed account":
            continue
        assert entry[4] == "ezpyr managed account" and entry[6].endswith("ezsh-for-tests"), entry
        keys_file = sshd.authorized_keys(name)
        info = os.stat(keys_file)
        assert info.st_mode & 0o777 == 0o600 and info.st_uid == int(entry[2]), (name, oct(info.st_mode))
        locked = shadow[name][1].startswith("!") and shadow[name][7] == "1"
        result[name] = (locked, sorted(keys_file.read_text().splitlines()))
    return result


def assert_both_match(cluster):
    expected = wanted(cluster.master)
    assert accounts_on(cluster.sshd_master) == expected
    assert accounts_on(cluster.sshd_slave) == expected


def reconcile(cluster, *args) -> list[dict]:
    result = cluster.accounts("reconcile", "--json", *args, check=False)
    return json.loads(result.stdout)


def start_reconciled(cluster):
    """The admin ezpyr-init made existed before the other node: reconcile, as after Add."""
    reports = reconcile(cluster)
    assert [r["node"] for r in reports] == ["this", "other"], reports
    settled(cluster)
    assert_both_match(cluster)


def test_accounts_follow_users_on_both_nodes(accounts_cluster):
    cluster = accounts_cluster
    start_reconciled(cluster)
    key_a, key_b = new_key(), new_key()

    def create(users, keys, s):
        alice = users.create("alice", PASSWORD)
        keys.add(alice, key_a, "laptop")
        users.create("bob", PASSWORD, full_name="Bob")
    on(cluster.master, create)
    settled(cluster)
    assert_both_match(cluster)
    assert accounts_on(cluster.sshd_slave)["alice"] == (False, [key_a])

    on(cluster.master, lambda users, keys, s: users.update(user(users, "bob"), "robert", role="user",
                                                              full_name="Robert"))
    on(cluster.master, lambda users, keys, s: users.suspend(user(users, "alice")))
    settled(cluster)
    assert_both_match(cluster)
    assert "bob" not in cluster.sshd_slave.passwd() and "robert" in cluster.sshd_slave.passwd()
    assert accounts_on(cluster.sshd_slave)["alice"][0] is True

    on(cluster.master, lambda users, keys, s: users.reinstate(user(users, "alice")))

    def swap_keys(users, keys, s):
        alice = user(users, "alice")
        keys.add(alice, key_b, "desktop")
        keys.delete(next(k for k in keys.keys_of(alice) if k.public_key == key_a))
    on(cluster.master, swap_keys)
    settled(cluster)
    assert_both_match(cluster)
    assert accounts_on(cluster.sshd_master)["alice"] == (False, [key_b])

    on(cluster.master, lambda users, keys, s: users.delete(user(users, "robert")))
    settled(cluster)
    assert_both_match(cluster)
    for sshd in (cluster.sshd_master, cluster.sshd_slave):
        assert "robert" not in sshd.passwd() and "robert" not in sshd.shadow()
        assert any(p.name.startswith("robert.deleted-") for p in (sshd.root / "home").iterdir())
    assert all(r["to_do"] == 0 for r in reconcile(cluster, "--dry-run"))


def test_a_changed_host_key_stops_account_work_until_reset(accounts_cluster):
    cluster = accounts_cluster
    start_reconciled(cluster)
    on(cluster.master, lambda users, keys, s: users.create("carol", PASSWORD))
    settled(cluster)
    pinned = cluster.sshd_slave.fingerprint()

    cluster.sshd_slave.stop()
    cluster.sshd_slave.new_host_key()  # a reinstalled node
    cluster.sshd_slave.start()
    presented = cluster.sshd_slave.fingerprint()
    ran_before = cluster.sshd_slave.commands_run()
    files_before = (cluster.sshd_slave.root / "etc/passwd").read_text()
    key = new_key()
    on(cluster.master, lambda users, keys, s: keys.add(user(users, "carol"), key))

    def refused():
        waiting = tasks(cluster.master, "other")
        return waiting and waiting[0].error and waiting[0]
    task = wait_until(refused, 60, message="the other node's task to be refused")
    assert pinned in task.error and presented in task.error and "the other node" in task.error
    assert cluster.sshd_slave.address in task.error
    wait_until(lambda: not tasks(cluster.master, "this"), 60)
    assert accounts_on(cluster.sshd_master)["carol"] == (False, [key])
    status = json.loads(cluster.accounts("status", "--json").stdout)["nodes"]["other"]
    assert status["pinned"] == pinned and status["presented"] == presented and status["waiting"] == 1

    # the panel's Reset page shows both and asks first
    app = panel(cluster.master)
    page = app.get("/cluster/accounts/reset-fingerprint/other")
    assert pinned in page.text and presented in page.text
    assert cluster.sshd_slave.commands_run() == ran_before  # nothing reached the node meanwhile
    assert (cluster.sshd_slave.root / "etc/passwd").read_text() == files_before
    assert not cluster.sshd_slave.authorized_keys("carol").read_text()

    form = page.forms["reset-fingerprint"]
    assert form["presented"].value == presented
    form.submit().follow()
    settled(cluster)
    assert_both_match(cluster)
    assert accounts_on(cluster.sshd_slave)["carol"] == (False, [key])
    status = json.loads(cluster.accounts("status", "--json").stdout)["nodes"]["other"]
    assert status["pinned"] == presented and status["presented"] is None

    # once more, reset from the command line: it asks first
    cluster.sshd_slave.stop()
    cluster.sshd_slave.new_host_key()
    cluster.sshd_slave.start()
    on(cluster.master, lambda users, keys, s: users.suspend(user(users, "carol")))
    wait_until(refused, 60, message="the other node's task to be refused again")
    asked = cluster.accounts("reset-fingerprint", "other", check=False)
    assert asked.returncode == 2 and "not confirmed" in asked.stderr
    assert presented in asked.stdout and cluster.sshd_slave.fingerprint() in asked.stdout
    assert accounts_on(cluster.sshd_slave)["carol"][0] is False
    reset = json.loads(cluster.accounts("reset-fingerprint", "other", "--yes", "--json").stdout)
    assert reset == {"node": "other", "old": presented, "new": cluster.sshd_slave.fingerprint(), "reset": True}
    settled(cluster)
    assert accounts_on(cluster.sshd_slave)["carol"][0] is True


def panel(node) -> webtest.TestApp:
    app = webtest.TestApp(get_app(str(node.ini), "main"), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    login(app, "admin", ADMIN_PASSWORD)
    return app


def test_tasks_wait_while_the_other_node_is_away_and_apply_in_order(accounts_cluster):
    cluster = accounts_cluster
    start_reconciled(cluster)
    cluster.sshd_slave.stop()
    names = [f"user{i:02d}" for i in range(20)]
    for name in names:
        on(cluster.master, lambda users, keys, s, name=name: users.create(name, PASSWORD))
    for name in names[:5]:
        on(cluster.master, lambda users, keys, s, name=name: users.delete(user(users, name)))
    wait_until(lambda: not tasks(cluster.master, "this"), 90, message="this node's tasks")
    waiting = tasks(cluster.master, "other")
    assert len(waiting) == 25 and all(t.state == "waiting" for t in waiting)
    wait_until(lambda: all("cannot connect" in t.error for t in tasks(cluster.master, "other")), 30)
    assert set(accounts_on(cluster.sshd_master)) == set(wanted(cluster.master))

    page = panel(cluster.master).get("/users", {"q": "user1"})
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*user15(?:(?!</tr>).)*</tr>", page.text, re.S).group(0)
    assert "waiting" in row and "cannot connect" in row
    cluster_page = panel(cluster.master).get("/cluster")
    assert "25 waiting" in cluster_page.text

    ran_before = cluster.sshd_slave.commands_run()
    cluster.sshd_slave.start()
    settled(cluster)
    assert_both_match(cluster)
    log = [json.loads(line)["argv"] for line in
           cluster.sshd_slave.agent_log.read_text().splitlines()[ran_before:]]
    for name in names[:5]:  # each made, then removed: in the order they were queued
        made = next(i for i, argv in enumerate(log)
                    if argv.startswith("create-accounts ") and name in shlex.split(argv))
        removed = next(i for i, argv in enumerate(log) if "userdel" in argv and argv.endswith(f" {name}"))
        assert made < removed
    assert [r["to_do"] for r in reconcile(cluster)] == [0, 0]


def test_an_account_refused_in_a_batch_fails_alone(accounts_cluster):
    cluster = accounts_cluster
    start_reconciled(cluster)
    subprocess.run(["useradd", "--prefix", str(cluster.sshd_slave.root), "-m", "mallory"], check=True)  # not ezpyr's

    def create(users, keys, s):
        for name in ("nina", "mallory", "otto"):
            users.create(name, PASSWORD)
    on(cluster.master, create)  # one commit: the three go to each node in one batch
    wait_until(lambda: [(t.target, t.username, t.state) for t in tasks(cluster.master)]
               == [("other", "mallory", "failed")], 90, message="only mallory's task on the other node to fail")
    assert "not managed by ezpyr" in tasks(cluster.master)[0].error
    assert set(accounts_on(cluster.sshd_slave, managed_only=True)) == set(wanted(cluster.master)) - {"mallory"}
    assert accounts_on(cluster.sshd_master) == wanted(cluster.master)
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*mallory(?:(?!</tr>).)*</tr>",
                    panel(cluster.master).get("/users", {"q": "mallory"}).text, re.S).group(0)
    assert "failed" in row and "not managed by ezpyr" in row


def test_reconcile_finds_and_fixes_what_differs(accounts_cluster):
    cluster = accounts_cluster
    start_reconciled(cluster)
    keys = {"dave": new_key(), "erin": new_key()}

    def create(users, user_keys, s):
        for name, key in keys.items():
            user_keys.add(users.create(name, PASSWORD), key)
        users.create("frank", PASSWORD)
    on(cluster.master, create)
    settled(cluster)
    node = cluster.sshd_slave
    prefix = ["--prefix", str(node.root)]
    subprocess.run(["userdel", *prefix, "dave"], check=True)  # a deleted account
    node.authorized_keys("erin").write_text(new_key() + "\n")  # tampered keys
    subprocess.run(["useradd", *prefix, "-m", "mallory"], check=True)  # not ezpyr's
    # an account of a user deleted while its task was lost
    cluster.master.kill_worker()
    on(cluster.master, lambda users, user_keys, s: users.delete(user(users, "frank")))
    with cluster.master.env.engine.begin() as conn:
        conn.execute(AccountTask.__table__.delete())
    cluster.master.start_worker()
    assert "frank" in node.passwd()

    preview = reconcile(cluster, "--node", "other", "--dry-run")[0]
    assert preview["create"] == ["dave"] and preview["change"] == ["erin"] and preview["remove"] == ["frank"]
    assert "frank" in node.passwd() and "dave" not in node.passwd()  # a dry run changes nothing
    done = reconcile(cluster, "--node", "other")[0]
    assert done["to_do"] == 3 and done["errors"] == []
    assert accounts_on(node, managed_only=True) == wanted(cluster.master)
    assert "mallory" in node.passwd()  # never touched
    # this node kept frank's account as well (its task was lost too)
    assert [r["remove"] for r in reconcile(cluster, "--dry-run")] == [["frank"], []]
    reconcile(cluster)
    assert "frank" not in cluster.sshd_master.passwd()
    assert [r["to_do"] for r in reconcile(cluster, "--dry-run")] == [0, 0]
