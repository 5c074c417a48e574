"""ezpyr-admin, run as a real process on a fresh node (ezpyr-init) of each
back end. Each test runs several actions in a row: a process costs ~0.7 s."""
from __future__ import annotations

import getpass
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select, update

from ezpyr.activity.models import ActivityEntry
from ezpyr.database import make_engine, make_session_factory
from ezpyr.meta import load_all_models
from ezpyr.node.models import NodeIdentity
from ezpyr.passwords import Passwords
from ezpyr.replication.models import OutboxEntry
from ezpyr.secretbox import secret_box_from_settings
from ezpyr.servers.models import Server
from ezpyr.users.models import User
from tests.conftest import CHEAP_ARGON2
from tests.scripts.conftest import BIN, run

ADMIN_PASSWORD = "Admin-pass-123"
KEY = Ed25519PrivateKey.generate().public_key().public_bytes(
    Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + " alice@laptop"
HEADER = "name,host,port,remote_user,auth_method,group,description\n"


@pytest.fixture
def node(node):
    """The node, set up by ezpyr-init (migrated, with the admin "admin")."""
    done = run("ezpyr-init", node.ini, "--admin-password", ADMIN_PASSWORD, "--quiet")
    assert done.returncode == 0, done.stderr
    return node


def admin(node, *args, stdin: str = "") -> subprocess.CompletedProcess:
    """ezpyr-admin CONFIG ARGS as a real process, ``stdin`` on its standard input."""
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

    def snapshot(self) -> dict:
        """Every row of every table: equal snapshots mean nothing changed."""
        with self.engine.connect() as conn:
            return {t.name: sorted(map(repr, conn.execute(t.select())))
                    for t in load_all_models().sorted_tables}

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


def refused(node, db, *args, stdin: str = "", says: str) -> dict:
    """The command (with --json) fails with exit 2, {"error": ...} saying
    ``says`` on stdout and nothing on stderr, and changes nothing; returns
    that JSON."""
    before = db.snapshot()
    done = admin(node, *args, "--json", stdin=stdin)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert done.stderr == ""
    error = json.loads(done.stdout)
    assert says in error["error"] or any(says in e for e in error.get("errors", []))
    assert db.snapshot() == before
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
    assert [k["fingerprint"] for k in data(node, "users", "show", "alice")["user"]["keys"]] == \
        [key["fingerprint"]]

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
        ("user.key_delete", "alice2", key["fingerprint"]), ("user.delete", "alice2", ""),
        ("user_group.update", "operators", ""), ("user_group.delete", "operators", ""),
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
    error = refused(node, db, "servers", "import", bad, says="line 3: host must be a host name")
    assert error["error"] == (f"4 errors in {bad}; nothing was imported. Fix them and import "
                              "the file again.")
    assert error["errors"][1:] == [
        "line 4: the name 'n1' is already used on line 2 of this file.",
        "line 4: port must be a number from 1 to 65535.",
        "line 4: there is no server group named 'nogroup'; create it first or leave the "
        "group empty.",
    ]
    refused(node, db, "servers", "import", node.ini.parent / "missing.csv",
            says="cannot read")
    empty = node.ini.parent / "empty.csv"
    empty.write_text(HEADER)
    refused(node, db, "servers", "import", empty, says="The file has a header but no servers.")

    good = node.ini.parent / "good.csv"
    good.write_text(HEADER + "n1,10.0.0.1,22,root,key,web,\nn2,n2.example.com,2222,deploy,key,,x\n")
    assert data(node, "servers", "import", good) == {"message": "imported 2 servers",
                                                    "imported": 2}
    assert [(s["name"], s["group"]) for s in data(node, "servers", "list")["servers"]] == [
        ("n1", "web"), ("n2", None)]
    assert db.activity()[-1][:3] == ("server.import", "2 servers", "")


def test_access_rules_and_the_command_guard(node, db):
    ok(node, "user-groups", "add", "ops")
    ok(node, "users", "add", "alice", "--group", "ops")
    ok(node, "server-groups", "add", "web")
    ok(node, "servers", "add", "web1", "--host", "10.0.0.1", "--group", "web")
    ok(node, "servers", "add", "db1", "--host", "10.0.0.2")

    by_group = data(node, "access", "add", "--user-group", "ops", "--server-group", "web")
    rule = by_group["access_rule"]
    assert {k: rule[k] for k in ("subject", "target", "label")} == {
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
    assert {k: guard[k] for k in ("group", "pattern", "description")} == {
        "group": "ops", "pattern": r"^rm\s+-rf", "description": "no wiping"}
    refused(node, db, "guard", "add", "--group", "ops", "--pattern", "rm (",
            says="This is not a valid regular expression")
    refused(node, db, "guard", "add", "--group", "nope", "--pattern", "x",
            says="There is no user group named 'nope'")
    assert [r["id"] for r in data(node, "guard", "list")["command_rules"]] == [guard["id"]]

    test = admin(node, "guard", "test", "--user", "alice", "rm -rf /", "--json")
    assert test.returncode == 1  # refused
    verdict = json.loads(test.stdout)
    assert (verdict["allowed"], verdict["group"], verdict["user"], verdict["rules_checked"],
            [r["id"] for r in verdict["refused_by"]]) == (False, "ops", "alice", 1, [guard["id"]])
    assert ok(node, "guard", "test", "--group", "ops", "ls -la") == \
        "allowed for user group ops: 1 rule checked, none matches\n"
    ok(node, "guard", "delete", guard["id"])
    assert data(node, "guard", "list") == {"command_rules": []}
    assert [a[:2] for a in db.activity() if a[0].startswith(("access.", "guard."))] == [
        ("access.create", "user group ops → server group web"),
        ("access.create", "user alice → server db1"),
        ("access.delete", "user group ops → server group web"),
        ("guard.create", r"ops: ^rm\s+-rf"), ("guard.delete", r"ops: ^rm\s+-rf")]


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
