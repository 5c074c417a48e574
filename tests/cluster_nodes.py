"""Real cluster nodes for tests: each has its own database, its own ini
file, and runs its panel (pserve) and worker (ezpyr-worker) as separate
processes that a test can kill -9 and start again."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from ezpyr.replication.apply import version_vector
from ezpyr.scripts.node_env import NodeEnv
from support.net import free_port, wait_until  # noqa: F401 (tests import them from here)
from tests.backends import broker_url, drop_database, new_database
from tests.conftest import CHEAP_ARGON2, ROOT

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "Admin-pass-123"


INI = """[app:main]
use = egg:ezpyr
sqlalchemy.url = {db_url}
ezpyr.node_name = {name}
ezpyr.node_address = {node_address}
ezpyr.secret_key_file = {secret_key_file}
ezpyr.session_secret_file = {dir}/session.key
ezpyr.broker_url = {broker_url}
ezpyr.worker.probe_interval = {probe_interval}
ezpyr.broker_heartbeat = {heartbeat}
{argon2}
{extra}

[alembic]
script_location = {root}/alembic

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:{port}
threads = 4

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(threadName)s] %(message)s
"""


class ClusterNode:
    def __init__(self, workdir: Path, name: str, backend: str, tmp_path_factory, secret_key_file: Path,
                 secondary_of: str | None = None, broker: str | None = None, heartbeat: float = 10,
                 probe_interval: float = 0.5, port: int | None = None, node_address: str | None = None,
                 extra_settings: dict | None = None):
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.name = name
        self.backend = backend
        self.port = port or free_port()
        # where the other node calls this one: its panel, or a TLS front before it
        self.address = node_address or f"127.0.0.1:{self.port}"
        self.db_url = new_database(backend, tmp_path_factory)
        self.broker_url = broker or broker_url(backend, self.dir)
        self.ini = self.dir / f"{name}.ini"
        self.ini.write_text(INI.format(
            db_url=self.db_url.replace("%", "%%"), name=name, port=self.port, dir=self.dir,
            node_address=self.address,
            extra="\n".join(f"{k} = {v}" for k, v in (extra_settings or {}).items()),
            secret_key_file=secret_key_file, broker_url=self.broker_url, root=ROOT, heartbeat=heartbeat,
            probe_interval=probe_interval,
            argon2="\n".join(f"{k} = {v}" for k, v in CHEAP_ARGON2.items()),
        ))
        self.panel = None
        self.worker = None
        self.setup_key = None
        if secondary_of:
            out = self.run("ezpyr-init", "--secondary", secondary_of, "--quiet").stdout
            self.setup_key = out.split("setup key: ", 1)[1].split()[0]
        else:
            self.run("ezpyr-init", "--admin-password", ADMIN_PASSWORD, "--quiet")
        self.env = NodeEnv(str(self.ini), logging=False)

    # -- processes -------------------------------------------------------
    def run(self, script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / script), str(self.ini), *args], capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{script} {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def _spawn(self, script: str, log_name: str) -> subprocess.Popen:
        log = open(self.dir / log_name, "ab")
        return subprocess.Popen([str(BIN / script), str(self.ini)], stdout=log, stderr=log,
                                start_new_session=True)

    def start_panel(self):
        self.panel = self._spawn("pserve", "panel.log")
        wait_until(self._panel_up, 30, message=f"{self.name}'s panel to listen")

    def _panel_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def start_worker(self):
        self.worker = self._spawn("ezpyr-worker", "worker.log")

    def kill_worker(self, sig=signal.SIGKILL):
        if self.worker is not None:
            self.worker.send_signal(sig)
            self.worker.wait(10)
            self.worker = None

    def kill_panel(self, sig=signal.SIGKILL):
        if self.panel is not None:
            self.panel.send_signal(sig)
            self.panel.wait(10)
            self.panel = None

    def start(self):
        self.start_panel()
        self.start_worker()

    def stop(self):
        self.kill_worker(signal.SIGTERM)
        self.kill_panel(signal.SIGTERM)

    def close(self):
        self.stop()
        self.env.close()
        drop_database(self.db_url)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.dir.glob("*.log"))

    # -- state -------------------------------------------------------------
    def cluster(self, *args: str) -> dict:
        result = self.run("ezpyr-cluster", *args, "--json", check=False)
        return json.loads(result.stdout) if result.stdout.strip() else {"error": result.stderr}

    def status(self) -> dict:
        with self.env.session() as s:
            from ezpyr.cluster.services import ClusterService
            return ClusterService(s).state().as_dict()

    def vector(self) -> dict:
        with self.env.engine.connect() as conn:
            return version_vector(conn)

    def unnumbered(self) -> int:
        """Committed outbox entries the relay has not numbered yet."""
        from sqlalchemy import func
        from ezpyr.replication.models import OutboxEntry
        with self.env.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.seq.is_(None)))

    def count(self, model) -> int:
        from sqlalchemy import func
        with self.env.session() as s:
            return s.scalar(select(func.count()).select_from(model))


def pair(master: ClusterNode, slave: ClusterNode):
    """Pairs two nodes of one test directly, database to database (no
    cluster API; Add does it for real): ``master`` becomes master, ``slave``
    slave with a copy of the master's data. Both must share the secret key.
    Safe to call again: the slave gets a fresh copy."""
    import secrets as _secrets

    from sqlalchemy import delete

    from ezpyr.cluster.models import ClusterPeer
    from ezpyr.cluster.services import ClusterService
    from ezpyr.cluster.snapshot import copy_snapshot
    from ezpyr.node.models import NodeIdentity
    from ezpyr.replication.capture import REPLAYING, sequence_committed
    from ezpyr.replication.models import OutboxEntry
    from ezpyr.replication.vector import VersionVector

    box = master.env.secret_box
    assert slave.env.secret_box.decrypt(box.encrypt("probe")) == "probe", "pair needs one secret key"
    secret = _secrets.token_urlsafe(32)
    sequence_committed(master.env.engine)
    with master.env.session() as s, slave.env.session() as t:
        me = s.scalars(select(NodeIdentity)).one()
        them = t.scalars(select(NodeIdentity)).one()
        t.info[REPLAYING] = True
        vector = copy_snapshot(s.connection(), t.connection())
        t.execute(delete(OutboxEntry))  # the slave's own history is replaced
        for session, node, peer_node, peer in ((s, me, them, slave), (t, them, me, master)):
            session.execute(delete(ClusterPeer))
            session.add(ClusterPeer(
                id=peer_node.id, name=peer_node.name, address=peer.address,
                broker_url_encrypted=box.encrypt(peer.broker_url), secret_encrypted=box.encrypt(secret),
                role="slave" if node is me else "master", epoch=1, link="connected",
                # both hold the snapshot: each knows the other has it
                peer_vector=VersionVector(vector).dumps()))
            ClusterService(session).grant("127.0.0.1")
        me.role, them.role = "master", "slave"
        them.epoch = me.epoch


def make_cluster(tmp_path, backend, tmp_path_factory, **options):
    from ezpyr.secretbox import generate_key, write_key_file
    key_file = tmp_path / "secret.key"
    write_key_file(key_file, generate_key())
    a = ClusterNode(tmp_path, "node-a", backend, tmp_path_factory, key_file, **options)
    b = ClusterNode(tmp_path, "node-b", backend, tmp_path_factory, key_file, **options)
    pair(a, b)
    return a, b


def primary_and_secondary(workdir, backend, tmp_path_factory):
    """A primary, and a secondary installed for it with ``ezpyr-init
    --secondary``; each has its own key file (Add hands the secondary the
    cluster's key)."""
    from ezpyr.secretbox import generate_key, write_key_file
    keys = []
    for name in ("a", "b"):
        keys.append(workdir / f"{name}.key")
        write_key_file(keys[-1], generate_key())
    primary = ClusterNode(workdir, "primary", backend, tmp_path_factory, keys[0])
    secondary = ClusterNode(workdir, "secondary", backend, tmp_path_factory, keys[1],
                            secondary_of=primary.address)
    return primary, secondary
