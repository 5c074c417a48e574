"""The engine the panel, the worker and the commands share."""
from __future__ import annotations

import configparser
import threading

import pytest
from sqlalchemy import event, text

from ezpyr.database import make_engine
from tests.conftest import ROOT


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
