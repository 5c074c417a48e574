"""Who may write replicated tables: the engine-level guard behind change
capture.

Change capture (``capture``) sees what the ORM's unit of work writes. A
Core ``insert()``/``update()``/``delete()`` on a replicated table, or an
ORM bulk statement (``session.execute(update(User)…)``), would change data
without an outbox entry: the other node would never get it, and a slave's
refusal (``NodeIsReadOnly``, checked at commit) would not see it either.
So every such statement is refused with :class:`UncapturedWrite`, unless

* it runs inside a session's flush (the mapper events record it), or
* its connection is marked as **applying** the other node's changes
  (:func:`applying`: the applier, a snapshot or resync being loaded; a
  session with ``info[REPLAYING]`` counts as marked), or
* its connection is marked as **recording** them explicitly
  (:func:`recording`: the caller writes the outbox entry itself with
  ``record_changes``, as Resolve does); only where this node takes changes.

Raw SQL text is not inspected; code that writes replicated tables with it
must mark the connection the same way.
"""
from __future__ import annotations

import functools
import weakref
from contextlib import contextmanager

from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from ezpyr.meta import replicated_tables

WRITES = "ezpyr_replicated_writes"  # the connection's execution option
APPLYING = "applying"
RECORDING = "recording"
REPLAYING = "ezpyr.replaying"  # session.info key (capture skips such sessions)


class UncapturedWrite(RuntimeError):
    """A write to a replicated table that change capture would not see."""

    def __init__(self, table: str):
        super().__init__(
            f"a change to the replicated table {table!r} outside change capture: change rows through "
            "the ORM (session.add, attributes, session.delete), or mark the connection as applying "
            "the other node's changes or as recording them (ezpyr.replication.writes)")
        self.table = table


@contextmanager
def _marked(connection: Connection, mark: str):
    before = connection.get_execution_options().get(WRITES)
    connection.execution_options(**{WRITES: mark})
    try:
        yield connection
    finally:
        connection.execution_options(**{WRITES: before})


def applying(connection: Connection):
    """``with applying(conn):`` writes on ``conn`` apply the other node's
    changes (they are not captured again)."""
    return _marked(connection, APPLYING)


def recording(connection: Connection):
    """``with recording(conn):`` the caller records these writes itself
    (``capture.record_changes``) in the same transaction."""
    return _marked(connection, RECORDING)


@functools.cache
def _replicated_names() -> frozenset:
    return frozenset(t.name for t in replicated_tables())


# the session each connection is working for (set when the session begins on it)
_sessions: "weakref.WeakKeyDictionary[Connection, weakref.ref]" = weakref.WeakKeyDictionary()


@event.listens_for(Session, "after_begin")
def _remember_session(session, transaction, connection):
    _sessions[connection] = weakref.ref(session)


def _session_of(connection: Connection) -> Session | None:
    ref = _sessions.get(connection)
    return ref() if ref is not None else None


@event.listens_for(Engine, "before_execute")
def _guard(connection, clauseelement, multiparams, params, execution_options):
    if not isinstance(clauseelement, UpdateBase):
        return
    table = getattr(clauseelement, "table", None)
    name = getattr(table, "name", None)
    if name not in _replicated_names():
        return
    mark = execution_options.get(WRITES) or connection.get_execution_options().get(WRITES)
    if mark == APPLYING:
        return
    session = _session_of(connection)
    if session is not None and (session.info.get(REPLAYING) or session._flushing):
        return  # the other node's data being loaded, or the unit of work (captured)
    if mark == RECORDING:
        _check_writable(connection)
        return
    raise UncapturedWrite(name)


def _check_writable(connection: Connection) -> None:
    from ezpyr.node.models import NodeIdentity
    from ezpyr.replication.capture import WRITABLE_ROLES, NodeIsReadOnly

    role = connection.execute(select(NodeIdentity.__table__.c.role)).scalar()
    if role is not None and role not in WRITABLE_ROLES:
        raise NodeIsReadOnly(role)
