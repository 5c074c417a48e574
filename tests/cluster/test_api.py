"""The cluster API refuses unsigned, forged, stale and replayed requests and
ungranted addresses."""
import json
import time

from ezpyr.cluster.signing import HEADER_SIGNATURE, sign_headers
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.models import OutboxEntry
from tests.cluster.conftest import PEER_ADDR, PEER_ID, SECRET

FROM_PEER = {"REMOTE_ADDR": PEER_ADDR}


def signed(method, path, body=b"", secret=SECRET, now=None, node=PEER_ID):
    return sign_headers(secret, node, method, path, body, now=now)


def test_signed_request_from_a_granted_peer_is_served(testapp, peer, this_node):
    res = testapp.get("/cluster/api/hello", headers=signed("GET", "/cluster/api/hello"),
                      extra_environ=FROM_PEER)
    assert res.json["node_id"] == this_node.id and res.json["role"] == "master"
    assert res.json["schema_revision"] and "vector" in res.json


def test_unsigned_request_is_refused(testapp, peer):
    res = testapp.get("/cluster/api/hello", extra_environ=FROM_PEER, status=403)
    assert "unsigned" in res.json["error"]


def test_forged_signature_is_refused(testapp, peer):
    headers = signed("GET", "/cluster/api/hello", secret="not-the-secret")
    res = testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER, status=403)
    assert "bad signature" in res.json["error"]


def test_signature_covers_the_body(testapp, peer):
    headers = signed("POST", "/cluster/api/resend", b'{"origin":"x","epoch":1,"seq":1}')
    res = testapp.post("/cluster/api/resend", b'{"origin":"x","epoch":1,"seq":99}', headers=headers,
                       extra_environ=FROM_PEER, status=403)
    assert "bad signature" in res.json["error"]


def test_stale_request_is_refused(testapp, peer):
    headers = signed("GET", "/cluster/api/hello", now=time.time() - 600)
    res = testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER, status=403)
    assert "stale" in res.json["error"]


def test_replayed_request_is_refused(testapp, peer):
    headers = signed("GET", "/cluster/api/hello")
    testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER)
    res = testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER, status=403)
    assert "replayed" in res.json["error"]


def test_ungranted_address_is_refused_even_when_signed(testapp, peer):
    res = testapp.get("/cluster/api/hello", headers=signed("GET", "/cluster/api/hello"),
                      extra_environ={"REMOTE_ADDR": "198.51.100.7"}, status=403)
    assert "not granted" in res.json["error"]


def test_unknown_node_is_refused(testapp, peer):
    headers = signed("GET", "/cluster/api/hello", node="someone-else")
    res = testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER, status=403)
    assert "unknown node" in res.json["error"]


def test_resend_requeues_outbox_entries(testapp, peer, this_node, dbsession):
    from ezpyr.meta import utcnow
    for seq in (1, 2, 3):
        dbsession.add(OutboxEntry(origin=this_node.id, epoch=1, seq=seq, changes="[]",
                                  schema_revision="0003", sent_at=utcnow()))
    dbsession.commit()
    body = json.dumps({"origin": this_node.id, "epoch": 1, "seq": 2}).encode()
    res = testapp.post("/cluster/api/resend", body, headers=signed("POST", "/cluster/api/resend", body),
                       extra_environ=FROM_PEER)
    assert res.json == {"requeued": 2}
    dbsession.expire_all()
    assert [e.sent_at is None for e in dbsession.query(OutboxEntry).order_by(OutboxEntry.seq)] == [False, True, True]


def test_the_status_the_peer_polls_builds_no_migration_context(testapp, peer, monkeypatch):
    from alembic.runtime.migration import MigrationContext

    from ezpyr.replication.schema import code_revision
    from tests.replication.test_schema import count_calls
    contexts = count_calls(monkeypatch, MigrationContext, "configure")
    for _ in range(10):  # the other node's worker asks for this every heartbeat
        res = testapp.get("/cluster/api/status", headers=signed("GET", "/cluster/api/status"),
                          extra_environ=FROM_PEER)
        assert res.json["schema_revision"] == code_revision()
    assert contexts == []
