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


def post_signed(testapp, path, body, status=200):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return testapp.post(path, raw, headers=signed("POST", path, raw), extra_environ=FROM_PEER,
                        status=status)


def test_verify_pages_hash_at_most_limit_rows_and_say_where_they_stopped(testapp, peer, dbsession):
    from ezpyr.users.models import UserGroup
    dbsession.add_all(UserGroup(name=f"g{i:02d}") for i in range(30))
    dbsession.commit()
    ids = sorted(g.id for g in dbsession.query(UserGroup))
    first = post_signed(testapp, "/cluster/api/checksums",
                        {"table": "user_groups", "after": None, "upto": None, "limit": 10}).json
    assert first["count"] == 10 and first["upto"] == ids[9] and len(first["checksum"]) == 16
    rest = post_signed(testapp, "/cluster/api/checksums",
                       {"table": "user_groups", "after": ids[9], "upto": None, "limit": 100}).json
    assert rest["count"] == 20 and rest["upto"] is None
    inside = post_signed(testapp, "/cluster/api/row-hashes",
                         {"table": "user_groups", "after": ids[4], "upto": ids[20], "limit": 7}).json
    assert inside["upto"] == ids[11] and sorted(inside["rows"]) == ids[5:12]
    whole = post_signed(testapp, "/cluster/api/row-hashes",
                        {"table": "user_groups", "after": ids[4], "upto": ids[20], "limit": 50}).json
    assert whole["upto"] == ids[20] and sorted(whole["rows"]) == ids[5:21]
    parts = post_signed(testapp, "/cluster/api/checksums",
                        {"table": "user_groups", "after": ids[4], "upto": ids[20], "limit": 50,
                         "splits": [ids[7], ids[8], ids[15]]}).json
    assert parts["upto"] == ids[20] and [n for n, _ in parts["parts"]] == [3, 1, 7, 5]


def test_verify_requests_with_bad_bodies_are_refused_with_400(testapp, peer):
    page = {"table": "user_groups", "after": None, "upto": None, "limit": 10}
    bad_pages = [b"not json", b"[1, 2]", {}, {**page, "table": "jobs"}, {**page, "table": 5},
                 {**page, "table": {"a": 1}}, {**page, "table": ["user_groups"]},
                 {**page, "limit": "10"}, {**page, "limit": 0}, {**page, "limit": 10**9},
                 {**page, "limit": True}, {**page, "limit": 2.5}, {**page, "after": 5},
                 {**page, "upto": ["x"]}, {**page, "after": "x" * 100}, {**page, "splits": "a"},
                 {**page, "splits": [1]}, {**page, "splits": ["b", "a"]}, {**page, "splits": ["a"] * 65},
                 {**page, "after": "m", "splits": ["a"]}, {**page, "upto": "m", "splits": ["z"]}]
    for path in ("/cluster/api/checksums", "/cluster/api/row-hashes"):
        for body in bad_pages if path.endswith("checksums") else bad_pages[:15]:
            res = post_signed(testapp, path, body, status=400)
            assert res.json["error"], (path, body)
    bad_ids = [{"table": "user_groups", "ids": "abc"}, {"table": "user_groups", "ids": [1]},
               {"table": "user_groups", "ids": {"a": 1}}, {"table": 7, "ids": []},
               {"table": "user_groups", "ids": ["x"] * 5001}]
    for path in ("/cluster/api/rows", "/cluster/api/provenance"):
        for body in bad_ids:
            res = post_signed(testapp, path, body, status=400)
            assert res.json["error"], (path, body)
