"""The cluster API's remaining holes (issue 8, item 3): hostile headers are
refused before anything is computed from them, a refused request's nonce
stays spent, the node header is signed, the grant is checked against the
socket's address (not X-Forwarded-For), every body has a schema, and the
setup key expires, works for one Add and dies with abort."""
import datetime as dt
import json
import threading
import urllib.error
import urllib.request

import pytest
import waitress

from ezpyr.cluster.models import ApiNonce, GrantedHost, SecondarySetup
from ezpyr.cluster.setup import seal
from ezpyr.cluster.signing import HEADER_NODE, HEADER_TIME, sign_headers
from ezpyr.meta import utcnow
from ezpyr.node.models import NodeIdentity
from tests.cluster.conftest import PEER_ADDR, PEER_ID, SECRET

FROM_PEER = {"REMOTE_ADDR": PEER_ADDR}


def post(testapp, path, raw, status, secret=SECRET, node=PEER_ID, headers=None):
    signed = sign_headers(secret, node, "POST", path, raw)
    signed.update(headers or {})
    return testapp.post(path, raw, headers=signed, extra_environ=FROM_PEER, status=status,
                        content_type="application/json")


def test_a_400_digit_timestamp_is_refused_not_a_server_error(testapp, peer):
    headers = sign_headers(SECRET, PEER_ID, "GET", "/cluster/api/hello")
    headers[HEADER_TIME] = "9" * 400
    res = testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER, status=403)
    assert "bad timestamp" in res.json["error"]


@pytest.mark.parametrize("header,value", [
    ("X-Ezpyr-Nonce", "n" * 10_000), ("X-Ezpyr-Signature", "zz"), ("X-Ezpyr-Timestamp", "-5"),
    ("X-Ezpyr-Timestamp", "1e9"), ("X-Ezpyr-Node", "é" * 3),
])
def test_malformed_signing_headers_are_refused(testapp, peer, header, value):
    headers = sign_headers(SECRET, PEER_ID, "GET", "/cluster/api/hello")
    headers[header] = value
    testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER, status=403)


def test_a_refused_signed_request_keeps_its_nonce_spent(testapp, peer, dbsession):
    raw = json.dumps({"table": "no_such_table", "ids": []}).encode()
    headers = sign_headers(SECRET, PEER_ID, "POST", "/cluster/api/rows", raw)
    # refused after the signature was accepted: the request's transaction is rolled back
    first = testapp.post("/cluster/api/rows", raw, headers=headers, extra_environ=FROM_PEER,
                         status=400)
    assert "not a replicated table" in first.json["error"]
    assert dbsession.query(ApiNonce).count() == 1
    again = testapp.post("/cluster/api/rows", raw, headers=headers, extra_environ=FROM_PEER,
                         status=403)
    assert "replayed" in again.json["error"]


def test_the_node_header_is_covered_by_the_signature(testapp, peer):
    headers = sign_headers(SECRET, "someone-else", "GET", "/cluster/api/hello")
    headers[HEADER_NODE] = PEER_ID  # relabelled after signing
    res = testapp.get("/cluster/api/hello", headers=headers, extra_environ=FROM_PEER, status=403)
    assert "bad signature" in res.json["error"]


@pytest.fixture
def behind_proxy(wsgi_app):
    """The panel served by real waitress, configured as the production
    sample is: X-Forwarded-For believed from 127.0.0.1."""
    server = waitress.create_server(
        wsgi_app, host="127.0.0.1", port=0, trusted_proxy="127.0.0.1", trusted_proxy_count=1,
        trusted_proxy_headers="x-forwarded-for", clear_untrusted_proxy_headers=True)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(5)


def test_the_grant_is_checked_against_the_socket_not_x_forwarded_for(behind_proxy, peer):
    headers = sign_headers(SECRET, PEER_ID, "GET", "/cluster/api/hello")
    headers["X-Forwarded-For"] = PEER_ADDR  # granted; the connection comes from 127.0.0.1, which is not
    request = urllib.request.Request(behind_proxy + "/cluster/api/hello", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert "address 127.0.0.1 is not granted" in json.loads(refused.value.read())["error"]


def test_a_granted_socket_address_is_served_by_waitress(behind_proxy, peer, dbsession):
    dbsession.add(GrantedHost(address="127.0.0.1"))
    dbsession.commit()
    headers = sign_headers(SECRET, PEER_ID, "GET", "/cluster/api/hello")
    headers["X-Forwarded-For"] = "198.51.100.9"  # not granted, and not believed either
    request = urllib.request.Request(behind_proxy + "/cluster/api/hello", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read())["role"] == "master"


ROW = {"id": "0" * 36, "name": "ops", "description": ""}

MALFORMED = [
    ("/cluster/api/resend", b'{"origin": "x", "epoch": 1, "seq": ' + b"9" * 5000 + b"}"),
    ("/cluster/api/resend", b'{"origin": "x", "epoch": 1e400, "seq": 1}'),
    ("/cluster/api/resend", b'{"origin": "x", "epoch": 99999999999999999999, "seq": 1}'),
    ("/cluster/api/resend", b'{"origin": ["x"], "epoch": 1, "seq": 1}'),
    ("/cluster/api/resend", b'{"origin": "x", "epoch": "1", "seq": 1}'),
    ("/cluster/api/resend", b"[" * 100_000 + b"]" * 100_000),
    ("/cluster/api/resend", b"\xff\xfe{"),
    ("/cluster/api/checksums", b'{"table": "users; drop table users", "limit": 5}'),
    ("/cluster/api/checksums", b'{"table": "login_throttle", "limit": 5}'),
    ("/cluster/api/checksums", b'{"table": "users", "limit": true}'),
    ("/cluster/api/checksums", b'{"table": "users", "after": {"a": 1}}'),
    ("/cluster/api/row-hashes", b'{"table": 5}'),
    ("/cluster/api/rows", b'{"table": "users", "ids": [1, 2]}'),
    ("/cluster/api/provenance", b'{"table": "users", "ids": "abc"}'),
    ("/cluster/api/handed-over", b'{"master": "x", "epoch": "many"}'),
    ("/cluster/api/resync/chunk", b'{"table": "nope", "rows": []}'),
    ("/cluster/api/resync/chunk", json.dumps({"table": "user_groups", "rows": [{"id": "x"}]}).encode()),
    ("/cluster/api/resync/chunk", json.dumps({"table": "user_groups", "rows": [dict(ROW, name=5)]}).encode()),
    ("/cluster/api/resync/chunk", json.dumps({"table": "user_groups", "rows": [dict(ROW, extra=1)]}).encode()),
    ("/cluster/api/resync/finish", b'{"vector": {"no colon": 1}, "counts": {}}'),
    ("/cluster/api/resync/finish", b'{"vector": {}, "counts": {"users": -1}}'),
    ("/cluster/api/demote", b'"just a string"'),
]


@pytest.mark.parametrize("path,raw", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_body_is_a_400_and_changes_nothing(testapp, peer, dbsession, path, raw):
    before = dbsession.query(NodeIdentity.role, NodeIdentity.epoch).all()
    res = post(testapp, path, raw, status=400)
    assert res.json["error"].startswith("bad request: ")
    dbsession.expire_all()
    assert dbsession.query(NodeIdentity.role, NodeIdentity.epoch).all() == before


# -- the setup key ----------------------------------------------------------------

SETUP_KEY = "setup-key-for-tests"
PRIMARY_ID = "99999999-8888-7777-6666-555555555555"


@pytest.fixture
def secondary(dbsession, secret_box):
    node = NodeIdentity(name="node-b", address="127.0.0.1:6544", role="secondary", epoch=0)
    dbsession.add_all([node, GrantedHost(address=PEER_ADDR), SecondarySetup(
        id=1, primary_address=f"{PEER_ADDR}:6543", setup_key_encrypted=secret_box.encrypt(SETUP_KEY),
        expires_at=utcnow() + dt.timedelta(hours=1))])
    dbsession.commit()
    return node


def setup_call(testapp, step, payload=None, status=200):
    path = f"/cluster/api/setup/{step}"
    if step == "hello":
        headers = sign_headers(SETUP_KEY, PRIMARY_ID, "GET", path)
        return testapp.get(path, headers=headers, extra_environ=FROM_PEER, status=status)
    sealed = json.dumps(seal(SETUP_KEY, payload or {})).encode()  # as Add sends it
    return post(testapp, path, sealed, status, secret=SETUP_KEY, node=PRIMARY_ID)


BEGIN = {"primary": {"id": PRIMARY_ID, "name": "node-a", "address": f"{PEER_ADDR}:6543",
                     "broker_url": "amqp://unused//", "epoch": 1}}


def test_an_expired_setup_key_is_refused(testapp, secondary, dbsession):
    dbsession.get(SecondarySetup, 1).expires_at = utcnow() - dt.timedelta(seconds=1)
    dbsession.commit()
    res = setup_call(testapp, "hello", status=403)
    assert "expired" in res.json["error"] and "ezpyr-init CONFIG --secondary" in res.json["error"]


def test_a_setup_key_begins_one_add_only(testapp, secondary):
    assert setup_call(testapp, "hello").json["role"] == "secondary"
    setup_call(testapp, "begin", BEGIN)
    res = setup_call(testapp, "begin", BEGIN, status=403)
    assert "already used" in res.json["error"]


def test_abort_kills_the_setup_key(testapp, secondary, dbsession):
    setup_call(testapp, "begin", BEGIN)
    setup_call(testapp, "abort")
    dbsession.expire_all()
    assert dbsession.get(SecondarySetup, 1) is None
    res = setup_call(testapp, "hello", status=403)
    assert "no setup key" in res.json["error"]


def test_a_setup_chunk_of_rows_missing_columns_is_a_400(testapp, secondary):
    setup_call(testapp, "begin", BEGIN)
    res = setup_call(testapp, "chunk", {"table": "user_groups", "rows": [{"id": "x" * 36}]}, status=400)
    assert "row 1 of user_groups" in res.json["error"]


def test_the_setup_key_lifetime_setting():
    from ezpyr.cluster.setup import setup_key_minutes
    from ezpyr.validation import Invalid
    assert setup_key_minutes({}) == 60 and setup_key_minutes({"ezpyr.setup_key_minutes": "5"}) == 5
    with pytest.raises(Invalid):
        setup_key_minutes({"ezpyr.setup_key_minutes": "0"})
