"""The engine-level guard behind change capture: writes to replicated tables
that capture would not see are refused, on the master and on the slave,
unless the connection is marked as applying the other node's changes or as
recording them explicitly."""
from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, update

from ezpyr.activity.models import ActivityEntry
from ezpyr.meta import new_uuid, utcnow
from ezpyr.replication.capture import REPLAYING, NodeIsReadOnly, record_changes
from ezpyr.replication.models import OutboxEntry
from ezpyr.replication.writes import UncapturedWrite, applying, recording
from ezpyr.users.models import UserGroup
from tests.replication.test_capture_apply import nodes  # noqa: F401 - fixture

GROUPS = UserGroup.__table__


def a_group(name: str) -> dict:
    return {"id": new_uuid(), "name": name, "description": "", "created_at": utcnow()}


def groups(node) -> list[str]:
    with node.engine.connect() as conn:
        return sorted(conn.execute(select(GROUPS.c.name)).scalars())


def entries(node) -> int:
    with node.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(OutboxEntry))


@pytest.mark.parametrize("role", ["master", "slave"])
def test_core_writes_on_replicated_tables_are_refused(nodes, role):
    node = dict(zip(("master", "slave"), nodes))[role]
    with node.sessions() as s:
        s.add(UserGroup(name="kept"))
        if role == "master":
            s.commit()
    if role == "slave":
        with node.engine.begin() as conn, applying(conn):
            conn.execute(insert(GROUPS), [a_group("kept")])
    before = entries(node)
    statements = [insert(GROUPS).values(**a_group("sneaky")),
                  update(GROUPS).values(description="sneaky"),
                  GROUPS.delete()]
    for statement in statements:
        with pytest.raises(UncapturedWrite, match="user_groups"):
            with node.engine.begin() as conn:
                conn.execute(statement)
    with node.sessions() as s:  # the ORM's bulk statements skip the unit of work too
        with pytest.raises(UncapturedWrite):
            s.execute(update(UserGroup).values(description="sneaky"))
        s.rollback()
    assert groups(node) == ["kept"] and entries(node) == before
    with node.engine.connect() as conn:
        assert conn.execute(select(GROUPS.c.description)).scalar() == ""


def test_the_unit_of_work_is_captured_and_node_local_tables_are_free(nodes):
    master, _ = nodes
    with master.sessions() as s:
        s.add(UserGroup(name="ops"))
        s.commit()
    with master.engine.begin() as conn:  # node-local: not replicated, not guarded
        conn.execute(insert(ActivityEntry.__table__).values(action="x", username="y", at=utcnow()))
    assert groups(master) == ["ops"] and entries(master) == 1


def test_the_slaves_refusal_holds_for_core_writes(nodes):
    """A slave refuses: an unmarked Core write (not captured), and one
    marked as recorded (it would be recorded into a stream this node does
    not own), as it refuses ORM commits."""
    _, slave = nodes
    with pytest.raises(UncapturedWrite):
        with slave.engine.begin() as conn:
            conn.execute(insert(GROUPS).values(**a_group("sneaky")))
    with pytest.raises(NodeIsReadOnly):
        with slave.engine.begin() as conn, recording(conn):
            conn.execute(insert(GROUPS).values(**a_group("sneaky")))
    with pytest.raises(NodeIsReadOnly):
        with slave.sessions() as s:
            s.add(UserGroup(name="sneaky"))
            s.commit()
    assert groups(slave) == [] and entries(slave) == 0


def test_marked_writes_pass(nodes):
    master, slave = nodes
    with slave.engine.begin() as conn, applying(conn):  # the other node's change, applied here
        conn.execute(insert(GROUPS).values(**a_group("applied")))
        assert conn.get_execution_options().get("ezpyr_replicated_writes") == "applying"
    with slave.engine.begin() as conn:  # the mark ends with its block
        with pytest.raises(UncapturedWrite):
            conn.execute(insert(GROUPS).values(**a_group("after")))
    with slave.sessions() as s:  # a session loading the other node's data
        s.info[REPLAYING] = True
        s.execute(insert(GROUPS).values(**a_group("replayed")))
        s.commit()
    assert groups(slave) == ["applied", "replayed"] and entries(slave) == 0
    row = a_group("recorded")
    with master.engine.begin() as conn, recording(conn):  # the caller records it itself
        conn.execute(insert(GROUPS).values(**row))
        seq = record_changes(conn, [{"table": "user_groups", "op": "upsert", "pk": row["id"],
                                     "row": {**row, "created_at": row["created_at"].isoformat()}}], "test")
    assert seq == 1 and groups(master) == ["recorded"] and entries(master) == 1
