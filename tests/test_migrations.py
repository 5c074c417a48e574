"""The schema comes only from the alembic migrations: they go up, all the
way down and up again on a fresh database of each back end, and what they
build is what the models describe."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from ezpyr.database import make_engine
from ezpyr.meta import load_all_models
from tests.backends import drop_database, new_database
from tests.conftest import alembic_config, migrate


@pytest.fixture
def fresh_engine(backend, tmp_path_factory):
    url = new_database(backend, tmp_path_factory)
    engine = make_engine({"sqlalchemy.url": url})
    yield engine
    engine.dispose()
    drop_database(url)


def downgrade(engine, revision: str = "base") -> None:
    with engine.begin() as conn:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def revision(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def differences(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, load_all_models())


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def test_the_revisions_are_one_chain():
    script = ScriptDirectory.from_config(alembic_config(""))
    assert len(script.get_heads()) == 1, f"more than one head: {script.get_heads()}"
    chain = list(script.walk_revisions())
    assert chain[-1].down_revision is None
    for newer, older in zip(chain, chain[1:]):
        assert newer.down_revision == older.revision


def test_up_down_and_up_again(fresh_engine):
    model_tables = {t.name for t in load_all_models().sorted_tables}
    migrate(url_of(fresh_engine))
    assert revision(fresh_engine) == head()
    assert tables(fresh_engine) == model_tables | {"alembic_version"}

    downgrade(fresh_engine)
    assert tables(fresh_engine) == {"alembic_version"}
    assert revision(fresh_engine) is None

    migrate(url_of(fresh_engine))
    assert revision(fresh_engine) == head()
    assert tables(fresh_engine) == model_tables | {"alembic_version"}
    assert differences(fresh_engine) == []


def test_each_step_goes_down_and_up(fresh_engine):
    """Every single revision can be undone and redone from where it stands."""
    script = ScriptDirectory.from_config(alembic_config(""))
    url = url_of(fresh_engine)
    for step in reversed(list(script.walk_revisions())):  # oldest first
        migrate(url, step.revision)
        after = tables(fresh_engine)
        downgrade(fresh_engine, step.down_revision or "base")
        migrate(url, step.revision)
        assert tables(fresh_engine) == after, step.revision
    assert revision(fresh_engine) == head()


def test_the_migrated_schema_matches_the_models(fresh_engine):
    migrate(url_of(fresh_engine))
    assert differences(fresh_engine) == []
