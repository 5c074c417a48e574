"""The channel between the nodes (issue: no secret crosses the network in
clear): Add and replication over https (the cluster API behind a TLS front,
its certificate checked against a CA file or a pinned fingerprint) and over
amqps (a RabbitMQ of the test's own with a TLS listener); the setup's
payloads sealed under the setup key, so nothing secret is readable even on
plain HTTP; the other node's broker URL encrypted at rest; and a warning
while the other node is called over plain HTTP beyond this machine."""
from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import text

from ezpyr.cluster.client import ClusterClient, PeerRefused, PeerTls, PeerUnreachable, PeerUntrusted
from ezpyr.servers.models import ServerGroup
from ezpyr.users.models import User
from ezpyr.users.services import UserService
from ezpyr.passwords import Passwords
from tests.channel_parts import Forwarder, TlsRabbitMQ, make_certificates
from tests.cluster_nodes import ClusterNode, free_port, wait_until
from tests.conftest import CHEAP_ARGON2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_broker(certificates):
    broker = TlsRabbitMQ(certificates)
    yield broker
    broker.close()


def keys(workdir):
    from ezpyr.secretbox import generate_key, write_key_file
    out = []
    for name in ("a", "b"):
        out.append(workdir / f"{name}.key")
        write_key_file(out[-1], generate_key())
    return out


def raw_peer_row(node) -> str:
    with node.env.engine.connect() as conn:
        return repr(conn.execute(text("SELECT * FROM cluster_peer")).mappings().all())


def test_add_and_replication_over_https_and_amqps(tmp_path, backend, tmp_path_factory, certificates,
                                                  tls_broker):
    settings = {"ezpyr.cluster.ca_file": certificates.ca, "ezpyr.broker_ca_file": certificates.ca}
    ports = [free_port(), free_port()]
    fronts = [Forwarder(port, certificates) for port in ports]
    key_a, key_b = keys(tmp_path)
    primary = ClusterNode(tmp_path, "primary", backend, tmp_path_factory, key_a, broker=tls_broker.url,
                          port=ports[0], node_address=f"https://127.0.0.1:{fronts[0].port}",
                          extra_settings=settings)
    secondary = ClusterNode(tmp_path, "secondary", backend, tmp_path_factory, key_b, broker=tls_broker.url,
                            secondary_of=primary.address, port=ports[1],
                            node_address=f"https://127.0.0.1:{fronts[1].port}", extra_settings=settings)
    try:
        with primary.env.session(actor="test") as s:
            s.add(ServerGroup(name="before-add"))
        primary.start()
        secondary.start()
        primary.run("ezpyr-grant-host", "127.0.0.1")
        result = primary.run("ezpyr-cluster", "add", secondary.address, "--setup-key", secondary.setup_key)
        assert "is now this node's slave" in result.stdout
        with primary.env.session(actor="test") as s:
            s.add(ServerGroup(name="after-add"))
        wait_until(lambda: secondary.count(ServerGroup) == 2, 60, message="a change over amqps to arrive")
        # both workers probe each other over https
        for node in (primary, secondary):
            wait_until(lambda: node.status()["status"] == "connected", 60, message=f"{node.name} connected")
            assert node.status()["warnings"] == []
        verify = primary.cluster("verify")
        assert verify["in_sync"], verify
        # the other node's broker URL (with its password) is not stored readable
        for node in (primary, secondary):
            assert "guest:guest" not in raw_peer_row(node)
    except BaseException:
        print(primary.logs(), secondary.logs())
        raise
    finally:
        primary.close()
        secondary.close()
        for front in fronts:
            front.close()


def test_the_setup_shows_no_secret_to_the_network_even_over_plain_http(tmp_path, backend, tmp_path_factory):
    key_a, key_b = keys(tmp_path)
    record = tmp_path / "wire.bin"
    secondary_port = free_port()
    front = Forwarder(secondary_port, record=record)
    primary = ClusterNode(tmp_path, "primary", backend, tmp_path_factory, key_a)
    secondary = ClusterNode(tmp_path, "secondary", backend, tmp_path_factory, key_b,
                            secondary_of=primary.address, port=secondary_port,
                            node_address=f"127.0.0.1:{front.port}")
    try:
        with primary.env.session(actor="test") as s:
            UserService(s, Passwords.from_settings(CHEAP_ARGON2)).create("wanda", "Wanda-pass-1234",
                                                                       skip_policy=True)
        with primary.env.session() as s:
            password_hash = s.query(User).filter(User.username == "wanda").one().password_hash
        primary.start()
        secondary.start()
        primary.run("ezpyr-grant-host", "127.0.0.1")
        primary.run("ezpyr-cluster", "add", secondary.address, "--setup-key", secondary.setup_key)
        assert secondary.count(User) == 2
        wire = record.read_bytes()
        assert b"/cluster/api/setup/chunk" in wire  # the recording saw the copy go by
        assert password_hash.encode() not in wire and b"$argon2" not in wire
        assert b"wanda" not in wire
        assert primary.broker_url.encode() not in wire and secondary.broker_url.encode() not in wire
        assert primary.broker_url not in raw_peer_row(secondary)
    finally:
        primary.close()
        secondary.close()
        front.close()


def test_the_certificate_is_checked_against_the_ca_file_or_the_pinned_fingerprint(
        tmp_path, tmp_path_factory, certificates):
    key_a, _ = keys(tmp_path)
    port = free_port()
    front = Forwarder(port, certificates)
    node = ClusterNode(tmp_path, "node", "sqlite", tmp_path_factory, key_a, port=port)
    node.start_panel()
    address = f"https://127.0.0.1:{front.port}"
    other = make_certificates(tmp_path / "other", "other")
    try:
        def hello(tls):
            return ClusterClient(address, "someone", "secret", timeout=5, tls=tls).hello()

        # trusted: the request reaches the panel (which refuses an unknown caller)
        for tls in (PeerTls(ca_file=str(certificates.ca)), PeerTls(fingerprint=certificates.fingerprint)):
            with pytest.raises(PeerRefused):
                hello(tls)
        with pytest.raises(PeerUntrusted) as wrong_pin:
            hello(PeerTls(fingerprint=other.fingerprint))
        assert certificates.fingerprint in str(wrong_pin.value) and other.fingerprint in str(wrong_pin.value)
        for tls in (PeerTls(ca_file=str(other.ca)), PeerTls()):
            with pytest.raises(PeerUnreachable, match="certificate is not trusted"):
                hello(tls)
        # the fingerprint as openssl prints it is accepted in the settings
        printed = subprocess.run(["openssl", "x509", "-in", str(certificates.cert), "-noout", "-fingerprint",
                                  "-sha256"], capture_output=True, text=True, check=True).stdout
        assert PeerTls.from_settings({"ezpyr.cluster.peer_fingerprint": printed}).fingerprint \
            == certificates.fingerprint
    finally:
        node.close()
        front.close()
