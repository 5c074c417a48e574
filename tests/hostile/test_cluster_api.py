"""Every cluster API endpoint, fed hostile bodies by a peer that signs them
correctly (the worst case: the caller holds the cluster secret): never a
5xx, and a refused request changes no replicated row."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ezpyr.cluster.signing import sign_headers
from ezpyr.cluster.models import ClusterPeer, GrantedHost
from tests.cluster.conftest import PEER_ADDR, PEER_ID, SECRET
from tests.hostile.conftest import HOSTILE, TEXT, snapshot

# endpoint -> the keys its body has (hostile values go under real keys too)
ENDPOINTS = {
    "/cluster/api/resend": ["origin", "epoch", "seq"],
    "/cluster/api/checksums": ["table", "after", "upto", "limit", "splits"],
    "/cluster/api/row-hashes": ["table", "after", "upto", "limit"],
    "/cluster/api/rows": ["table", "ids"],
    "/cluster/api/provenance": ["table", "ids"],
    "/cluster/api/handed-over": ["master", "epoch"],
    "/cluster/api/resync/chunk": ["table", "rows"],
    "/cluster/api/resync/finish": ["vector", "counts"],
    "/cluster/api/setup/begin": ["primary"],
    "/cluster/api/setup/chunk": ["table", "rows"],
    "/cluster/api/setup/finish": ["vector", "counts", "epoch", "secret", "data_key"],
    "/cluster/api/setup/abort": [],
}
TABLES = ["users", "user_groups", "servers", "access_rules", "command_rules", "settings", "nope",
          "login_throttle", "activity_log"]

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20, max_value=10**400),
              st.floats(allow_nan=False), TEXT, st.sampled_from(TABLES)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


@pytest.fixture
def peer(dbsession, world, secret_box):
    """This node is the master of a cluster whose slave calls it."""
    dbsession.add_all([ClusterPeer(id=PEER_ID, name="node-b", address=f"{PEER_ADDR}:6543",
                                   broker_url_encrypted=secret_box.encrypt("amqp://unused//"), secret_encrypted=secret_box.encrypt(SECRET),
                                   role="slave", epoch=1),
                       GrantedHost(address=PEER_ADDR)])
    dbsession.commit()


def bodies(keys):
    shaped = st.fixed_dictionaries({}, optional={key: JSON for key in keys}) if keys else st.just({})
    rows = st.fixed_dictionaries({"table": st.sampled_from(TABLES),
                                  "rows": st.lists(st.dictionaries(st.text(max_size=12), JSON, max_size=6),
                                                   max_size=3)})
    as_json = st.one_of(shaped, rows, JSON).map(lambda v: json.dumps(v).encode())
    return st.one_of(as_json, as_json, st.binary(max_size=200),
                     st.integers(min_value=50, max_value=50_000).map(lambda n: b"[" * n + b"]" * n))


@given(data=st.data())
@HOSTILE
def test_every_cluster_api_body_answers_below_500_and_a_refusal_changes_nothing(
        testapp, engine, peer, data):
    path = data.draw(st.sampled_from(sorted(ENDPOINTS)), label="endpoint")
    raw = data.draw(bodies(ENDPOINTS[path]), label="body")
    before = snapshot(engine)
    answer = testapp.post(path, raw, headers=sign_headers(SECRET, PEER_ID, "POST", path, raw),
                          extra_environ={"REMOTE_ADDR": PEER_ADDR}, content_type="application/json",
                          expect_errors=True)
    assert answer.status_int < 500, (path, raw[:300], answer.text[:2000])
    if answer.status_int >= 400:
        assert snapshot(engine) == before


@given(headers=st.dictionaries(
    st.sampled_from(["X-Ezpyr-Node", "X-Ezpyr-Timestamp", "X-Ezpyr-Nonce", "X-Ezpyr-Signature"]),
    st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=500),
              st.integers().map(str), st.sampled_from(["9" * 400, "-1", "1e9", " 1", ""])), min_size=1))
@HOSTILE
def test_hostile_signing_headers_are_refused_not_a_500(testapp, engine, peer, headers):
    signed = sign_headers(SECRET, PEER_ID, "GET", "/cluster/api/hello")
    signed.update(headers)
    answer = testapp.get("/cluster/api/hello", headers=signed, extra_environ={"REMOTE_ADDR": PEER_ADDR},
                         expect_errors=True)
    assert answer.status_int in (200, 403), answer.text[:500]


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_malformed_json_is_a_400_at_every_endpoint(testapp, peer, path):
    raw = b'{"table": '
    answer = testapp.post(path, raw, headers=sign_headers(SECRET, PEER_ID, "POST", path, raw),
                          extra_environ={"REMOTE_ADDR": PEER_ADDR}, expect_errors=True)
    # the setup endpoints refuse a master first (403): the signature is checked before the body
    assert answer.status_int == (403 if "/setup/" in path else 400), answer.text
