"""Properties of what two nodes decide, for every case hypothesis makes (on
both back ends, each example in a transaction that is rolled back): meet
(split-brain, stepping down, nothing), and Resolve's decide and
unique_clashes."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import insert, select

from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.resolve import SIDES, Plan, decide, unique_clashes
from ezpyr.cluster.roles import Meeting, meet
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.vector import Ordering, VersionVector
from ezpyr.replication.writes import applying
from ezpyr.users.models import UserGroup
from ezpyr.validation import Invalid

ME, THEM = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
DB = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

streams = st.tuples(st.sampled_from([ME, THEM]), st.integers(1, 3))
vectors = st.dictionaries(streams, st.integers(0, 6), max_size=6).map(VersionVector)
roles = st.sampled_from(["master", "slave", "demoting"])


def arrange(conn, role, epoch, peer_role, peer_epoch, split):
    conn.execute(insert(NodeIdentity.__table__).values(id=ME, name="me", role=role, epoch=epoch,
                                                       created_at=utcnow()))
    conn.execute(insert(ClusterPeer.__table__).values(
        id=THEM, name="them", address="192.0.2.1:1", broker_url_encrypted="x", secret_encrypted="x",
        role=peer_role, epoch=peer_epoch, split_brain_since=utcnow() if split else None,
        updated_at=utcnow()))


def state(conn):
    node = conn.execute(select(NodeIdentity.__table__)).mappings().one()
    peer = conn.execute(select(ClusterPeer.__table__)).mappings().one()
    return node["role"], peer["role"], peer["epoch"], peer["split_brain_since"] is not None


@DB
@given(mine=vectors, theirs=vectors, role=roles, epoch=st.integers(1, 4), their_role=roles,
       their_epoch=st.integers(1, 4), split=st.booleans())
def test_meet(engine, mine, theirs, role, epoch, their_role, their_epoch, split):
    with engine.connect() as conn:
        with conn.begin() as transaction:
            arrange(conn, role, epoch, "slave", 1, split)
            before = state(conn)
            outcome = meet(conn, mine, {"vector": theirs.to_json(), "role": their_role, "epoch": their_epoch})
            after = state(conn)
            transaction.rollback()
    concurrent = mine.compare(theirs) is Ordering.CONCURRENT
    step_down = role in ("master", "demoting") and their_role == "master" and their_epoch > epoch
    if split:  # a split-brain stays until an admin resolves it
        assert outcome.kind is Meeting.NOTHING and after == before
    elif concurrent:
        assert outcome.kind is Meeting.SPLIT_BRAIN and after[3]
        lower = epoch < max(1, their_epoch) or (epoch == max(1, their_epoch) and ME < THEM)
        assert (after[0] == "slave") == (lower or role == "slave")
        assert f"holds {theirs.lacks(mine)} change(s)" in outcome.message
    elif step_down:
        assert outcome.kind is Meeting.STEPPED_DOWN and after[:3] == ("slave", "master", their_epoch)
        assert not after[3]
    else:
        assert outcome.kind is Meeting.NOTHING and not outcome and after == before


ids = st.uuids().map(str)
rows = st.one_of(st.none(), st.fixed_dictionaries({"name": st.sampled_from(["a", "A", "b", "c"])}))
diffs = st.lists(st.fixed_dictionaries({"id": ids, "here": rows, "there": rows}), max_size=6,
                 unique_by=lambda d: d["id"])
report_tables = st.lists(st.tuples(st.sampled_from(["user_groups", "servers", "users"]), diffs), max_size=3,
                         unique_by=lambda t: t[0])
sides = st.sampled_from(SIDES)


@settings(max_examples=200)
@given(report_tables, st.one_of(st.none(), sides), st.dictionaries(st.sampled_from(["user_groups", "servers"]), sides),
       st.data())
def test_decide(tables, everything, per_table, data):
    report = {"tables": [{"table": name, "differing": rows} for name, rows in tables]}
    per_row = {}
    for name, rows in tables:
        for diff in rows:
            if data.draw(st.booleans()):
                per_row.setdefault(name, {})[diff["id"]] = data.draw(sides)
    plan = Plan(all=everything, tables=per_table, rows=per_row)
    chosen = {(name, d["id"]): per_row.get(name, {}).get(d["id"]) or per_table.get(name) or everything
              for name, rows in tables for d in rows}
    if any(side is None for side in chosen.values()):
        with pytest.raises(Invalid, match="Choose a side for every differing row"):
            decide(report, plan)
        return
    decisions = decide(report, plan)
    assert {(d.table, d.id): d.side for d in decisions} == chosen  # each row once, the most specific choice
    by_key = {(name, d["id"]): d for name, rows in tables for d in rows}
    for d in decisions:
        diff = by_key[(d.table, d.id)]
        kept, lost = (diff["here"], diff["there"]) if d.side == "here" else (diff["there"], diff["here"])
        assert d.keep == kept and d.lose == lost


def test_decide_refuses_a_row_without_id():
    report = {"tables": [{"table": "user_groups", "differing": [{"id": None, "here": None, "there": {}}]}]}
    with pytest.raises(Invalid, match="whole table"):
        decide(report, Plan(all="here"))


names = st.sampled_from(["web", "Web", "db", "ops"])


@DB
@given(stored=st.lists(names, max_size=4, unique_by=str.lower), kept=st.lists(st.tuples(st.booleans(), names), max_size=4),
       data=st.data())
def test_unique_clashes(engine, stored, kept, data):
    """A name is reported when, ignoring case, more than one row would hold
    it: rows kept as they are, and rows as the decisions make them."""
    from ezpyr.cluster.resolve import Decision
    stored_ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(stored))]
    decisions = []
    for n, (replace_stored, name) in enumerate(kept):
        if replace_stored and stored:
            row_id = data.draw(st.sampled_from(stored_ids))
            if any(d.id == row_id for d in decisions):
                continue
        else:
            row_id = f"11111111-0000-4000-8000-{n:012d}"
        keep = None if data.draw(st.booleans()) and replace_stored else {"name": name, "description": ""}
        decisions.append(Decision("user_groups", row_id, "here", keep, None))
    with engine.connect() as conn:
        with conn.begin() as transaction, applying(conn):
            if stored:
                conn.execute(insert(UserGroup.__table__), [
                    {"id": i, "name": name, "description": "", "created_at": utcnow()}
                    for i, name in zip(stored_ids, stored)])
            problems = unique_clashes(conn, decisions)
            transaction.rollback()
    final = {i: name for i, name in zip(stored_ids, stored)}
    for d in decisions:
        if d.keep is None:
            final.pop(d.id, None)
        else:
            final[d.id] = d.keep["name"]
    holders = {}
    for row_id, name in final.items():
        holders.setdefault(name.lower(), set()).add(row_id)
    clashing = {name for name, who in holders.items() if len(who) > 1}
    assert {p.split("'")[1] for p in problems} == clashing
