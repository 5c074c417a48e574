"""Grant → secondary install → Add, on both back ends, with real panel and
worker processes; and each way Add is refused, leaving both nodes as they
were."""
from __future__ import annotations

import pytest

from ezpyr.cluster.add import check_secondary
from ezpyr.replication.schema import code_revision
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.users.models import User
from ezpyr.users.services import UserService
from ezpyr.passwords import Passwords
from ezpyr.validation import Invalid
from tests.cluster_nodes import primary_and_secondary, wait_until
from tests.conftest import CHEAP_ARGON2

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(tmp_path, backend, tmp_path_factory):
    """A primary with data, and a secondary installed for it (own key file:
    Add hands it the cluster's key)."""
    primary, secondary = primary_and_secondary(tmp_path, backend, tmp_path_factory)
    yield primary, secondary
    primary.close()
    secondary.close()


def fill(node, servers=5000, users=500):
    with node.env.session(actor="test") as s:
        groups = [ServerGroup(name=f"sg{i}") for i in range(20)]
        s.add_all(groups)
        s.add_all(Server(name=f"srv{i:05d}", host=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                         group=groups[i % 20], auth_method="password" if i % 7 == 0 else "key",
                         password_encrypted=node.env.secret_box.encrypt(f"pw{i}") if i % 7 == 0 else None)
                  for i in range(servers))
        service = UserService(s, Passwords.from_settings(CHEAP_ARGON2))
        for i in range(users):
            service.create(f"user{i:04d}", "Pass-word-1234", skip_policy=True)


def test_add_copies_everything_and_starts_replication(pair):
    primary, secondary = pair
    fill(primary)
    primary.start()
    secondary.start()
    page_status = secondary.status()
    assert page_status["node"]["state"] == "secondary awaiting setup"
    primary.run("ezpyr-grant-host", "127.0.0.1")
    result = primary.run("ezpyr-cluster", "add", secondary.address, "--setup-key", secondary.setup_key)
    assert "is now this node's slave" in result.stdout
    assert primary.status()["node"]["role"] == "master"
    assert secondary.status()["node"]["role"] == "slave"
    assert secondary.count(Server) == 5000 and secondary.count(User) == 501
    verify = primary.cluster("verify")
    assert verify["in_sync"], verify
    # the secondary decrypts the copied secrets: it was given the cluster's key
    with secondary.env.session() as s:
        stored = s.query(Server).filter(Server.name == "srv00007").one().password_encrypted
    assert secondary.env.secret_box.decrypt(stored) == "pw7"
    with primary.env.session(actor="test") as s:  # replication runs from the snapshot on
        s.add(ServerGroup(name="after-add"))
    wait_until(lambda: secondary.count(ServerGroup) == 21, 30, message="a change after Add to arrive")
    wait_until(lambda: primary.status()["status"] == "connected", 30)
    for node in (primary, secondary):  # rough edge 12: Add leaves no warning behind
        logs = node.logs()
        assert "UNIQUE constraint failed" not in logs and "does not match this node's secret key" not in logs
    # the setup key worked once
    again = primary.run("ezpyr-cluster", "add", secondary.address, "--setup-key", secondary.setup_key,
                        check=False)
    assert again.returncode == 2 and "already has another node" in again.stderr


def test_add_is_refused_with_a_clear_message_and_changes_nothing(pair):
    primary, secondary = pair
    fill(primary, servers=50, users=5)
    primary.start()
    secondary.start()

    def add(key=None):
        return primary.run("ezpyr-cluster", "add", secondary.address, "--setup-key",
                           key or secondary.setup_key, check=False)

    def unchanged():
        assert primary.status()["other_node"] is None and primary.status()["node"]["role"] == "standalone"
        assert secondary.status()["node"]["state"] == "secondary awaiting setup"
        assert secondary.count(Server) == 0

    ungranted = add()
    assert ungranted.returncode == 2 and "is not granted" in ungranted.stderr
    unchanged()
    primary.run("ezpyr-grant-host", "127.0.0.1")
    wrong_key = add("not-the-key")
    assert wrong_key.returncode == 2 and "refused the setup key" in wrong_key.stderr
    unchanged()
    with secondary.env.engine.begin() as conn:  # the secondary's database is a revision behind
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0006'")
    stale = add()
    assert stale.returncode == 2 and "schema revision 0006" in stale.stderr
    unchanged()
    with secondary.env.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{code_revision()}'")
    assert add().returncode == 0  # the same secondary can be added once the cause is fixed


def test_each_mismatch_has_its_own_message():
    good = {"version": __import__("ezpyr").__version__, "build": "1",
            "schema_revision": code_revision(), "role": "secondary"}
    check_secondary(good)
    for field, value, words in (("version", "9.9.9", "runs ezpyr 9.9.9"),
                                ("build", "77", "is build 77"),
                                ("schema_revision", "0001", "schema revision 0001"),
                                ("role", "slave", "in state 'slave'")):
        with pytest.raises(Invalid, match=words):
            check_secondary({**good, field: value})


def test_a_panel_add_is_refused_while_a_cli_add_runs(pair):
    """The CLI's Add runs as a job of its own process; the panel (another
    process) refuses a second Add with a message naming it, and the first
    one completes."""
    import signal
    import subprocess

    import webtest
    from pyramid.paster import get_app
    from sqlalchemy import select

    from ezpyr.jobs.models import Job
    from tests.cluster_nodes import ADMIN_PASSWORD, BIN
    from tests.factories import csrf_from, login

    primary, secondary = pair
    fill(primary, servers=50, users=5)
    primary.start()
    secondary.start()
    primary.run("ezpyr-grant-host", "127.0.0.1")
    secondary.panel.send_signal(signal.SIGSTOP)  # the CLI's Add waits on the secondary's answer
    cli = subprocess.Popen([str(BIN / "ezpyr-cluster"), str(primary.ini), "add", secondary.address,
                            "--setup-key", secondary.setup_key], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        def add_job():
            with primary.env.session() as s:
                return s.scalars(select(Job).where(Job.kind == "add", Job.state == "running")).first()
        job = wait_until(add_job, 60, message="the CLI's Add to be running")
        assert job.created_by == "cli"
        app = webtest.TestApp(get_app(str(primary.ini)), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        login(app, "admin", ADMIN_PASSWORD)
        page = app.get("/cluster")
        refused = app.post("/cluster/add", {"address": secondary.address, "setup_key": secondary.setup_key,
                                            "csrf_token": csrf_from(page)})
        assert "Add is already running on this node (started by cli at" in refused.text
        with primary.env.session() as s:
            assert s.scalars(select(Job.id).where(Job.kind == "add")).all() == [job.id]
    finally:
        secondary.panel.send_signal(signal.SIGCONT)
        out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert "is now this node's slave" in out
    assert secondary.status()["node"]["role"] == "slave"
