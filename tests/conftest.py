"""Fixtures every test shares.

``backend`` runs a test on SQLite and on MariaDB. Each back end gets one
database per test process, migrated with ``alembic upgrade head``; every
table is emptied after each test.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import transaction
import webtest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from ezpyr import main
from ezpyr.database import make_engine, make_session_factory
from ezpyr.meta import Base, load_all_models
from ezpyr.passwords import Passwords
from ezpyr.secretbox import SecretBox, generate_key
from ezpyr.replication.writes import applying
from tests.backends import drop_database, new_database

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "mariadb"]
SECRET_KEY = generate_key()
CHEAP_ARGON2 = {"ezpyr.argon2.time_cost": "1", "ezpyr.argon2.memory_cost": "1024",
                "ezpyr.argon2.parallelism": "1"}


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "development.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["url"] = url
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    engine = make_engine({"sqlalchemy.url": url})
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def app_settings(url: str, **extra) -> dict:
    settings = {
        "sqlalchemy.url": url,
        "ezpyr.node_name": "node-test",
        "ezpyr.node_address": "127.0.0.1:6543",
        "ezpyr.secret_key": SECRET_KEY,
        "ezpyr.session_secret": "test-session-secret-" + "x" * 40,
        "pyramid.reload_templates": "false",
        "ezpyr.testing": "true",
        **CHEAP_ARGON2,
    }
    settings.update(extra)
    return settings


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def database_url(backend, tmp_path_factory):
    url = new_database(backend, tmp_path_factory)
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(database_url):
    engine = make_engine({"sqlalchemy.url": database_url})
    yield engine
    engine.dispose()


def empty_all_tables(engine) -> None:
    tables = list(reversed(load_all_models().sorted_tables))
    with engine.begin() as conn, applying(conn):  # not a change to replicate
        for table in tables:
            conn.execute(table.delete())


@pytest.fixture
def dbsession(engine):
    """A plain session for arranging and checking data; commit to make rows
    visible to the app. Every table is emptied afterwards."""
    bind = engine
    if engine.dialect.name != "sqlite":
        # so that expire_all() shows what the app committed meanwhile
        bind = engine.execution_options(isolation_level="READ COMMITTED")
    session = make_session_factory(bind)()
    yield session
    session.rollback()
    session.close()
    empty_all_tables(engine)


@pytest.fixture(scope="session")
def passwords():
    return Passwords.from_settings(CHEAP_ARGON2)


@pytest.fixture(scope="session")
def secret_box():
    return SecretBox([SECRET_KEY])


@pytest.fixture(scope="session")
def wsgi_app(engine, database_url):
    return main({}, **app_settings(database_url, **{"ezpyr.engine": engine}))


@pytest.fixture
def testapp(wsgi_app, dbsession):
    """A browser for the panel: keeps cookies, starts signed out."""
    return webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "192.0.2.10"})


@pytest.fixture
def admin(dbsession, passwords):
    from tests.factories import make_admin
    return make_admin(dbsession, passwords)


@pytest.fixture
def admin_app(testapp, admin):
    """The panel, signed in as an admin (``root_admin``)."""
    from tests.factories import login
    login(testapp, admin.username)
    return testapp


@pytest.fixture
def plain_user(dbsession, passwords):
    from tests.factories import make_user
    return make_user(dbsession, passwords, "plainuser")


@pytest.fixture
def user_app(testapp, plain_user):
    """The panel, signed in as a user without the admin role (``plainuser``)."""
    from tests.factories import login
    login(testapp, plain_user.username)
    return testapp
