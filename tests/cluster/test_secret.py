"""The cluster secret's rotation as the other node receives it, the secrets
accepted while it rolls, and refusals said with a code (not only words)."""
import json

from sqlalchemy import select

from ezpyr.cluster.models import ClusterPeer
from ezpyr.cluster.secret import PeerKeys, _transfer_box, accepted_secrets
from ezpyr.cluster.signing import sign_headers
from ezpyr.replication.vector import VersionVector
from tests.cluster.conftest import PEER_ADDR, PEER_ID, SECRET

FROM_PEER = {"REMOTE_ADDR": PEER_ADDR}
PATH = "/cluster/api/rotate-secret"


def post(testapp, payload: dict, secret=SECRET, status=200):
    body = json.dumps(payload).encode()
    return testapp.post(PATH, body, headers=sign_headers(secret, PEER_ID, "POST", PATH, body),
                        extra_environ=FROM_PEER, status=status)


def secrets(dbsession, secret_box):
    dbsession.expire_all()
    peer = dbsession.scalars(select(ClusterPeer)).one()
    return tuple(secret_box.decrypt(v) if v else None for v in (
        peer.secret_encrypted, peer.next_secret_encrypted, peer.previous_secret_encrypted))


def test_the_other_node_hands_over_a_new_secret(testapp, dbsession, peer, secret_box):
    token = _transfer_box(SECRET).encrypt(b"the new secret").decode()
    assert post(testapp, {"secret": token}).json == {"rotated": True}
    assert secrets(dbsession, secret_box) == ("the new secret", None, SECRET)
    post(testapp, {"secret": token}, secret="the new secret")  # asked again: nothing more changes
    assert secrets(dbsession, secret_box) == ("the new secret", None, SECRET)
    # both are accepted for API requests until the old one retires
    testapp.get("/cluster/api/hello", headers=sign_headers(SECRET, PEER_ID, "GET", "/cluster/api/hello"),
                extra_environ=FROM_PEER)
    status = testapp.get("/cluster/api/status", extra_environ=FROM_PEER,
                         headers=sign_headers("the new secret", PEER_ID, "GET", "/cluster/api/status")).json
    assert status["signed_before_switch"] == {} and len(status["secret_id"]) == 16
    assert "the new secret" not in json.dumps(status) and SECRET not in json.dumps(status)


def test_a_secret_not_sealed_with_the_cluster_secret_is_refused(testapp, dbsession, peer, secret_box):
    for payload in ({"secret": _transfer_box("a guess").encrypt(b"mine now").decode()},
                    {"secret": "not a token"}):
        res = post(testapp, payload, status=409)  # well-formed, but not readable with this node's secret
        assert "error" in res.json
    for payload in ({"secret": 5}, {}, {"secret": "x" * 1001}):
        res = post(testapp, payload, status=400)  # not the endpoint's schema
        assert "error" in res.json
    assert secrets(dbsession, secret_box) == (SECRET, None, None)


def test_a_request_signed_with_another_secret_is_refused_with_its_code(testapp, dbsession, peer, secret_box):
    token = _transfer_box("x").encrypt(b"y").decode()
    res = post(testapp, {"secret": token}, secret="a guess", status=403)
    assert res.json["code"] == "bad-signature"
    res = testapp.get("/cluster/api/hello", extra_environ={"REMOTE_ADDR": "198.51.100.7"},
                      headers=sign_headers(SECRET, PEER_ID, "GET", "/cluster/api/hello"), status=403)
    assert res.json["code"] == "not-granted"
    assert secrets(dbsession, secret_box) == (SECRET, None, None)


def test_the_previous_secret_retires_once_the_other_node_signs_with_the_new_one(
        engine, dbsession, peer, secret_box):
    row = dbsession.scalars(select(ClusterPeer)).one()
    row.secret_encrypted = secret_box.encrypt("new")
    row.previous_secret_encrypted = secret_box.encrypt(SECRET)
    dbsession.commit()
    keys = PeerKeys(engine, secret_box)
    assert accepted_secrets(row, secret_box) == ["new", SECRET]
    new_id = keys.keyring().key_id()
    # the other node still signs with the old secret: kept
    assert not keys.retire_if_switched({"secret_id": "0" * 16}, VersionVector())
    # it signs with the new one, but this node lacks a change it signed with the old one: kept
    waiting = {"secret_id": new_id, "signed_before_switch": {f"{PEER_ID}:1": 3}}
    assert not keys.retire_if_switched(waiting, VersionVector({(PEER_ID, 1): 2}))
    assert secrets(dbsession, secret_box) == ("new", None, SECRET)
    assert keys.retire_if_switched(waiting, VersionVector({(PEER_ID, 1): 3}))
    assert secrets(dbsession, secret_box) == ("new", None, None)
    assert keys.keyring().previous is None


def test_refused_messages_show_on_the_cluster_page_and_in_status(admin_app, dbsession, peer):
    from ezpyr.cluster.services import ClusterService
    from ezpyr.replication.messages import Refusal
    from ezpyr.replication.refusals import record_refusal

    assert "Refused change messages" not in admin_app.get("/cluster").text
    with dbsession.bind.begin() as conn:
        record_refusal(conn, Refusal.UNSIGNED, "", b"{}")
        total = record_refusal(conn, Refusal.FORGED, "", b"{\"v\":1}")
    page = admin_app.get("/cluster").text
    assert "Refused change messages" in page
    assert f"{total} change messages refused and kept out of this node&#39;s database" in page
    assert "its signature does not match" in page
    state = ClusterService(dbsession).state().as_dict()
    assert state["refused_messages"]["total"] == total and state["refused_messages"]["last_reason"] == "bad-signature"


def test_refused_messages_are_a_metric(testapp, dbsession, this_node):
    from prometheus_client.parser import text_string_to_metric_families

    from ezpyr.replication.messages import Refusal
    from ezpyr.replication.refusals import record_refusal

    def refused() -> float:
        body = testapp.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}).text
        family = {f.name: f for f in text_string_to_metric_families(body)}["ezpyr_change_messages_refused"]
        return next(s.value for s in family.samples if s.name.endswith("_total"))

    with dbsession.bind.begin() as conn:  # the counter goes on from where it was (MariaDB keeps
        before = record_refusal(conn, Refusal.FORGED, "", b"x")  # its ids after the tables are emptied)
    assert refused() == before
    with dbsession.bind.begin() as conn:
        for _ in range(3):
            record_refusal(conn, Refusal.FORGED, "", b"x")
    assert refused() == before + 3
