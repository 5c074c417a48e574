"""The engine the panel, the worker and the commands share, and its pool on
MariaDB: a connection given back moments ago is handed out again without a
ping; one idle longer is pinged first, and one the server closed meanwhile
is replaced instead of failing the request; a busy panel keeps its
connections."""
from __future__ import annotations

import configparser
import threading

import pytest
from sqlalchemy import create_engine, event, text

import ezpyr.database
from ezpyr.database import make_engine
from tests.backends import create_mariadb_database, drop_mariadb_database
from tests.conftest import ROOT


@pytest.fixture
def mariadb_engine():
    url = create_mariadb_database()
    engine = make_engine({"sqlalchemy.url": url})
    yield engine, url
    engine.dispose()
    drop_mariadb_database(url)


def _kill(url: str, connection_id: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"KILL CONNECTION {int(connection_id)}")
    admin.dispose()


def test_a_connection_closed_by_the_server_while_idle_is_replaced(mariadb_engine, monkeypatch):
    engine, url = mariadb_engine
    with engine.connect() as conn:
        first = conn.execute(text("SELECT CONNECTION_ID()")).scalar()
    _kill(url, first)
    monkeypatch.setattr(ezpyr.database, "PING_IDLE_SECONDS", 0.0)  # it has been idle "long enough"
    with engine.connect() as conn:
        second = conn.execute(text("SELECT CONNECTION_ID()")).scalar()
    assert second != first


def test_a_connection_given_back_moments_ago_is_not_pinged(mariadb_engine, monkeypatch):
    engine, _ = mariadb_engine
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    pings = []
    monkeypatch.setattr(ezpyr.database, "PING_IDLE_SECONDS", 3600.0)
    raw = engine.pool._pool.queue[0].dbapi_connection  # the one connection in the pool
    monkeypatch.setattr(type(raw), "ping", lambda self, reconnect=False: pings.append(self))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(ezpyr.database, "PING_IDLE_SECONDS", 0.0)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert pings == [raw]


def waitress_threads() -> int:
    parser = configparser.ConfigParser(defaults={"here": "."}, interpolation=None)
    parser.read(ROOT / "config" / "production.ini.sample")
    return int(parser["server:main"]["threads"])


def test_a_busy_panel_keeps_its_connections(database_url, backend):
    """As many requests at once as waitress has threads, twice: the second
    round opens no connection (beyond the pool's size, a returned connection
    was closed and the next request paid for a new one)."""
    if backend != "mariadb":
        pytest.skip("the pool's size is set for MariaDB")
    engine = make_engine({"sqlalchemy.url": database_url})
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    threads = waitress_threads() + 1  # and a job
    try:
        rounds = []
        for _ in range(2):
            together = threading.Barrier(threads)
            errors = []

            def request():
                try:
                    with engine.connect() as conn:
                        together.wait(timeout=30)
                        conn.execute(text("SELECT 1"))
                        together.wait(timeout=30)  # all checked out at once
                except Exception as error:  # noqa: BLE001 - reported below
                    errors.append(error)

            workers = [threading.Thread(target=request) for _ in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            assert errors == []
            rounds.append(len(opened))
        assert rounds == [threads, threads]
    finally:
        engine.dispose()
