"""The channel's settings and warnings, without a network: which node
addresses Add takes, when the cluster page warns about plain HTTP, how a
pinned fingerprint may be written, and the migration that encrypts the
other node's broker URL at rest."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from ezpyr.cluster.add import check_address
from ezpyr.cluster.client import PeerTls, address_host, is_plain_http_beyond_loopback, normalise_fingerprint
from ezpyr.cluster.services import ClusterService
from ezpyr.database import make_engine
from ezpyr.secretbox import SecretBox, generate_key
from ezpyr.validation import Invalid
from tests.backends import drop_database, new_database
from tests.conftest import migrate


@pytest.mark.parametrize("address", ["10.0.0.2:6543", "https://10.0.0.2:8443", "http://node2.example:80",
                                     "[fd00::2]:6543"])
def test_add_takes_host_port_and_http_or_https_addresses(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["", "10.0.0.2", "ftp://10.0.0.2:21", "https://10.0.0.2:8443/x",
                                     "10.0.0.2:0", "10.0.0.2:99999", "10.0.0.2 :6543", "https://:443"])
def test_add_refuses_what_is_not_an_address(address):
    with pytest.raises(Invalid, match="not an address"):
        check_address(address)


@pytest.mark.parametrize("address, host, warned", [
    ("10.0.0.2:6543", "10.0.0.2", True), ("http://10.0.0.2:6543", "10.0.0.2", True),
    ("node2.example:6543", "node2.example", True), ("https://10.0.0.2:8443", "10.0.0.2", False),
    ("127.0.0.1:6543", "127.0.0.1", False), ("[::1]:6543", "::1", False), ("localhost:6543", "localhost", False),
])
def test_plain_http_is_warned_about_beyond_loopback_only(address, host, warned):
    assert address_host(address) == host
    assert is_plain_http_beyond_loopback(address) is warned


def test_the_cluster_status_warns_while_the_other_node_is_called_over_plain_http(dbsession, peer):
    state = ClusterService(dbsession).state()
    assert state.peer.address == "192.0.2.20:6543"
    [warning] = state.as_dict()["warnings"]
    assert "192.0.2.20:6543 over plain HTTP" in warning
    peer.address = "https://192.0.2.20:8443"
    dbsession.commit()
    assert ClusterService(dbsession).state().as_dict()["warnings"] == []


def test_the_cluster_page_shows_the_warning(admin_app, peer):
    page = admin_app.get("/cluster")
    assert "over plain HTTP" in page.text


@pytest.mark.parametrize("written", [
    "sha256 Fingerprint=AB:CD:" + ":".join(["01"] * 30),
    "abcd" + "01" * 30,
])
def test_a_pinned_fingerprint_may_be_written_as_openssl_prints_it(written):
    assert normalise_fingerprint(written) == "AB:CD:" + ":".join(["01"] * 30)
    assert PeerTls.from_settings({"ezpyr.cluster.peer_fingerprint": written}).fingerprint.startswith("AB:CD")


@pytest.mark.parametrize("written", ["AB:CD", "not a fingerprint", "zz" * 32])
def test_a_malformed_pinned_fingerprint_is_refused(written):
    with pytest.raises(ValueError, match="not a SHA-256 certificate fingerprint"):
        normalise_fingerprint(written)


def test_the_migration_encrypts_the_stored_broker_url_and_back(backend, tmp_path_factory, monkeypatch):
    key = generate_key()
    monkeypatch.setenv("EZPYR_SECRET_KEY", key)
    url = new_database(backend, tmp_path_factory)
    engine = make_engine({"sqlalchemy.url": url})
    try:
        migrate(url, "0010")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO cluster_peer (id, name, address, broker_url, secret_encrypted, role, epoch, link, "
                "reachable, last_error, peer_vector, backlog_unsent, backlog_queued, queue_consumers, "
                "applier_state, split_brain_detail, updated_at) VALUES ('p1', 'b', '10.0.0.2:6543', "
                "'amqp://ezpyr:hunter2@10.0.0.2:5672/ezpyr', '', 'slave', 1, 'connected', 0, '', '{}', 0, 0, 0, "
                "'', '', '2026-11-25 12:00:00')"))
        migrate(url, "0017")
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT broker_url_encrypted FROM cluster_peer")).scalar_one()
        assert "hunter2" not in stored
        assert SecretBox([key]).decrypt(stored) == "amqp://ezpyr:hunter2@10.0.0.2:5672/ezpyr"
        from tests.test_migrations import downgrade
        downgrade(engine, "0010")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT broker_url FROM cluster_peer")).scalar_one() \
                == "amqp://ezpyr:hunter2@10.0.0.2:5672/ezpyr"
    finally:
        engine.dispose()
        drop_database(url)
