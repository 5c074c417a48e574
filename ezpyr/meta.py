"""The SQLAlchemy metadata, the declarative base and the column types every
model shares.

Two kinds of tables exist:

* **replicated** tables (mapped classes that also inherit :class:`Replicated`)
  hold the data admins manage; they are the same on both cluster nodes and
  every row has a UUID primary key;
* **node-local** tables hold what belongs to one node only: its identity,
  its activity log, its login failures.

Rule for code that writes replicated tables: change rows through ORM objects
(``session.add``, attribute assignment, ``session.delete``), never with bulk
``update()``/``delete()`` statements or database-level cascades, so that the
one change-capture mechanism sees every change.
"""
from __future__ import annotations

import datetime as dt
import functools
import importlib
import uuid

from sqlalchemy import DateTime, MetaData, String, Text, TypeDecorator
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every module that defines mapped classes; alembic and the tests load them all.
MODEL_MODULES = (
    "ezpyr.node.models",
    "ezpyr.activity.models",
    "ezpyr.auth.models",
    "ezpyr.users.models",
    "ezpyr.servers.models",
    "ezpyr.access.models",
    "ezpyr.guard.models",
    "ezpyr.settings.models",
    "ezpyr.gateway.models",
    "ezpyr.replication.models",
    "ezpyr.cluster.models",
    "ezpyr.jobs.models",
    "ezpyr.api.models",
    "ezpyr.accounts.models",
)


def load_all_models() -> MetaData:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def utcnow() -> dt.datetime:
    """Now, in UTC, without tzinfo (how every timestamp is stored)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


class Timestamp(TypeDecorator):
    """A UTC timestamp with microseconds on every back end (MariaDB's plain
    DATETIME would drop them, and two nodes must store identical values)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value


# Text without MariaDB's 64 KB limit (outbox entries of big transactions, job results)
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Replicated:
    """Marks a mapped class as replicated: same on both nodes, UUID key."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)


@functools.cache
def replicated_tables() -> tuple:
    """The replicated tables, parents before children (worked out once: the
    models do not change while a process runs)."""
    return tuple(_replicated_tables())


def _replicated_tables():
    load_all_models()
    replicated = {
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, Replicated)
    }
    return [t for t in Base.metadata.sorted_tables if t.name in replicated]


def node_local_tables():
    load_all_models()
    names = {t.name for t in replicated_tables()}
    return [t for t in Base.metadata.sorted_tables if t.name not in names]
