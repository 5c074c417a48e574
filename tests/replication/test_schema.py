"""The code's schema revision is looked up once per process, not once per
captured commit or applied message; the migrations are found from the ini."""
from __future__ import annotations

import shutil

from alembic.script import ScriptDirectory

from ezpyr.replication import schema
from ezpyr.replication.messages import ChangeMessage
from ezpyr.replication.capture import ACTOR
from ezpyr.replication.schema import code_revision, is_newer_revision
from ezpyr.users.models import UserGroup
from tests.conftest import ROOT
from tests.replication.test_capture_apply import nodes  # noqa: F401 - the two-node fixture

COMMITS = 20


def count_calls(monkeypatch, owner, name):
    """Wrap a library function so the test can count its calls."""
    calls = []
    original = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def test_head_is_looked_up_once_for_many_commits_and_applied_messages(nodes, monkeypatch):  # noqa: F811
    master, slave = nodes
    head_lookups = count_calls(monkeypatch, ScriptDirectory, "get_current_head")
    code_revision.cache_clear()  # as in a process that just started
    for i in range(COMMITS):
        with master.sessions() as s:
            s.info[ACTOR] = "admin"
            s.add(UserGroup(name=f"g{i}"))
            s.commit()
    entries = master.outbox()
    assert len(entries) == COMMITS and {e.schema_revision for e in entries} == {code_revision()}
    for entry in entries:  # what the applier does with each message it receives
        message = ChangeMessage.from_json(ChangeMessage.from_outbox(entry).to_json())
        assert not is_newer_revision(message.schema_revision)
        slave.apply(message)
    assert len(head_lookups) == 1


def test_migrations_are_found_from_the_ini(tmp_path):
    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "alembic", copy)
    ini = tmp_path / "node.ini"
    ini.write_text("[app:main]\nuse = egg:ezpyr\n\n[alembic]\nscript_location = %(here)s/migrations\n")
    try:
        schema.use_config(str(ini))
        assert schema._scripts().dir == str(copy)
        assert code_revision() == ScriptDirectory(str(copy)).get_current_head()
        ini.write_text("[app:main]\nuse = egg:ezpyr\n\n[alembic]\nscript_location = %(here)s/nowhere\n")
        schema.use_config(str(ini))  # a folder that does not exist: the shipped migrations
        assert schema._scripts().dir == schema.DEFAULT_SCRIPT_LOCATION
    finally:
        schema.use_config(None)
