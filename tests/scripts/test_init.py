"""ezpyr-init, run as a real process on a fresh node of each back end."""
from __future__ import annotations

import re
import stat

import pytest
import webtest
from alembic.script import ScriptDirectory
from pyramid.paster import get_app
from sqlalchemy import func, select

from ezpyr.database import make_engine, make_session_factory
from ezpyr.gateway.models import GatewayKey
from ezpyr.node.models import NodeIdentity
from ezpyr.users.models import User
from tests.conftest import alembic_config
from tests.factories import login
from tests.scripts.conftest import database_exists, run, write_ini

LOGIN_LINE = re.compile(r"^admin login: admin / (\S+)  \(shown once; change it after signing in\)$",
                        re.MULTILINE)


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def rows(db_url):
    """(node identities, gateway keys, admins) as the database holds them."""
    engine = make_engine({"sqlalchemy.url": db_url})
    try:
        with make_session_factory(engine)() as session:
            return (session.scalars(select(NodeIdentity)).all(),
                    session.scalars(select(GatewayKey)).all(),
                    session.scalars(select(User).where(User.role == "admin")).all())
    finally:
        engine.dispose()


def signs_in(ini, username, password) -> bool:
    """Whether the panel built from ``ini`` lets ``username`` in."""
    app = get_app(str(ini), "main")
    try:
        browser = webtest.TestApp(app)
        res = login(browser, username, password)
        return res.status_int == 303 and browser.get("/activity").status_int == 200
    finally:
        app.registry["db_engine"].dispose()


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_the_node_and_prints_the_password_once(node):
    first = run("ezpyr-init", node.ini)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    for line in ("created secret key (encrypts secrets at rest): " + str(node.var / "secret.key"),
                 "created session secret: " + str(node.var / "session.key"),
                 f"schema upgraded from empty to {head()}",
                 "created admin admin"):
        assert line in out
    if node.backend == "mariadb":
        assert f"created database {node.db_url.rsplit('/', 1)[1].split('?')[0]}" in out
    else:
        assert f"created database file {node.sqlite_file} (mode 0600)" in out
        assert mode(node.sqlite_file) == 0o600
    for key_file in ("secret.key", "session.key"):
        assert mode(node.var / key_file) == 0o600
    assert mode(node.var) == 0o700
    # the provisioning key, and the one line for each node's provisioning account
    provisioning = node.var / "provisioning_ed25519"
    assert f"created provisioning key: {provisioning} (mode 0600)" in out and mode(provisioning) == 0o600
    line = re.search(r'^restrict,command="(\S+/ezpyr-account-agent) --shell (\S+)" (ssh-ed25519 \S+) '
                     r'ezpyr-provisioning$', out, re.MULTILINE)
    assert line, out
    assert line.group(3) + " ezpyr-provisioning\n" == (node.var / "provisioning_ed25519.pub").read_text()
    assert line.group(2).endswith("/ezsh")

    (identity,), (key,), (admin,) = rows(node.db_url)
    assert f"created node identity node-init ({identity.id})" in out
    assert identity.name == "node-init" and identity.address == "127.0.0.1:6599"
    assert f"created gateway key pair {key.fingerprint}" in out
    assert key.public_key.startswith("ssh-ed25519 ") and key.fingerprint.startswith("SHA256:")
    assert "PRIVATE" not in key.private_key_encrypted  # encrypted at rest
    assert admin.username == "admin"

    (password,) = LOGIN_LINE.findall(out)
    assert len(password) >= 10
    assert signs_in(node.ini, "admin", password)
    assert not signs_in(node.ini, "admin", password + "x")

    keys_before = {f: (node.var / f).read_bytes() for f in ("secret.key", "session.key")}
    second = run("ezpyr-init", node.ini)
    assert second.returncode == 0, second.stderr
    out = second.stdout
    assert "created" not in out and "admin login" not in out and password not in out
    for line in ("found secret key (encrypts secrets at rest): " + str(node.var / "secret.key"),
                 "found session secret: " + str(node.var / "session.key"),
                 f"schema is up to date (revision {head()})",
                 f"found node identity node-init ({identity.id}), role standalone",
                 f"found gateway key pair {key.fingerprint}",
                 f"found provisioning key: {provisioning}",
                 "found admin admin; its password is unchanged"):
        assert line in out
    assert {f: (node.var / f).read_bytes() for f in keys_before} == keys_before
    (identity2,), (key2,), (admin2,) = rows(node.db_url)
    assert (identity2.id, key2.fingerprint, admin2.id, admin2.password_hash) == (
        identity.id, key.fingerprint, admin.id, admin.password_hash)
    assert signs_in(node.ini, "admin", password)


def test_a_given_password_is_used_and_not_printed(node):
    result = run("ezpyr-init", node.ini, "--admin-username", "chief",
                 "--admin-password", "Chief-pass-2024")
    assert result.returncode == 0, result.stderr
    assert "created admin chief" in result.stdout and "admin login" not in result.stdout
    assert "Chief-pass-2024" not in result.stdout + result.stderr
    assert signs_in(node.ini, "chief", "Chief-pass-2024")

    again = run("ezpyr-init", node.ini, "--admin-password", "Other-pass-2024")
    assert again.returncode == 0
    assert ("found admin chief; its password is unchanged "
            "(--admin-password is only used for the first admin)") in again.stdout
    assert signs_in(node.ini, "chief", "Chief-pass-2024")


def test_a_too_short_password_is_refused_and_changes_nothing(node):
    result = run("ezpyr-init", node.ini, "--admin-password", "Sh0rt!")
    assert result.returncode == 2
    assert result.stdout == ""
    assert ("ezpyr-init: --admin-password: Password must be at least 10 characters long. "
            "Nothing was changed.") in result.stderr
    assert "Traceback" not in result.stderr
    assert not node.var.exists()  # no key files
    assert not database_exists(node.db_url)  # no database, so no admin


def test_a_weak_password_is_refused_once_the_node_exists_too(node):
    """The node exists but has no admin (e.g. deleted from the database):
    the policy still applies, and nothing is changed."""
    assert run("ezpyr-init", node.ini, "--admin-password", "Admin-pass-123").returncode == 0
    engine = make_engine({"sqlalchemy.url": node.db_url})
    with make_session_factory(engine)() as session:
        session.delete(session.scalars(select(User)).one())
        session.commit()
    engine.dispose()
    result = run("ezpyr-init", node.ini, "--admin-password", "alllowercaseletters")
    assert result.returncode == 2
    assert "Password must mix at least three of" in result.stderr
    assert rows(node.db_url)[2] == []


@pytest.mark.parametrize("username", ["Root", "a b", "x" * 33, "-dash"])
def test_a_bad_admin_username_is_refused(node, username):
    result = run("ezpyr-init", node.ini, f"--admin-username={username}")
    assert result.returncode == 2
    assert "ezpyr-init: --admin-username: A username is 1 to 32 characters" in result.stderr
    assert not node.var.exists()


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    ini = write_ini(tmp_path / "node.ini", "mysql+pymysql://root:s3cret@127.0.0.1:1/ezpyr", tmp_path)
    result = run("ezpyr-init", ini)
    assert result.returncode == 1
    assert "ezpyr-init: cannot reach the database server for mysql+pymysql://root:***@127.0.0.1:1/ezpyr" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_a_missing_config_file(tmp_path):
    result = run("ezpyr-init", tmp_path / "nope.ini")
    assert result.returncode == 2 and "no such config file" in result.stderr


def test_help():
    result = run("ezpyr-init", "--help")
    assert result.returncode == 0 and "--admin-password" in result.stdout
