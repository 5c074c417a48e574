"""Which schema revision this node runs, and whether another is newer.

The code's revision (the alembic head of the migrations shipped with it) is
looked up once per process: capture stamps it on every outbox entry and the
applier compares it with every message. The migrations are found where the
ini's ``[alembic] script_location`` says (``use_config``), else beside the
package (a source checkout).
"""
from __future__ import annotations

import configparser
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.exc import SQLAlchemyError

DEFAULT_SCRIPT_LOCATION = str(Path(__file__).resolve().parents[2] / "alembic")
_script_location = DEFAULT_SCRIPT_LOCATION

# alembic's own bookkeeping table, read without building a migration context
ALEMBIC_VERSION = Table("alembic_version", MetaData(), Column("version_num", String(32)))


def use_config(config_file: str | None) -> None:
    """Find the migrations from this ini's ``[alembic] script_location``
    when it names a folder that exists; otherwise keep the default."""
    global _script_location
    location = None
    if config_file:
        path = str(config_file).split("#")[0]
        # read as alembic reads it (%(here)s is the ini's folder), without
        # importing alembic: most commands never need it
        parser = configparser.ConfigParser(defaults={"here": str(Path(path).resolve().parent)})
        try:
            parser.read(path)
            location = parser.get("alembic", "script_location", fallback=None)
        except (configparser.Error, OSError, UnicodeDecodeError):  # an unreadable ini: keep the default
            location = None
    if not location or not Path(location).is_dir():
        location = DEFAULT_SCRIPT_LOCATION
    if location != _script_location:
        _script_location = location
        _scripts.cache_clear()
        code_revision.cache_clear()


@lru_cache(maxsize=1)
def _scripts():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", _script_location)
    return ScriptDirectory.from_config(cfg)


@lru_cache(maxsize=1)
def code_revision() -> str:
    """The alembic head this code was built for (looked up once)."""
    return _scripts().get_current_head()


def is_newer_revision(revision: str) -> bool:
    """True when ``revision`` is not one this code knows: a later upgrade."""
    if not revision or revision == code_revision():
        return False
    return _is_unknown(revision)


@lru_cache(maxsize=64)
def _is_unknown(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is None
    except Exception:  # noqa: BLE001 - alembic raises for unknown ids
        return True


def database_revision(connection) -> str:
    """The revision this database is at: one read of alembic's version
    table (always current: an upgrade made while the panel runs shows at
    once), without building an alembic migration context per call."""
    try:
        revisions = sorted(connection.execute(select(ALEMBIC_VERSION.c.version_num)).scalars())
    except SQLAlchemyError:
        return ""
    return ",".join(revisions)
