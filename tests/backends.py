"""The databases tests run against: SQLite (always) and MariaDB (when it is
reachable; under CI=true an unreachable MariaDB is a failure, not a skip)."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

MARIADB_URL = os.environ.get("EZPYR_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
IN_CI = os.environ.get("CI", "").lower() == "true"


def mariadb_or_skip() -> str:
    """The server URL; skips (fails under CI) when MariaDB cannot be reached."""
    try:
        engine = create_engine(MARIADB_URL)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not here"
        message = f"MariaDB at {MARIADB_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return MARIADB_URL


def create_mariadb_database(prefix: str = "ezpyr_t") -> str:
    """A new, empty database; returns its URL."""
    server_url = mariadb_or_skip()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    engine.dispose()
    return str(make_url(server_url).set(database=name).render_as_string(hide_password=False)) + "?charset=utf8mb4"


def drop_mariadb_database(url: str) -> None:
    """Drops the database. Connections still open on it (a failed test's
    traceback can keep one alive, inside a transaction) would make DROP wait
    for their metadata lock without end: they are ended first."""
    parsed = make_url(url)
    engine = create_engine(parsed.set(database=""), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("SET SESSION lock_wait_timeout = 30")
        left_open = conn.exec_driver_sql(
            "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
            (parsed.database,)).scalars().all()
        for connection_id in left_open:
            try:
                conn.exec_driver_sql(f"KILL CONNECTION {int(connection_id)}")
            except Exception:  # noqa: BLE001 - it ended by itself meanwhile
                pass
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{parsed.database}`")
    engine.dispose()


def new_database(backend: str, tmp_path_factory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'ezpyr.sqlite'}"
    return create_mariadb_database()


def drop_database(url: str) -> None:
    if url.startswith("mysql"):
        drop_mariadb_database(url)


RABBITMQ_URL = os.environ.get("EZPYR_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")


def rabbitmq_or_skip() -> str:
    """The broker URL; skips (fails under CI) when RabbitMQ cannot be reached."""
    from kombu import Connection

    try:
        with Connection(RABBITMQ_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001
        message = f"RabbitMQ at {RABBITMQ_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return RABBITMQ_URL


def broker_url(backend: str, tmp_path) -> str:
    """The broker a node uses with this back end: the server-less SQLAlchemy
    transport on a SQLite file, or RabbitMQ beside MariaDB."""
    if backend == "sqlite":
        return f"sqla+sqlite:///{tmp_path / f'broker-{uuid.uuid4().hex[:8]}.sqlite'}"
    return rabbitmq_or_skip()


def delete_queues(url: str, names) -> None:
    from kombu import Connection

    with Connection(url) as conn:
        channel = conn.default_channel
        for name in names:
            try:
                channel.queue_delete(name)
            except Exception:  # noqa: BLE001 - already gone
                pass
