"""The parts that channel tests put between two nodes: a throw-away CA with
a certificate for 127.0.0.1, a TLS-terminating (or plain, recording)
forwarder in front of a node's panel, and a RabbitMQ node of the test's own
with only a TLS listener."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.backends import IN_CI
from tests.cluster_nodes import free_port

HERE = Path(__file__).parent


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path

    @property
    def fingerprint(self) -> str:
        from ezpyr.cluster.client import certificate_fingerprint
        der = x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(serialization.Encoding.DER)
        return certificate_fingerprint(der)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path, name: str = "node") -> Certificates:
    """A CA made for this test alone and a certificate it signed for
    localhost and 127.0.0.1 (readable by RabbitMQ's own user)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(f"ezpyr test CA {name}")).issuer_name(_name(f"ezpyr test CA {name}"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    out = Certificates(directory / f"{name}-ca.pem", directory / f"{name}-cert.pem", directory / f"{name}-key.pem")
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    for path in (out.ca, out.cert, out.key):
        path.chmod(0o644)
    return out


class Forwarder:
    """``tests/tls_forwarder.py`` as a process: 127.0.0.1:<port> in front
    of 127.0.0.1:<target>, terminating TLS when given certificates, and
    writing every byte both ways to ``record`` when given one."""

    def __init__(self, target: int, certificates: Certificates | None = None, record: Path | None = None):
        self.port = free_port()
        args = [sys.executable, str(HERE / "tls_forwarder.py"), str(self.port), str(target)]
        if certificates is not None:
            args += ["--tls", str(certificates.cert), str(certificates.key)]
        if record is not None:
            args += ["--record", str(record)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "forwarding"

    def close(self):
        self.process.kill()
        self.process.wait(10)


def rabbitmq_tls_or_skip() -> None:
    if shutil.which("rabbitmq-server") is None:
        message = "rabbitmq-server is not installed: the amqps tests cannot run"
        if IN_CI:
            raise AssertionError(message)
        import pytest
        pytest.skip(message)


class TlsRabbitMQ:
    """A RabbitMQ node of this test's own, listening only for amqps on a
    spare loopback port with a certificate of the test's CA."""

    def __init__(self, certificates: Certificates):
        rabbitmq_tls_or_skip()
        # RabbitMQ runs as its own user: its files (certificates included)
        # live in a directory it owns, not under the test's private tmp
        self.dir = Path(tempfile.mkdtemp(prefix="ezpyr-rabbitmq-tls-"))
        for path in (certificates.ca, certificates.cert, certificates.key):
            shutil.copy(path, self.dir / path.name)
        self.port = free_port()
        self.node = f"ezpyrtls{os.getpid()}{self.port}@localhost"
        (self.dir / "rabbitmq.conf").write_text(
            "listeners.tcp = none\n"
            f"listeners.ssl.default = 127.0.0.1:{self.port}\n"
            f"ssl_options.cacertfile = {self.dir / certificates.ca.name}\n"
            f"ssl_options.certfile = {self.dir / certificates.cert.name}\n"
            f"ssl_options.keyfile = {self.dir / certificates.key.name}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
            "loopback_users = none\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        for path in (self.dir, *self.dir.iterdir()):
            shutil.chown(path, "rabbitmq")
        self.env = dict(os.environ, RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_PORT=str(free_port()),
                        RABBITMQ_DIST_PORT=str(free_port()), RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq"),
                        RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"), RABBITMQ_LOG_BASE=str(self.dir / "log"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
                        RABBITMQ_PID_FILE=str(self.dir / "rabbitmq.pid"))
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, capture_output=True, timeout=60)
        time.sleep(1)
        waited = subprocess.run(["rabbitmqctl", "-n", self.node, "wait", str(self.dir / "rabbitmq.pid"),
                                 "--timeout", "90"], env=self.env, capture_output=True, text=True, timeout=120)
        if waited.returncode != 0:
            self.close()
            raise AssertionError(f"the TLS RabbitMQ did not start: {waited.stdout}{waited.stderr}")

    @property
    def url(self) -> str:
        return f"amqps://guest:guest@localhost:{self.port}//"

    def close(self):
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], env=self.env, capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
