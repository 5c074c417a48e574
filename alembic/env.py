"""Alembic environment: the URL comes from the ini's [app:main] section (or
from a connection handed in by ezpyr-init and the tests)."""
from __future__ import annotations

from alembic import context
from pyramid.paster import get_appsettings, setup_logging

from ezpyr.database import make_engine
from ezpyr.meta import load_all_models
from ezpyr.scripts.init import ensure_database

config = context.config
target_metadata = load_all_models()


def _settings():
    if config.config_file_name:
        setup_logging(config.config_file_name)
        return get_appsettings(config.config_file_name)
    return {}


def run_migrations_offline():
    context.configure(url=_settings()["sqlalchemy.url"], target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = _settings()
    engine = make_engine(settings)
    # `alembic upgrade head` on its own creates the database, as ezpyr-init
    # does: a SQLite file (owner-only, with its directory) or a MariaDB database.
    ensure_database(engine.url.render_as_string(hide_password=False), say=lambda _message: None)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection):
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
