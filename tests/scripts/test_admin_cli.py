"""ezpyr-admin on a fresh node (ezpyr-init) of each back end. Most actions
call the script's ``main`` in this process (run_in_process: same argument
parsing, output, exit codes and log lines, without a second of start-up per
call); the installed script is run as a real process where that is the
point (test_the_installed_script_runs_as_a_process, usage errors, the
terminal's progress bar, the import's kill -9)."""
from __future__ import annotations

import getpass
import json
import os
import re
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import insert, select, update

from ezpyr.activity.models import ActivityEntry
from ezpyr.database import make_engine, make_session_factory
from ezpyr.jobs.models import Job
from ezpyr.meta import load_all_models, utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.passwords import Passwords
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.writes import applying
from ezpyr.secretbox import secret_box_from_settings
from ezpyr.servers.models import Server
from ezpyr.users.models import User
from tests.conftest import CHEAP_ARGON2
from support.net import wait_until
from ezpyr.scripts.admin import main as admin_main
from ezpyr.scripts.init import main as init_main
from tests.scripts.conftest import BIN, run_in_process

ADMIN_PASSWORD = "Admin-pass-123"
KEY = Ed25519PrivateKey.generate().public_key().public_bytes(
    Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + " alice@laptop"
HEADER = "name,host,port,remote_user,auth_method,group,description\n"


@pytest.fixture
def node(node):
    """The node, set up by ezpyr-init (migrated, with the admin "admin")."""
    done = run_in_process(init_main, node.ini, "--admin-password", ADMIN_PASSWORD, "--quiet")
    assert done.returncode == 0, done.stderr
    return node


def admin(node, *args, stdin: str = "") -> subprocess.CompletedProcess:
    """ezpyr-admin CONFIG ARGS, ``stdin`` on its standard input."""
    return run_in_process(admin_main, node.ini, *args, stdin=stdin)


def admin_process(node, *args, stdin: str = "") -> subprocess.CompletedProcess:
    """ezpyr-admin CONFIG ARGS as a real process of the installed script."""
    env = {k: v for k, v in os.environ.items() if k != "EZPYR_SECRET_KEY"}
    return subprocess.run([str(BIN / "ezpyr-admin"), str(node.ini), *map(str, args)],
                          input=stdin, capture_output=True, text=True, timeout=60, env=env)


def ok(node, *args, stdin: str = "") -> str:
    done = admin(node, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def data(node, *args, stdin: str = "") -> dict:
    return json.loads(ok(node, *args, "--json", stdin=stdin))


class Database:
    def __init__(self, node):
        self.engine = make_engine({"sqlalchemy.url": node.db_url})
        self.session_factory = make_session_factory(self.engine)

    def snapshot(self, leave_out=()) -> dict:
        """Every row of every table (but those named in ``leave_out``):
        equal snapshots mean nothing changed."""
        with self.engine.connect() as conn:
            return {t.name: sorted(map(repr, conn.execute(t.select())))
                    for t in load_all_models().sorted_tables if t.name not in leave_out}

    def scalars(self, stmt) -> list:
        with self.session_factory() as session:
            return list(session.scalars(stmt))

    def activity(self) -> list[tuple]:
        with self.session_factory() as session:
            return [(e.action, e.target, e.details, e.username, e.remote_addr) for e in
                    session.scalars(select(ActivityEntry).order_by(ActivityEntry.id))]


@pytest.fixture
def db(node):
    database = Database(node)
    yield database
    database.engine.dispose()


def refused(node, db, *args, stdin: str = "", says: str, leave_out=()) -> dict:
    """The command (with --json) fails with exit 2, {"error": ...} saying
    ``says`` on stdout and nothing on stderr, and changes nothing (but the
    tables named in ``leave_out``: a refused import job's own row); returns
    that JSON."""
    before = db.snapshot(leave_out)
    done = admin(node, *args, "--json", stdin=stdin)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert done.stderr == ""
    error = json.loads(done.stdout)
    assert says in error["error"] or any(says in e for e in error.get("errors", []))
    assert db.snapshot(leave_out) == before
    return error


def test_users_keys_and_user_groups(node, db):
    assert ok(node, "user-groups", "add", "ops", "--description", "Operations") == \
        "created user group ops\n"

    added = data(node, "users", "add", "alice", "--group", "ops", "--full-name", "Alice A",
                 "--email", "alice@example.com")
    password = added.pop("password")
    assert added["message"] == "created user alice (user)"
    user = added["user"]
    assert {k: user[k] for k in ("username", "full_name", "email", "role", "group", "suspended",
                                 "totp_enabled", "locked", "keys")} == {
        "username": "alice", "full_name": "Alice A", "email": "alice@example.com",
        "role": "user", "group": "ops", "suspended": False, "totp_enabled": False,
        "locked": False, "keys": 0}
    passwords = Passwords.from_settings(CHEAP_ARGON2)
    (stored,) = db.scalars(select(User).where(User.username == "alice"))
    assert passwords.verify(stored.password_hash, password)

    out = ok(node, "users", "add", "bob", "--role", "admin", "--password-stdin",
             stdin="Bob-pass-2024\n")
    assert out == "created user bob (admin)\n"  # a typed password is never printed
    (bob,) = db.scalars(select(User).where(User.username == "bob"))
    assert passwords.verify(bob.password_hash, "Bob-pass-2024")

    listed = data(node, "users", "list", "--search", "ali")["users"]
    assert [u["username"] for u in listed] == ["alice"]
    table = ok(node, "users", "list").splitlines()
    assert table[0].split() == ["USERNAME", "ROLE", "GROUP", "STATUS", "2FA", "KEYS", "FULL",
                                "NAME"]
    assert [line.split()[0] for line in table[1:]] == ["admin", "alice", "bob"]

    key = data(node, "keys", "add", "alice", "--key", KEY)["key"]
    assert key["name"] == "alice@laptop" and key["fingerprint"].startswith("SHA256:")
    shown = data(node, "users", "show", "alice")
    assert [k["fingerprint"] for k in shown["keys"]] == [key["fingerprint"]] and shown["user"]["keys"] == 1

    assert ok(node, "users", "edit", "alice", "--rename", "alice2", "--role", "admin",
              "--no-group") == "saved user alice2 (was alice)\n"
    assert ok(node, "users", "suspend", "alice2").startswith("suspended alice2")
    assert data(node, "users", "show", "alice2")["user"]["suspended"] is True
    assert ok(node, "users", "reinstate", "alice2").startswith("reinstated alice2")
    out = ok(node, "users", "reset-password", "alice2")
    (generated,) = [line.split(": ", 1)[1].split()[0] for line in out.splitlines()
                    if line.startswith("password for alice2: ")]
    assert passwords.verify(db.scalars(select(User).where(User.username == "alice2"))[0]
                            .password_hash, generated)
    ok(node, "users", "reset-2fa", "alice2")
    assert ok(node, "keys", "list", "alice2").splitlines()[1].startswith(key["fingerprint"])
    ok(node, "keys", "delete", "alice2", key["fingerprint"])
    assert data(node, "keys", "list", "alice2") == {"user": "alice2", "keys": []}

    refused(node, db, "users", "delete", "alice2",
            says="Deleting user alice2 cannot be undone; add --yes to delete.")
    deleted = data(node, "users", "delete", "alice2", "--yes")
    assert deleted["deleted"] == "alice2"
    assert ok(node, "user-groups", "edit", "ops", "--rename", "operators") == \
        "saved user group operators (was ops)\n"
    assert data(node, "user-groups", "list")["user_groups"][0]["name"] == "operators"
    ok(node, "user-groups", "delete", "operators")
    assert data(node, "user-groups", "list") == {"user_groups": []}

    assert db.activity() == [(*entry, "cli", "cli") for entry in [
        ("user_group.create", "ops", ""), ("user.create", "alice", ""),
        ("user.create", "bob", ""), ("user.key_add", "alice", key["fingerprint"]),
        ("user.update", "alice2", "renamed from alice"),
        ("user.suspend", "alice2", ""), ("user.reinstate", "alice2", ""),
        ("user.password_reset", "alice2", "generated"), ("user.reset_2fa", "alice2", ""),
        ("user.key_delete", "alice2", key["fingerprint"]), ("user.delete", "alice2", "0 SSH keys and 0 access rules removed"),
        ("user_group.update", "operators", "renamed from ops"),
        ("user_group.delete", "operators", "0 access rules and 0 command rules removed"),
    ]]
    actors = {e.actor for e in
              db.scalars(select(OutboxEntry).where(OutboxEntry.actor.like("cli%")))}
    assert actors == {f"cli:{getpass.getuser()}"}


def test_bad_user_input_is_refused_and_changes_nothing(node, db):
    ok(node, "user-groups", "add", "ops")
    ok(node, "users", "add", "carol", "--group", "ops", "--password-stdin",
       stdin="Carol-pass-2024\n")
    plain = admin(node, "users", "add", "Bad Name")  # without --json: stderr only
    assert (plain.returncode, plain.stdout) == (2, "")
    assert plain.stderr == ("ezpyr-admin: A username is 1 to 32 characters: lower-case letters, "
                            "digits, '_' or '-', starting with a letter or '_'.\n")
    refused(node, db, "users", "add", "Bad Name",
            says="A username is 1 to 32 characters")
    refused(node, db, "users", "add", "dave", "--group", "nope",
            says="There is no user group named 'nope'")
    refused(node, db, "users", "add", "carol", says="A user named 'carol' already exists.")
    refused(node, db, "users", "add", "dave", "--password-stdin", stdin="short\n",
            says="Password must be at least 10 characters long.")
    refused(node, db, "users", "add", "dave", "--password-stdin", stdin="",
            says="--password-stdin: no password on standard input")
    refused(node, db, "users", "show", "nobody", says="There is no user named 'nobody'.")
    refused(node, db, "users", "delete", "admin", "--yes",
            says="admin is the last active admin, so you cannot delete them")
    refused(node, db, "users", "unlock", "carol", says="carol is not locked on this node.")
    refused(node, db, "keys", "add", "carol", "--key", "ssh-ed25519 AAAAnotakey",
            says="That is not a valid OpenSSH public key")
    refused(node, db, "user-groups", "delete", "ops",
            says="User group 'ops' still has 1 member; move or delete them first.")
    refused(node, db, "user-groups", "add", "ops", says="A user group named 'ops' already exists.")


def test_servers_and_server_groups(node, db):
    assert data(node, "server-groups", "add", "web", "--description", "front ends")[
        "server_group"]["name"] == "web"
    web1 = data(node, "servers", "add", "web1", "--host", "10.0.0.1", "--group", "web")["server"]
    assert {k: web1[k] for k in ("name", "host", "port", "remote_user", "auth_method",
                                 "has_password", "group")} == {
        "name": "web1", "host": "10.0.0.1", "port": 22, "remote_user": "root",
        "auth_method": "key", "has_password": False, "group": "web"}
    assert ok(node, "servers", "add", "db1", "--host", "db1.example.com", "--port", "2222",
              "--remote-user", "deploy", "--auth", "password", "--password-stdin",
              stdin="S3cret pass\n") == "created server db1 (deploy@db1.example.com:2222)\n"
    (stored,) = db.scalars(select(Server).where(Server.name == "db1"))
    assert "S3cret" not in stored.password_encrypted
    box = secret_box_from_settings({"ezpyr.secret_key_file": str(node.var / "secret.key")})
    assert box.decrypt(stored.password_encrypted) == "S3cret pass"

    assert [s["name"] for s in data(node, "servers", "list", "--group", "web")["servers"]] == \
        ["web1"]
    assert [s["name"] for s in data(node, "servers", "list", "--no-group")["servers"]] == ["db1"]
    assert ok(node, "servers", "list", "--search", "example").splitlines()[1].split() == \
        ["db1", "db1.example.com", "2222", "deploy", "password", "-"]

    ok(node, "servers", "edit", "db1", "--description", "=cmd()", "--group", "web")
    (stored2,) = db.scalars(select(Server).where(Server.name == "db1"))
    assert stored2.password_encrypted == stored.password_encrypted  # the password stays
    exported = admin(node, "servers", "export")
    assert exported.returncode == 0
    assert exported.stdout == (  # (text mode reads the CSV's \r\n as \n)
        HEADER + "db1,db1.example.com,2222,deploy,password,web,'=cmd()\n"
        + "web1,10.0.0.1,22,root,key,web,\n")
    out_file = node.ini.parent / "servers.csv"
    assert data(node, "servers", "export", "--output", out_file)["output"] == str(out_file)
    assert "db1,db1.example.com" in out_file.read_text()

    ok(node, "server-groups", "edit", "web", "--rename", "webs")
    (group,) = data(node, "server-groups", "list")["server_groups"]
    assert {k: group[k] for k in ("name", "description", "servers")} == {
        "name": "webs", "description": "front ends", "servers": 2}
    refused(node, db, "servers", "delete", "web1",
            says="Deleting server web1 cannot be undone; add --yes to delete.")
    assert ok(node, "servers", "delete", "web1", "--yes") == \
        "deleted server web1: 0 access rules removed\n"
    assert ok(node, "server-groups", "delete", "webs") == (
        "deleted server group webs: 1 server left without a group, 0 access rules removed\n")
    assert [s["group"] for s in data(node, "servers", "list")["servers"]] == [None]
    assert [a[0] for a in db.activity()] == [
        "server_group.create", "server.create", "server.create", "server.update",
        "server.export", "server.export", "server_group.update", "server.delete",
        "server_group.delete"]


def test_bad_server_input_is_refused_and_changes_nothing(node, db):
    ok(node, "servers", "add", "web1", "--host", "web1.example.com")
    refused(node, db, "servers", "add", "WEB1", "--host", "10.0.0.2",
            says="A server named 'WEB1' already exists.")
    refused(node, db, "servers", "add", "web2", "--host", "web2;reboot",
            says="Host must be a host name")
    refused(node, db, "servers", "add", "web2", "--host", "10.0.0.2", "--group", "nope",
            says="There is no server group named 'nope'")
    refused(node, db, "servers", "add", "web2", "--host", "10.0.0.2", "--auth", "password",
            says="A password is required when the gateway logs in with a password.")
    error = refused(node, db, "servers", "add", "bad name", "--host=-oProxy", "--port", "0",
                    says="Port must be a number from 1 to 65535.")
    assert len(error["errors"]) == 3  # every field's error, not only the first
    refused(node, db, "servers", "edit", "web1", "--remote-user", "Root!",
            says="Remote user must be 1 to 32 characters")
    refused(node, db, "servers", "edit", "nope", "--port", "23",
            says="There is no server named 'nope'.")
    refused(node, db, "server-groups", "add", "", says="A name is required.")


def test_import_is_all_or_nothing(node, db):
    ok(node, "server-groups", "add", "web")
    bad = node.ini.parent / "bad.csv"
    bad.write_text(HEADER + "n1,10.0.0.1,22,root,key,web,\n"
                   + "n2,bad host,22,root,key,,\n"
                   + "n1,10.0.0.3,99999,root,key,nogroup,\n")
    # the job that checked the file stays, failed, with its errors: nothing else changes
    error = refused(node, db, "servers", "import", bad, says="line 3: host must be a host name",
                    leave_out=("jobs",))
    assert error["error"] == (f"4 errors in {bad}; nothing was imported. Fix them and import "
                              "the file again.")
    assert error["errors"][1:] == [
        "line 4: the name 'n1' is already used on line 2 of this file.",
        "line 4: port must be a number from 1 to 65535.",
        "line 4: there is no server group named 'nogroup'; create it first or leave the "
        "group empty.",
    ]
    (job,) = db.scalars(select(Job))
    assert (job.kind, job.state, job.refused, job.lock) == ("servers-import", "failed", True, None)

    good = node.ini.parent / "good.csv"
    good.write_text(HEADER + "n1,10.0.0.1,22,root,key,web,\nn2,n2.example.com,2222,deploy,key,,x\n")
    done = data(node, "servers", "import", good)
    assert done.pop("job") in {j.id for j in db.scalars(select(Job))}
    assert done == {"message": "imported 2 servers", "imported": 2}
    assert [(s["name"], s["group"]) for s in data(node, "servers", "list")["servers"]] == [
        ("n1", "web"), ("n2", None)]
    assert db.activity()[-1][:3] == ("server.import", "2 servers", "")
    actors = {e.actor for e in db.scalars(select(OutboxEntry))
              if any(c["table"] == "servers" for c in json.loads(e.changes))}
    assert actors == {f"cli:{getpass.getuser()}"}
    assert ok(node, "servers", "import", "-", stdin=HEADER + "n3,10.0.0.3,22,root,key,,\n") == \
        "imported 1 server\n"  # standard input; no progress bar off a terminal


def test_an_unreadable_file_is_refused_before_any_job(node, db):
    """Each refused at once, exit 2, nothing changed (not even a job row)."""
    files = node.ini.parent
    (files / "empty.csv").write_bytes(b"")
    (files / "header.csv").write_text(HEADER)
    (files / "latin1.csv").write_bytes(HEADER.encode() + "caf\xe9,h,22,root,key,,\n".encode("latin-1"))
    (files / "wrong.csv").write_text("name,address\nweb1,10.0.0.1\n")
    with open(files / "huge.csv", "wb") as f:  # one byte over the limit
        f.write(HEADER.encode())
        f.write(b"x" * (50 * 1024 * 1024 + 1 - len(HEADER)))
    for name, says in [
            ("empty.csv", "The file is empty: it needs a header line and a line per server. Nothing was imported."),
            ("header.csv", "The file has a header but no servers. Nothing was imported."),
            ("latin1.csv", "The file is not UTF-8 text (line 2 has a byte that is not UTF-8)."),
            ("wrong.csv", "it lacks the columns host, port, remote_user, auth_method, group, description; "
                          "it has unknown column 'address'."),
            ("huge.csv", "The file is larger than 50 MB; split it into smaller files. Nothing was imported."),
            ("missing.csv", "No such file or directory. Nothing was imported.")]:
        refused(node, db, "servers", "import", files / name, says=says)
    plain = admin(node, "servers", "import", files / "empty.csv")  # without --json: one line on stderr
    assert (plain.returncode, plain.stdout) == (2, "")
    assert plain.stderr == ("ezpyr-admin: The file is empty: it needs a header line and a line per server. "
                            "Nothing was imported.\n")
    assert db.scalars(select(Job)) == []


def run_on_a_terminal(argv: list[str], timeout: float = 120) -> tuple[int, str, str]:
    """Run ``argv`` with its standard error on a pseudo-terminal (as a person
    at a shell sees it); returns (exit code, stdout, what the terminal got)."""
    import pty
    import select as select_fd

    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "EZPYR_SECRET_KEY"}
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, env=env)
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select_fd.select([controller], [], [], timeout)
        if not ready:
            child.kill()
            raise AssertionError(f"no output for {timeout} s; so far: {seen[-2000:]!r}")
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    out = child.stdout.read().decode()
    return child.wait(timeout), out, seen.decode(errors="replace")


def test_import_of_5000_servers_shows_its_progress_on_a_terminal(node, db):
    rows = "".join(f"s{i:05d},10.0.{i // 256}.{i % 256},22,root,key,,\n" for i in range(5000))
    big = node.ini.parent / "fleet.csv"
    big.write_text(HEADER + rows)
    code, out, terminal = run_on_a_terminal([str(BIN / "ezpyr-admin"), str(node.ini), "servers", "import", str(big)])
    assert code == 0, terminal
    assert out == "imported 5,000 servers\n"
    bars = [b for b in terminal.replace("\x1b[K", "").split("\r") if b.startswith("[")]
    # the bar is drawn from the job's row a few times a second: which of its steps (rows
    # checked, adding, servers added: test_import_job.py) show depends on the pace
    percents = [int(re.match(r"\[[#.]{30}\] +([0-9]+)%  ", b).group(1)) for b in bars]
    assert len(bars) >= 2 and percents == sorted(percents), terminal[-2000:]
    assert bars[-1].startswith("[" + "#" * 30 + "] 100%  5,000 servers added from "), bars[-1]
    assert len(data(node, "servers", "list")["servers"]) == 5000

    # the same file again: every row refused, the first 100 errors printed and the count of the rest
    code, out, terminal = run_on_a_terminal([str(BIN / "ezpyr-admin"), str(node.ini), "servers", "import", str(big)])
    assert (code, out) == (2, "")
    lines = [line for line in terminal.replace("\r", "\n").splitlines() if line.startswith("ezpyr-admin: ")]
    assert lines[0] == "ezpyr-admin: line 2: a server named 's00000' already exists."
    assert lines[100:] == ["ezpyr-admin: … and 4,900 more",
                           f"ezpyr-admin: 5,000 errors in {big}; nothing was imported. Fix them and import "
                           "the file again."]
    error = refused(node, db, "servers", "import", big, says="5,000 errors in", leave_out=("jobs",))
    assert len(error["errors"]) == 100 and error["error_count"] == 5000  # --json: no bar, one object


def test_a_second_import_while_one_runs_is_refused(node, db):
    from ezpyr.jobs.services import JobService, this_process

    with db.session_factory() as session:
        running = JobService(session).create("servers-import", "alice", "import big.csv", lock="servers-import")
        running.state, running.owner = "running", this_process()  # this test's process: alive
        session.commit()
    good = node.ini.parent / "good.csv"
    good.write_text(HEADER + "n1,10.0.0.1,22,root,key,,\n")
    error = refused(node, db, "servers", "import", good,
                    says="Import servers is already running on this node (started by alice at ")
    assert error["error"].endswith("wait for it to finish, then try again.")


def sqlite_write_locked(path) -> bool:
    """Whether a transaction holds the SQLite database's write lock."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()  # (and with it the lock this probe took)
    return False


def test_an_import_killed_mid_insert_adds_nothing(node, db):
    """kill -9 while the servers are being inserted: the transaction dies
    with the process, not one server stays. On MariaDB the test holds the
    insert at its third thousand rows (an uncommitted row of the same name
    makes it wait) and kills it there; on SQLite (one transaction, no
    progress written during it) it kills the import once the job says it
    is adding and the import's transaction holds the database's write lock."""
    count = 5000 if node.backend == "mariadb" else 20000
    big = node.ini.parent / "fleet.csv"
    big.write_text(HEADER + "".join(f"s{i:05d},10.{i // 65536}.{i // 256 % 256}.{i % 256},22,root,key,,\n"
                                    for i in range(count)))
    before = db.snapshot(leave_out=("jobs", "activity_log"))
    blocker = None
    if node.backend == "mariadb":
        blocker = db.engine.connect()
        blocker.begin()
        with applying(blocker):  # a row of its own, never committed
            blocker.execute(insert(Server.__table__).values(
                id="blocker", name="s02500", host="10.0.0.1", port=22, remote_user="root",
                auth_method="key", description="", created_at=utcnow(), updated_at=utcnow()))

        def inserting():
            return any(j.message == "servers added: 2,000 of 5,000" for j in db.scalars(select(Job)))
    else:
        def inserting():
            return (any(j.message == f"adding {count:,} servers" for j in db.scalars(select(Job)))
                    and sqlite_write_locked(node.sqlite_file))
    env = {k: v for k, v in os.environ.items() if k != "EZPYR_SECRET_KEY"}
    child = subprocess.Popen([str(BIN / "ezpyr-admin"), str(node.ini), "servers", "import", str(big), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        wait_until(lambda: inserting() or child.poll() is not None, 120, interval=0.01,
                   message="the import to insert")
        child.kill()
        child.wait(10)
    finally:
        if blocker is not None:
            blocker.rollback()
            blocker.close()
    assert child.returncode == -9, "the import ended before the kill: the test did not hold it"
    assert db.snapshot(leave_out=("jobs", "activity_log")) == before  # not one server, no outbox entry
    (job,) = db.scalars(select(Job))
    assert job.state == "running" and job.lock == "servers-import"  # until someone looks
    done = data(node, "servers", "import", big)  # finds it interrupted, frees the lock, imports
    assert done["imported"] == count
    (job, _) = sorted(db.scalars(select(Job)), key=lambda j: j.created_at)
    assert (job.state, job.lock) == ("failed", None) and "interrupted" in job.error


def test_access_rules_and_the_command_guard(node, db):
    ok(node, "user-groups", "add", "ops")
    ok(node, "users", "add", "alice", "--group", "ops")
    ok(node, "server-groups", "add", "web")
    ok(node, "servers", "add", "web1", "--host", "10.0.0.1", "--group", "web")
    ok(node, "servers", "add", "db1", "--host", "10.0.0.2")

    by_group = data(node, "access", "add", "--user-group", "ops", "--server-group", "web")
    rule = by_group["access_rule"]
    assert ({k: rule[k] for k in ("subject", "target", "label")}
            | {"subject": {k: rule["subject"][k] for k in ("kind", "name")},
               "target": {k: rule["target"][k] for k in ("kind", "name")}}) == {
        "subject": {"kind": "user_group", "name": "ops"},
        "target": {"kind": "server_group", "name": "web"},
        "label": "user group ops → server group web"}
    assert ok(node, "access", "add", "--user", "alice", "--server", "db1").startswith(
        "added access rule ")
    refused(node, db, "access", "add", "--user", "alice", "--server", "db1",
            says="This rule already exists")
    refused(node, db, "access", "add", "--user-group", "nope", "--server", "db1",
            says="There is no user group named 'nope'")
    assert len(data(node, "access", "list")["access_rules"]) == 2

    effective = data(node, "access", "effective", "alice")
    assert [(s["name"], s["via"]) for s in effective["servers"]] == [
        ("db1", ["user alice → server db1"]), ("web1", ["user group ops → server group web"])]
    text = ok(node, "access", "effective", "alice").splitlines()
    assert text[0] == "alice may reach 2 servers:"
    ok(node, "access", "delete", rule["id"])
    assert [s["name"] for s in data(node, "access", "effective", "alice")["servers"]] == ["db1"]
    refused(node, db, "access", "delete", rule["id"], says="There is no access rule with id")

    guard = data(node, "guard", "add", "--group", "ops", "--pattern", r"^rm\s+-rf",
                 "--description", "no wiping")["command_rule"]
    assert {k: guard[k] for k in ("user_group", "pattern", "description")} == {
        "user_group": "ops", "pattern": r"^rm\s+-rf", "description": "no wiping"}
    refused(node, db, "guard", "add", "--group", "ops", "--pattern", "rm (",
            says="This is not a valid regular expression")
    refused(node, db, "guard", "add", "--group", "nope", "--pattern", "x",
            says="There is no user group named 'nope'")
    assert [r["id"] for r in data(node, "guard", "list")["command_rules"]] == [guard["id"]]

    test = admin(node, "guard", "test", "--user", "alice", "rm -rf /", "--json")
    assert test.returncode == 1  # refused
    verdict = json.loads(test.stdout)
    assert (verdict["allowed"], verdict["user_group"], verdict["user"], verdict["rules_checked"],
            [r["id"] for r in verdict["refused_by"]]) == (False, "ops", "alice", 1, [guard["id"]])
    assert ok(node, "guard", "test", "--group", "ops", "ls -la") == \
        "allowed for user group ops: 1 rule checked, none matches\n"
    ok(node, "user-groups", "add", "dev")
    edited = data(node, "guard", "edit", guard["id"], "--group", "dev", "--pattern", r"^rm\s+-r")
    assert edited["message"] == rf"saved command rule {guard['id']} (dev: ^rm\s+-r) (was ops: ^rm\s+-rf)"
    assert {k: edited["command_rule"][k] for k in ("user_group", "pattern", "description")} == {
        "user_group": "dev", "pattern": r"^rm\s+-r", "description": "no wiping"}
    assert ok(node, "guard", "edit", guard["id"], "--description", "") == \
        f"saved command rule {guard['id']} (dev: ^rm\\s+-r)\n"
    other = data(node, "guard", "add", "--group", "dev", "--pattern", "^halt")["command_rule"]
    refused(node, db, "guard", "edit", other["id"], "--pattern", r"^rm\s+-r",
            says="User group dev already has a rule with this pattern.")
    refused(node, db, "guard", "edit", other["id"], "--pattern", "(a|aa)+$", says="exponential time")
    refused(node, db, "guard", "edit", other["id"], "--group", "nope", says="There is no user group named 'nope'")
    refused(node, db, "guard", "edit", "no-such-id", "--pattern", "x", says="There is no command rule with id")
    ok(node, "guard", "delete", guard["id"])
    assert [r["pattern"] for r in data(node, "guard", "list")["command_rules"]] == ["^halt"]
    assert [a[:3] for a in db.activity() if a[0].startswith(("access.", "guard."))] == [
        ("access.create", "user group ops → server group web", ""),
        ("access.create", "user alice → server db1", ""),
        ("access.delete", "user group ops → server group web", ""),
        ("guard.create", r"ops: ^rm\s+-rf", ""),
        ("guard.update", r"dev: ^rm\s+-r", r"was ops: ^rm\s+-rf"),
        ("guard.update", r"dev: ^rm\s+-r", ""),
        ("guard.create", "dev: ^halt", ""),
        ("guard.delete", r"dev: ^rm\s+-r", "")]


def test_settings(node, db):
    assert data(node, "settings", "show")["settings"]["lockout_threshold"] == 5
    changed = data(node, "settings", "set", "lockout_threshold=7", "totp_required=on",
                   "session_timeout_minutes=30")
    assert changed["changed"] == {"lockout_threshold": 7, "totp_required": True}
    assert changed["settings"]["lockout_threshold"] == 7
    assert db.activity()[-1][:3] == ("settings.update", "settings",
                                     "lockout_threshold=7, totp_required=True")
    assert "nothing changed" in ok(node, "settings", "set", "lockout_threshold=7")
    refused(node, db, "settings", "set", "lockout_minutes=9", "lockout_threshold=0",
            says="lockout_threshold: Failed sign-ins before lockout must be a whole number "
                 "from 1 to 100.")
    refused(node, db, "settings", "set", "password_min_length=ten",
            says="password_min_length: Minimum password length must be a whole number "
                 "from 8 to 128, not 'ten'.")
    refused(node, db, "settings", "set", "totp_required=maybe",
            says="totp_required: Two-factor sign-in required for everyone must be on or off")
    refused(node, db, "settings", "set", "colour=blue", says="There is no setting named 'colour'")
    assert ok(node, "settings", "show").splitlines()[5].split()[:2] == ["lockout_threshold", "7"]


def test_a_slave_refuses_changes(node, db):
    ok(node, "user-groups", "add", "ops")
    with db.session_factory() as session:
        session.execute(update(NodeIdentity).values(role="slave"))
        session.commit()
    error = refused(node, db, "users", "add", "dave",
                    says="This node is slave; it does not accept changes. Nothing was changed.")
    assert "password" not in error  # a generated password is only shown once it is stored
    refused(node, db, "user-groups", "delete", "ops",
            says="This node is slave; it does not accept changes.")
    assert [g["name"] for g in data(node, "user-groups", "list")["user_groups"]] == ["ops"]


def test_api_tokens_on_the_command_line(node, db):
    made = data(node, "tokens", "add", "nightly", "--owner", "admin", "--read-write", "--expires-days", "7")
    assert made["secret"].startswith("ezp_") and made["token"]["read_only"] is False
    listed = data(node, "tokens", "list")["tokens"]
    assert [t["name"] for t in listed] == ["nightly"] and made["secret"] not in json.dumps(listed)
    assert made["secret"] not in json.dumps(db.snapshot())  # only its hash is stored
    refused(node, db, "tokens", "add", "nightly", "--owner", "admin", says="exists already")
    refused(node, db, "tokens", "add", "other", "--owner", "nobody", says="nobody")
    refused(node, db, "tokens", "add", "other", "--owner", "admin", "--expires-days", "0", says="number of days")
    refused(node, db, "tokens", "revoke", "missing", says="no token named")
    assert data(node, "tokens", "revoke", "nightly") == {"revoked": "nightly"}
    assert ("token.revoke", "nightly") in [(a, t) for a, t, *_ in db.activity()]


def test_the_installed_script_runs_as_a_process(node, db):
    """What run_in_process cannot show: the console script's entry point,
    its real standard input, exit code and streams."""
    done = admin_process(node, "users", "add", "erin", "--password-stdin", stdin="Erin-pass-2024\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "created user erin (user)\n", "")
    listed = admin_process(node, "users", "list", "--json")
    assert [u["username"] for u in json.loads(listed.stdout)["users"]] == ["admin", "erin"]
    before = db.snapshot()
    again = admin_process(node, "users", "add", "erin")
    assert (again.returncode, again.stdout) == (2, "")
    assert again.stderr == "ezpyr-admin: A user named 'erin' already exists.\n"
    assert db.snapshot() == before


def test_usage_errors(tmp_path):
    missing = subprocess.run([str(BIN / "ezpyr-admin"), str(tmp_path / "nope.ini"), "users",
                              "list"], capture_output=True, text=True)
    assert missing.returncode == 2
    assert "ezpyr-admin: no such config file" in missing.stderr
    helped = subprocess.run([str(BIN / "ezpyr-admin"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    for area in ("users", "keys", "user-groups", "servers", "server-groups", "access", "guard",
                 "settings"):
        assert area in helped.stdout


# -- control characters in arguments ---------------------------------------------------------

def text_arguments() -> list[tuple[list[str], str]]:
    """Every argument of every action that takes text, as (an argv that
    parses, with VALUE where the argument goes; the argument's name), read
    from the command's own parser: an argument added later is covered too."""
    import argparse

    from ezpyr.scripts.admin import build_parser

    def subcommands(parser) -> dict:
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    def takes_text(action) -> bool:
        return (action.nargs != 0 and action.choices is None and action.type is None
                and not isinstance(action, argparse._HelpAction))

    def argv_for(parser, tested) -> list[str]:
        chosen = {tested}
        for group in parser._mutually_exclusive_groups:
            if group.required and tested not in group._group_actions:
                chosen.add(group._group_actions[0])
        chosen |= {a for a in parser._actions if a.required and a.option_strings}
        argv = []
        for action in parser._actions:
            value = "VALUE" if action is tested else "x"
            if not action.option_strings and takes_text(action):
                argv.append(value)
            elif action in chosen:
                argv.append(f"{action.option_strings[-1]}={value}")
        return argv

    cases = []
    for area, area_parser in subcommands(build_parser()).items():
        for name, action_parser in subcommands(area_parser).items():
            for action in action_parser._actions:
                if takes_text(action):
                    cases.append(([area, name, *argv_for(action_parser, action)], action.dest))
    return cases


def test_a_control_character_in_any_argument_is_refused(node, db, capsys):
    """NUL cannot reach a real process's argv (the kernel ends each argument
    at it), so the command's main() is called in this process; ESC and DEL
    also go through the real command below."""
    from ezpyr.scripts.admin import main

    cases = text_arguments()
    assert {name for _, name in cases} >= {"username", "name", "host", "description", "full_name", "email",
                                           "group", "pattern", "command", "rename", "file", "key", "owner"}
    before = db.snapshot()
    capsys.readouterr()
    for argv, name in cases:
        for bad in ("a\x00b", "\x1b[31mred", "del\x7f", "bell\x07"):
            code = main([str(node.ini), *[bad if a == "VALUE" else a.replace("VALUE", bad) for a in argv],
                         "--json"])
            out = capsys.readouterr().out
            assert code == 2, (argv, name, bad, out)
            assert json.loads(out) == {"error": f"The {name.replace('_', ' ')} must not hold control "
                                                "characters (such as NUL or ESC). Nothing was changed."}
    assert db.snapshot() == before


def test_the_real_command_refuses_control_characters(node, db):
    refused(node, db, "servers", "add", "web1", "--host", "10.0.0.1", "--description", "x\x1b[2Jy",
            says="The description must not hold control characters (such as NUL or ESC).")
    refused(node, db, "users", "add", "alice", "--full-name", "Al\x7fice",
            says="The full name must not hold control characters")
    refused(node, db, "servers", "add", "web1", "--host", "10.0.0.1", "--auth", "password",
            "--password-stdin", stdin="pass\x00word\n",
            says="--password-stdin: the server password must not hold control characters (such as NUL).")
    key_file = node.ini.parent / "key.pub"
    key_file.write_text(KEY.replace(" alice@laptop", " alice\x1b[31m@laptop") + "\n")
    ok(node, "users", "add", "alice")
    refused(node, db, "keys", "add", "alice", "--key-file", key_file, says="holds control characters")
    # a description is text of several lines, as the panel's text area
    added = data(node, "servers", "add", "web1", "--host", "10.0.0.1", "--description", "first\n\tsecond")
    assert added["server"]["description"] == "first\n\tsecond"


def test_the_activity_log_on_the_command_line(node, db):
    ok(node, "settings", "set", "lockout_threshold=7")
    ok(node, "settings", "set", "lockout_minutes=20")
    entries = data(node, "activity", "list", "--action", "settings.update", "--user", "cli")["entries"]
    assert [(e["action"], e["target"], e["details"], e["username"]) for e in entries] == [
        ("settings.update", "settings", "lockout_minutes=20", "cli"),
        ("settings.update", "settings", "lockout_threshold=7", "cli")]
    assert entries[0]["at"].endswith("Z") and entries[0]["node"]
    assert [e["details"] for e in data(node, "activity", "list", "--limit", "1")["entries"]] == ["lockout_minutes=20"]
    table = ok(node, "activity", "list", "--action", "settings.update").splitlines()
    assert table[0].split()[:5] == ["WHEN", "(UTC)", "WHO", "ACTION", "TARGET"]
    assert table[1].split()[2:5] == ["cli", "settings.update", "settings"]
    assert ok(node, "activity", "list", "--user", "nobody") == "no activity on this node\n"
    refused(node, db, "activity", "list", "--limit", "0", says="--limit")
