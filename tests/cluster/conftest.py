import pytest

from ezpyr.cluster.models import ClusterPeer, GrantedHost
from ezpyr.node.models import NodeIdentity

PEER_ID = "11111111-2222-3333-4444-555555555555"
PEER_ADDR = "192.0.2.20"
SECRET = "cluster-secret-for-tests"


@pytest.fixture
def this_node(dbsession):
    node = NodeIdentity(name="node-a", address="127.0.0.1:6543", role="master", epoch=1)
    dbsession.add(node)
    dbsession.commit()
    return node


@pytest.fixture
def peer(dbsession, this_node, secret_box):
    peer = ClusterPeer(id=PEER_ID, name="node-b", address="192.0.2.20:6543",
                       broker_url_encrypted=secret_box.encrypt("amqp://unused//"),
                       secret_encrypted=secret_box.encrypt(SECRET), role="slave", epoch=1)
    dbsession.add_all([peer, GrantedHost(address=PEER_ADDR)])
    dbsession.commit()
    return peer
