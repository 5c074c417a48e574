"""ezpyr-init CONFIG: create or upgrade this node.

Creates, each only if missing: the key files, the database (MariaDB), the
schema (alembic upgrade head), the node identity, the gateway key pair and
the first admin. Safe to run again: it says what it found.

Exit status: 0 done; 1 the node cannot be set up (e.g. the database is
unreachable); 2 bad arguments (then nothing was changed).
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from contextlib import contextmanager
from pathlib import Path

import transaction
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pyramid.paster import get_appsettings, setup_logging
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ezpyr.database import make_engine, make_session_factory, tm_session
from ezpyr.gateway.services import GatewayKeyService
from ezpyr.node.services import NodeService
from ezpyr.passwords import Passwords, policy_errors
from ezpyr.scripts.failures import one_line_errors
from ezpyr.secretbox import generate_key, secret_box_from_settings, write_key_file
from ezpyr.settings.services import PanelSettings, SettingsService
from ezpyr.users.models import User
from ezpyr.users.services import UserService, check_username, generate_password
from ezpyr.validation import Invalid


class SetupFailed(Exception):
    """The node cannot be set up; the message says why and what to do."""


KEY_FILES = (
    # setting, environment variable that overrides it, what it is, how to make one
    ("ezpyr.secret_key", "EZPYR_SECRET_KEY", "secret key (encrypts secrets at rest)", generate_key),
    ("ezpyr.session_secret", "EZPYR_SESSION_SECRET", "session secret",
     lambda: secrets.token_urlsafe(48)),
)


def _private_dir(path: Path) -> None:
    """Create a missing directory for key files or the database, readable by
    its owner only (an existing directory is left as it is)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)


def ensure_key_files(settings: dict, say) -> None:
    for setting, env_name, label, make in KEY_FILES:
        if os.environ.get(env_name):
            say(f"{label}: taken from ${env_name}")
            continue
        if settings.get(setting):
            say(f"{label}: set in the config ({setting})")
            continue
        path = settings.get(setting + "_file")
        if not path:
            continue
        if Path(path).exists():
            say(f"found {label}: {path}")
        else:
            _private_dir(Path(path).parent)
            write_key_file(path, make())
            say(f"created {label}: {path} (mode 0600)")


def _shown(url) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_path(parsed) -> Path | None:
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def ensure_database(url: str, say) -> None:
    """MariaDB: create the database named in the URL if it is missing.
    SQLite: create the file (owner-only) and its directory."""
    parsed = make_url(url)
    sqlite_file = _sqlite_path(parsed)
    if sqlite_file is not None:
        if not sqlite_file.exists():
            _private_dir(sqlite_file.parent)
            os.close(os.open(sqlite_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            say(f"created database file {sqlite_file} (mode 0600)")
        else:
            say(f"found database file {sqlite_file}")
        return
    if parsed.get_backend_name() not in ("mysql", "mariadb"):
        return
    with _database_server(url) as conn:
        if not _schema_exists(conn, parsed.database):
            conn.exec_driver_sql(
                f"CREATE DATABASE `{parsed.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
            say(f"created database {parsed.database}")
        else:
            say(f"found database {parsed.database}")


def database_exists(url: str) -> bool:
    """Whether the database already exists (without creating it)."""
    parsed = make_url(url)
    sqlite_file = _sqlite_path(parsed)
    if sqlite_file is not None:
        return sqlite_file.exists() and sqlite_file.stat().st_size > 0
    if parsed.get_backend_name() not in ("mysql", "mariadb"):
        return True
    with _database_server(url) as conn:
        return _schema_exists(conn, parsed.database)


@contextmanager
def _database_server(url: str):
    """A connection to the MariaDB server of ``url``, outside any database;
    an unreachable server is a SetupFailed that says what to check."""
    server = create_engine(make_url(url).set(database=""), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            yield conn
    except SQLAlchemyError as error:
        raise SetupFailed(
            f"cannot reach the database server for {_shown(url)}: {getattr(error, 'orig', error)}. "
            "Check sqlalchemy.url in the config and that the server is running."
        ) from None
    finally:
        server.dispose()


def _schema_exists(conn, name: str) -> bool:
    return conn.exec_driver_sql(
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,)).first() is not None


def current_admin_and_policy(settings: dict) -> tuple[str | None, PanelSettings]:
    """The first admin's username (None if there is none yet) and the
    password policy, as the database holds them now. Reads only: nothing is
    created, so arguments can be checked before anything changes."""
    if not database_exists(settings["sqlalchemy.url"]):
        return None, PanelSettings()
    engine = make_engine(settings)
    try:
        tables = set(inspect(engine).get_table_names())
        if not {"users", "settings"} <= tables:
            return None, PanelSettings()
        session = make_session_factory(engine)()
        try:
            admin = session.scalars(select(User.username).where(User.role == "admin")).first()
            return admin, SettingsService(session).current()
        finally:
            session.close()
    finally:
        engine.dispose()


def alembic_config(config_uri: str, connection=None) -> Config:
    cfg = Config(config_uri.split("#")[0])
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_schema(config_uri: str, engine, say) -> None:
    cfg = alembic_config(config_uri)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        say(f"schema is up to date (revision {head})")
        return
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise SetupFailed(
            f"the database is at schema revision {current}, which this version of ezpyr does "
            f"not know (its newest is {head}): it was upgraded by a newer ezpyr. Install that "
            "version here too."
        )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    say(f"schema upgraded from {current or 'empty'} to {head}")


def check_arguments(args, settings: dict) -> None:
    """Refuse bad arguments before anything is created (raises Invalid)."""
    try:
        check_username(args.admin_username)
    except Invalid as error:
        raise Invalid("--admin-username: " + error.message, "admin_username") from None
    if args.admin_password is None:
        return
    admin, policy = current_admin_and_policy(settings)
    if admin is not None:
        return  # the password is not used: there is an admin already
    errors = policy_errors(args.admin_password, policy.password_min_length,
                           policy.password_require_mixed)
    if errors:
        raise Invalid("--admin-password: " + " ".join(errors), "admin_password")


def ensure_provisioning_key(settings: dict, say) -> None:
    """The key the master signs in to each node's provisioning account with,
    and the one line to put in that account's authorized_keys."""
    from ezpyr.accounts.provisioning import authorized_keys_line, ensure_key
    from ezpyr.accounts.settings import AccountSettings

    accounts = AccountSettings.from_settings(settings)
    if not accounts.key_file:
        return
    made = ensure_key(accounts.key_file)
    say(f"{'created' if made else 'found'} provisioning key: {accounts.key_file}"
        + (" (mode 0600)" if made else ""))
    say(f"put this line in ~{accounts.user}/.ssh/authorized_keys on each node "
        f"(the provisioning account):\n{authorized_keys_line(accounts)}")


def set_up(args, settings: dict, say) -> str | None:
    """Everything after the arguments were checked. Returns the generated
    admin password, if one was made."""
    ensure_key_files(settings, say)
    ensure_provisioning_key(settings, say)
    ensure_database(settings["sqlalchemy.url"], say)
    engine = make_engine(settings)
    try:
        upgrade_schema(args.config, engine, say)
        return create_rows(args, settings, engine, say)
    finally:
        engine.dispose()


def create_rows(args, settings: dict, engine, say) -> str | None:
    session_factory = make_session_factory(engine)
    generated = None
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        dbsession = tm_session(session_factory, tm)
        nodes = NodeService(dbsession)
        node = nodes.identity()
        if node is None:
            node = nodes.create(settings.get("ezpyr.node_name", "node1"),
                                settings.get("ezpyr.node_address", ""))
            say(f"created node identity {node.name} ({node.id})")
        else:
            say(f"found node identity {node.name} ({node.id}), role {node.role}")

        keys = GatewayKeyService(dbsession, secret_box_from_settings(settings))
        key = keys.current()
        if args.secondary:
            pass  # a secondary gets the cluster's data from the primary at Add
        elif key is None:
            key = keys.generate()
            say(f"created gateway key pair {key.fingerprint}")
        else:
            say(f"found gateway key pair {key.fingerprint}")

        if args.secondary:
            return make_secondary(args, settings, dbsession, node, tm, say)

        users = UserService(dbsession, Passwords.from_settings(settings))
        admin = dbsession.scalars(select(User).where(User.role == "admin")).first()
        if admin is None:
            password = args.admin_password
            if password is None:
                password = generated = generate_password(
                    SettingsService(dbsession).current().password_min_length)
            try:
                admin = users.create(args.admin_username, password, role="admin",
                                     full_name="Administrator")
            except Invalid:
                tm.doom()  # nothing of this transaction is committed
                raise
            say(f"created admin {admin.username}")
        else:
            unused = " (--admin-password is only used for the first admin)" if args.admin_password else ""
            say(f"found admin {admin.username}; its password is unchanged{unused}")
    return generated


def make_secondary(args, settings, dbsession, node, tm, say) -> None:
    """A node that waits for the primary's Add: no data of its own, only
    the primary's address granted, and a one-time setup key."""
    from ezpyr.cluster.setup import SECONDARY, SetupService, setup_key_minutes
    from ezpyr.meta import replicated_tables

    if node.role not in ("standalone", SECONDARY):
        tm.doom()
        raise Invalid(f"this node is already {node.role} in a cluster; --secondary is for a new node")
    connection = dbsession.connection()
    holding = [t.name for t in replicated_tables()
               if connection.execute(select(t.c.id).limit(1)).first() is not None]
    if holding and node.role != SECONDARY:
        tm.doom()
        raise Invalid("this node already holds data (" + ", ".join(holding) + "); a secondary must be "
                      "a new install, whose data comes from the primary")
    again = node.role == SECONDARY
    key, expires = SetupService(dbsession, secret_box_from_settings(settings)).prepare(
        args.secondary, setup_key_minutes(settings))
    say(f"this node is a secondary awaiting setup from {args.secondary}"
        + (" (a new setup key replaces the earlier one)" if again else ""))
    print(f"setup key: {key}  (shown once; valid for one Add until {expires:%Y-%m-%d %H:%M} UTC: on the "
          f"primary's cluster page, enter this node's address {settings.get('ezpyr.node_address', '')} "
          "and this key, then Add)", flush=True)
    return None


@one_line_errors("ezpyr-init")
def main(argv=None):
    parser = argparse.ArgumentParser(prog="ezpyr-init", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the ini file, e.g. development.ini")
    parser.add_argument("--admin-username", default="admin",
                        help="the first admin's username (default: admin)")
    parser.add_argument("--admin-password", help="the first admin's password (default: generated "
                        "and printed once)")
    parser.add_argument("--quiet", action="store_true", help="print only the generated password")
    parser.add_argument("--secondary", metavar="PRIMARY_ADDRESS",
                        help="install a secondary for the primary at this address (host:port of its "
                        "panel): no admin or data of its own; prints a one-time setup key for Add")
    args = parser.parse_args(argv)

    def say(message):
        if not args.quiet:
            print(message, flush=True)

    if not Path(args.config.split("#")[0]).is_file():
        print(f"ezpyr-init: no such config file: {args.config}", file=sys.stderr)
        return 2
    setup_logging(args.config)
    settings = get_appsettings(args.config)
    if os.environ.get("EZPYR_DATABASE_URL"):
        settings["sqlalchemy.url"] = os.environ["EZPYR_DATABASE_URL"]
    if args.secondary and (not args.secondary.strip() or any(c.isspace() for c in args.secondary)):
        print("ezpyr-init: --secondary needs the primary's address, e.g. 10.0.0.1:6543. "
              "Nothing was changed.", file=sys.stderr)
        return 2
    try:
        check_arguments(args, settings)
    except Invalid as error:
        print(f"ezpyr-init: {error.message} Nothing was changed.", file=sys.stderr)
        return 2
    except SetupFailed as error:
        print(f"ezpyr-init: {error}", file=sys.stderr)
        return 1
    try:
        generated = set_up(args, settings, say)
    except Invalid as error:
        print(f"ezpyr-init: {error.message.rstrip('.')}. This node was not made a secondary." if args.secondary else
              f"ezpyr-init: {error.message} No admin was created; run ezpyr-init again "
              "with other arguments.", file=sys.stderr)
        return 2
    except SetupFailed as error:
        print(f"ezpyr-init: {error}", file=sys.stderr)
        return 1
    if generated:
        print(f"admin login: {args.admin_username} / {generated}  "
              "(shown once; change it after signing in)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
