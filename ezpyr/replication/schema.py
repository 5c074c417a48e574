"""Which schema revision this node runs, and whether another is newer."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parents[2] / "alembic"))
    return ScriptDirectory.from_config(cfg)


def code_revision() -> str:
    """The alembic head this code was built for."""
    return _scripts().get_current_head()


def is_newer_revision(revision: str) -> bool:
    """True when ``revision`` is not one this code knows: a later upgrade."""
    if not revision or revision == code_revision():
        return False
    try:
        return _scripts().get_revision(revision) is None
    except Exception:  # noqa: BLE001 - alembic raises for unknown ids
        return True
