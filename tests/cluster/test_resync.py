"""The slave's side of resolving a split-brain: the master's resolved copy
is staged and applied in one transaction, or not at all."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.resolve import Resync
from ezpyr.cluster.snapshot import table_counts
from ezpyr.database import make_session_factory
from ezpyr.replication.apply import version_vector
from ezpyr.replication.rows import encode_row
from ezpyr.users.models import UserGroup
from ezpyr.validation import Invalid
from tests.cluster.conftest import PEER_ID


@pytest.fixture
def split_slave(dbsession, this_node, peer):
    dbsession.add(UserGroup(name="before"))
    dbsession.query(ClusterPeer).update({"split_brain_since": dt.datetime(2026, 1, 1)})
    dbsession.commit()
    this_node.role = "slave"
    dbsession.commit()
    return this_node


def group_names(engine):
    with engine.connect() as conn:
        return sorted(conn.execute(select(UserGroup.__table__.c.name)).scalars())


def split_brain(engine):
    with engine.connect() as conn:
        return conn.execute(select(ClusterPeer.__table__.c.split_brain_since)).scalar() is not None


def copied_group(name):
    table = UserGroup.__table__
    return encode_row(table, {"id": str(uuid.uuid4()), "name": name, "description": "",
                              "created_at": dt.datetime(2026, 1, 2)})


def resync_step(engine, staging, step, *args):
    """One API request's worth: its own session and transaction."""
    session = make_session_factory(engine)()
    try:
        result = getattr(Resync(session, staging), step)(*args)
        session.commit()
        return result
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def full_counts(engine, groups):
    with engine.connect() as conn:
        counts = {t: 0 for t in table_counts(conn)}
    counts["user_groups"] = groups
    return counts


def test_a_copy_cut_off_half_way_leaves_the_node_as_it_was(engine, split_slave, tmp_path):
    staging = tmp_path / "backups" / "resync-staging.jsonl"
    resync_step(engine, staging, "begin")
    resync_step(engine, staging, "load", "user_groups", [copied_group("from-master")])
    # … and the master stops here
    assert group_names(engine) == ["before"]
    assert split_brain(engine)
    assert staging.stat().st_mode & 0o777 == 0o600


def test_an_incomplete_copy_is_refused_and_changes_nothing(engine, split_slave, tmp_path):
    staging = tmp_path / "resync-staging.jsonl"
    resync_step(engine, staging, "begin")
    resync_step(engine, staging, "load", "user_groups", [copied_group("from-master")])
    with pytest.raises(Invalid, match="the copy is incomplete: user_groups: 1 here, 2 sent"):
        resync_step(engine, staging, "finish", {}, full_counts(engine, 2))
    assert group_names(engine) == ["before"]
    assert split_brain(engine)


def test_a_complete_copy_replaces_the_data_and_ends_the_split_brain(engine, split_slave, tmp_path):
    staging = tmp_path / "resync-staging.jsonl"
    resync_step(engine, staging, "begin")
    resync_step(engine, staging, "load", "user_groups", [copied_group("a"), copied_group("b")])
    counts = full_counts(engine, 2)
    resync_step(engine, staging, "finish", {f"{PEER_ID}:3": 7}, counts)
    assert group_names(engine) == ["a", "b"]
    assert not split_brain(engine)
    with engine.connect() as conn:
        assert version_vector(conn) == {(PEER_ID, 3): 7}
    assert not staging.exists()


def test_chunks_without_a_begin_are_refused(engine, split_slave, tmp_path):
    with pytest.raises(Invalid, match="no copy has begun"):
        resync_step(engine, tmp_path / "none.jsonl", "load", "user_groups", [copied_group("x")])
