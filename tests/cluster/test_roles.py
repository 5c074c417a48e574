"""Who stops taking changes when a split-brain is found."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.roles import declare_split_brain
from ezpyr.node.models import NodeIdentity


def state(engine):
    with engine.connect() as conn:
        node = conn.execute(select(NodeIdentity.__table__)).mappings().one()
        peer = conn.execute(select(ClusterPeer.__table__)).mappings().one()
    return node["role"], peer["epoch"], peer["split_brain_since"] is not None


@pytest.mark.parametrize("peer_id", ["00000000-0000-0000-0000-000000000000",
                                     "ffffffff-ffff-ffff-ffff-ffffffffffff"])
def test_the_node_with_the_lower_epoch_steps_down_even_when_its_peer_row_is_stale(
        engine, dbsession, peer, peer_id):
    # the peer row still says epoch 1 (as when this node last heard of it);
    # the refused change came from the other node's epoch 2: whatever the
    # node ids, this node (epoch 1) is the one that stops taking changes
    dbsession.query(ClusterPeer).update({"id": peer_id})
    dbsession.commit()
    with engine.begin() as conn:
        outcome = declare_split_brain(conn, "both sides changed", 2)
    assert "takes no changes" in outcome
    assert state(engine) == ("slave", 2, True)


def test_the_node_with_the_higher_epoch_keeps_taking_changes(engine, dbsession, peer):
    dbsession.query(NodeIdentity).update({"epoch": 3})
    dbsession.commit()
    with engine.begin() as conn:
        outcome = declare_split_brain(conn, "both sides changed", 2)
    assert "takes no changes" not in outcome
    assert state(engine) == ("master", 2, True)
