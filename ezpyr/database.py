"""Engine, sessions and the one-transaction-per-request wiring."""
from __future__ import annotations

import os
import time

from sqlalchemy import engine_from_config, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import zope.sqlalchemy

from ezpyr.replication.capture import ACTOR


POOL_SIZE = 12


def make_engine(settings: dict, prefix: str = "sqlalchemy.") -> Engine:
    """The engine for ``sqlalchemy.url``; EZPYR_DATABASE_URL overrides it, so
    that a production database password need not sit in the ini file."""
    if os.environ.get("EZPYR_DATABASE_URL") and prefix == "sqlalchemy.":
        settings = {**settings, "sqlalchemy.url": os.environ["EZPYR_DATABASE_URL"]}
    url = settings[prefix + "url"]
    options = {}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30}
    elif url.startswith("mysql"):
        options["pool_recycle"] = 3600
        if prefix + "pool_size" not in settings:
            # as many kept connections as the panel has threads (waitress's 8,
            # and a job or two): beyond pool_size a connection is closed when
            # returned and opened anew for the next request, and PyMySQL's
            # connect (TLS context, handshake) cost more than a read
            options["pool_size"] = POOL_SIZE
    engine = engine_from_config(settings, prefix, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "checkout", _ping_if_idle)
        event.listen(engine, "checkin", _note_checkin)
    return engine


# A pooled connection idle longer than this is pinged before it is handed
# out (a database restarted meanwhile has closed it); one given back moments
# ago is not, which saves a round trip per transaction under load.
PING_IDLE_SECONDS = 2.0
_CHECKED_IN = "ezpyr.checked_in"


def _note_checkin(dbapi_connection, record) -> None:
    if record is not None:
        record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, proxy) -> None:
    if time.monotonic() - record.info.get(_CHECKED_IN, 0.0) <= PING_IDLE_SECONDS:
        return
    try:
        dbapi_connection.ping(False)
    except Exception as error:  # noqa: BLE001 - any failure: the pool connects anew
        raise exc.DisconnectionError(f"the database connection was closed: {error}") from error


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


def tm_session(session_factory: sessionmaker, transaction_manager) -> Session:
    """A session joined to the request's transaction manager."""
    dbsession = session_factory()
    # "changed" from the start, so that Core statements (which zope.sqlalchemy
    # cannot see) are committed too, not silently rolled back.
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager,
                             initial_state=zope.sqlalchemy.datamanager.STATUS_CHANGED)
    return dbsession


def includeme(config):
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    # pyramid_tm would look the user up before the exception views are in
    # place, so that a database that is down answers with a bare 500
    # instead of the page saying so; the outbox records the actor anyway.
    settings["tm.annotate_user"] = "false"
    config.include("pyramid_tm")
    config.include("pyramid_retry")

    engine = settings.get("ezpyr.engine") or make_engine(settings)
    session_factory = make_session_factory(engine)
    config.registry["dbsession_factory"] = session_factory
    config.registry["db_engine"] = engine

    def dbsession(request):
        # An explicit transaction manager from pyramid_tm; the session only
        # exists for requests that touch the database.
        session = request.environ.get("app.dbsession")
        if session is None:
            session = tm_session(session_factory, request.tm)
            # who made the request's changes, for the outbox
            session.info[ACTOR] = lambda: getattr(request.authenticated_user, "username", "")
        return session

    config.add_request_method(dbsession, reify=True)
