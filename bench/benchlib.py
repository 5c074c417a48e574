"""What the benches share: real ezpyr nodes on MariaDB + RabbitMQ, the
processes and databases they create (and their clean-up), the writers, and
the MariaDB anchor figures.

Nothing here imports ``tests/``: a node is set up exactly as an operator
sets one up, with the console scripts of the virtualenv (``ezpyr-init``,
``ezpyr-grant-host``, ``ezpyr-cluster``, ``pserve``, ``ezpyr-worker``).

Environment:
  EZPYR_BENCH_MARIADB   SQLAlchemy URL of the MariaDB server (default mysql+pymysql://root@127.0.0.1:3306/)
  EZPYR_BENCH_RABBITMQ  AMQP URL to use as is; by default each run makes a RabbitMQ vhost of its own
                        (``ezpyr_bench_<pid>``, with rabbitmqctl) on amqp://guest:guest@127.0.0.1:5672
                        and deletes it at the end
  EZPYR_SHARED          the folder holding the yardstick's anchors/ (default: "shared" beside the project)
  EZPYR_BENCH_BIN       the folder of the console scripts (default: .venv/bin of the project)
  EZPYR_BENCH_PORT_BASE first port tried for the panels (default 16500)
"""
from __future__ import annotations

import atexit
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "ezpyr_bench_"
MARIADB_URL = os.environ.get("EZPYR_BENCH_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
RABBITMQ_BASE = "amqp://guest:guest@127.0.0.1:5672"
ADMIN_PASSWORD = "Bench-admin-pass-123"


def venv_bin() -> Path:
    if os.environ.get("EZPYR_BENCH_BIN"):
        return Path(os.environ["EZPYR_BENCH_BIN"])
    if (ROOT / ".venv" / "bin" / "ezpyr-worker").exists():
        return ROOT / ".venv" / "bin"
    return Path(sys.executable).parent


def shared_dir() -> Path:
    return Path(os.environ.get("EZPYR_SHARED") or ROOT.parent / "shared").resolve()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- MariaDB, directly (for set-up, observation and the plain-INSERT baseline) --------------

def _server():
    from sqlalchemy.engine import make_url
    return make_url(MARIADB_URL)


def mysql(database: str | None = None, autocommit: bool = True):
    import pymysql
    u = _server()
    return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=database, autocommit=autocommit,
                           charset="utf8mb4")


def database_url(name: str) -> str:
    return (_server().set(database=name).render_as_string(hide_password=False)) + "?charset=utf8mb4"


def scalar(conn, sql: str, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        row = c.fetchone()
        return row[0] if row else None


def drop_database(name: str) -> None:
    """Ends the connections still open on it (they would hold a metadata lock), then drops it."""
    conn = mysql()
    try:
        with conn.cursor() as c:
            c.execute("SET SESSION lock_wait_timeout = 30")
            c.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                      (name,))
            for (cid,) in c.fetchall():
                try:
                    c.execute(f"KILL CONNECTION {int(cid)}")
                except Exception:  # noqa: BLE001 - it ended by itself meanwhile
                    pass
            c.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the process that started it dies, even by
    kill -9, so that no panel, worker or writer outlives its bench."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the clean-up at exit still runs
        pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers() -> None:
    """Drops databases and vhosts that an earlier bench run (a process no longer alive)
    left behind, e.g. after kill -9. Only names ``ezpyr_bench_<pid>_…`` are touched."""
    try:
        conn = mysql()
        with conn.cursor() as c:
            c.execute("SHOW DATABASES LIKE 'ezpyr\\_bench\\_%'")
            names = [r[0] for r in c.fetchall()]
        conn.close()
    except Exception as error:  # noqa: BLE001
        log(f"cannot reach MariaDB at {_server().render_as_string(hide_password=True)}: {error}")
        raise SystemExit(1)
    for name in names:
        m = re.match(r"ezpyr_bench_(\d+)_", name)
        if m and not pid_alive(int(m.group(1))):
            log(f"dropping leftover database {name} (its bench process {m.group(1)} is gone)")
            drop_database(name)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for path in tmp.glob("ezpyr_bench_*_*"):
        m = re.match(r"ezpyr_bench_(\d+)_", path.name)
        if m and path.is_dir() and not pid_alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
    if shutil.which("rabbitmqctl") and not os.environ.get("EZPYR_BENCH_RABBITMQ"):
        out = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True).stdout
        for vhost in out.split():
            m = re.fullmatch(r"ezpyr_bench_(\d+)", vhost)
            if m and not pid_alive(int(m.group(1))):
                log(f"deleting leftover RabbitMQ vhost {vhost}")
                subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


# -- everything a run creates, and its clean-up ---------------------------------------------

class Run:
    """Owns every process, database, vhost and folder the bench creates; ``close``
    (also on Ctrl-C, SIGTERM, SIGHUP and at exit) stops and removes them all."""

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.databases: list[str] = []
        self.vhost: str | None = None
        self.dirs: list[Path] = []
        self.nodes: list[Node] = []
        self._closed = False
        self._port = int(os.environ.get("EZPYR_BENCH_PORT_BASE", 16500))
        self.tag = f"{PREFIX}{os.getpid()}"
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        sweep_leftovers()
        self.broker_url = self._broker()

    def _on_signal(self, signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _broker(self) -> str:
        if os.environ.get("EZPYR_BENCH_RABBITMQ"):
            return os.environ["EZPYR_BENCH_RABBITMQ"]
        if not shutil.which("rabbitmqctl"):
            log("rabbitmqctl not found: using the default vhost; the queues are deleted at the end")
            return RABBITMQ_BASE + "//"
        vhost = self.tag
        made = subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True, text=True)
        if made.returncode != 0:  # e.g. not root: no access to the node's Erlang cookie
            log(f"rabbitmqctl add_vhost failed ({made.stderr.strip()[:200]}): using the default vhost; "
                "the queues are deleted at the end")
            return RABBITMQ_BASE + "//"
        self.vhost = vhost
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True)
        return f"{RABBITMQ_BASE}/{vhost}"

    def workdir(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{self.tag}_{name}_", dir=os.environ.get("TMPDIR", "/tmp")))
        self.dirs.append(path)
        return path

    def port(self) -> int:
        """A free port from EZPYR_BENCH_PORT_BASE up (the tests take theirs from the
        kernel's ephemeral range, far above)."""
        while True:
            self._port += 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", self._port))
                except OSError:
                    continue
                return self._port

    def database(self, role: str) -> str:
        name = f"{self.tag}_{role}_{uuid.uuid4().hex[:6]}"
        self.databases.append(name)
        return name

    def spawn(self, name: str, argv: list[str], log_path: Path) -> subprocess.Popen:
        out = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=die_with_parent)
        out.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 20) -> None:
        """SIGTERM to the process's own group (it was started in a session of its own),
        SIGKILL if it is still there after ``timeout``."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self, timeout: float = 20) -> None:
        """SIGTERM to every process at once, then SIGKILL to what is left after ``timeout``."""
        procs = [p for _, p in self.procs]
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        self.procs = []

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up
        try:
            self.stop_all()
            for name in self.databases:
                try:
                    drop_database(name)
                except Exception as error:  # noqa: BLE001
                    log(f"could not drop database {name}: {error}")
            if self.vhost:
                subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)
            elif self.nodes:
                _delete_queues(self.broker_url, [f"ezpyr.changes.{n.node_id}" for n in self.nodes if n.node_id])
            for path in self.dirs:
                if self.keep:
                    log(f"kept {path}")
                else:
                    shutil.rmtree(path, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _delete_queues(url: str, names) -> None:
    try:
        from kombu import Connection
        with Connection(url, connect_timeout=5) as conn:
            channel = conn.default_channel
            for name in names:
                try:
                    channel.queue_delete(name)
                except Exception:  # noqa: BLE001
                    pass
    except Exception:  # noqa: BLE001
        pass


# -- one node ---------------------------------------------------------------------------------

INI = """[app:main]
use = egg:ezpyr
sqlalchemy.url = {db_url}
ezpyr.node_name = {name}
ezpyr.node_address = 127.0.0.1:{port}
ezpyr.secret_key_file = {dir}/secret.key
ezpyr.session_secret_file = {dir}/session.key
ezpyr.session.secure = false
ezpyr.broker_url = {broker_url}
ezpyr.outbox.keep_days = 7
ezpyr.outbox.keep_rows = 100000
# cheap password hashing: the benches create thousands of users; nothing here measures argon2
ezpyr.argon2.time_cost = 1
ezpyr.argon2.memory_cost = 1024
ezpyr.argon2.parallelism = 1
retry.attempts = 3

[alembic]
script_location = {root}/alembic

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:{port}
threads = 8

[loggers]
keys = root, ezpyr, worker, sqlalchemy

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[logger_ezpyr]
level = INFO
handlers =
qualname = ezpyr

[logger_worker]
level = INFO
handlers =
qualname = worker

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(threadName)s] %(message)s
"""


class Node:
    """One ezpyr node: its own ini, database, panel (pserve) and worker (ezpyr-worker)."""

    def __init__(self, run: Run, name: str):
        self.run_ = run
        self.name = name
        self.dir = run.workdir(name)
        self.port = run.port()
        self.address = f"127.0.0.1:{self.port}"
        self.db = run.database(name)
        self.db_url = database_url(self.db)
        self.ini = self.dir / f"{name}.ini"
        self.ini.write_text(INI.format(db_url=self.db_url.replace("%", "%%"), name=name, port=self.port,
                                       dir=self.dir, broker_url=run.broker_url, root=ROOT))
        self.panel: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.node_id: str | None = None
        self.setup_key: str | None = None
        self._env = None
        run.nodes.append(self)

    # -- console scripts --------------------------------------------------------------------
    def cli(self, script: str, *args: str, check: bool = True, timeout: float = 3600,
            wrap=None) -> subprocess.CompletedProcess:
        """``wrap``: a function of the argv that returns the one to run (a profiler's)."""
        argv = [str(venv_bin() / script), str(self.ini), *args]
        result = subprocess.run(wrap(argv) if wrap else argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if wrap:  # py-spy says what it does on the same stdout
            result.stdout = "".join(line for line in result.stdout.splitlines(keepends=True)
                                    if not line.startswith("py-spy> "))
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:1] + list(argv[2:]))} exited {result.returncode}:\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def init(self, secondary_of: "Node | None" = None) -> None:
        if secondary_of is None:
            self.cli("ezpyr-init", "--admin-password", ADMIN_PASSWORD, "--quiet")
        else:
            out = self.cli("ezpyr-init", "--secondary", secondary_of.address, "--quiet").stdout
            self.setup_key = out.split("setup key: ", 1)[1].split()[0]
        self.node_id = self.status()["node"]["id"]

    def status(self) -> dict:
        return json.loads(self.cli("ezpyr-cluster", "status", "--json").stdout)

    # -- processes --------------------------------------------------------------------------
    def start_panel(self) -> None:
        self.panel = self.run_.spawn(f"{self.name} panel", [str(venv_bin() / "pserve"), str(self.ini)],
                                     self.dir / "panel.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.panel.poll() is not None:
                raise RuntimeError(f"{self.name}'s panel exited:\n{self.tail('panel.log')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name}'s panel did not listen within 60 s:\n{self.tail('panel.log')}")

    def start_worker(self) -> float:
        """Starts ezpyr-worker; returns time.monotonic() just before the spawn."""
        t = time.monotonic()
        self.worker = self.run_.spawn(f"{self.name} worker", [str(venv_bin() / "ezpyr-worker"), str(self.ini)],
                                      self.dir / "worker.log")
        return t

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.run_.stop(self.worker)
            self.worker = None

    def check_alive(self) -> None:
        for what, proc, logname in (("panel", self.panel, "panel.log"), ("worker", self.worker, "worker.log")):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{self.name}'s {what} exited ({proc.returncode}):\n{self.tail(logname)}")

    def tail(self, logname: str, chars: int = 3000) -> str:
        path = self.dir / logname
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    # -- reading this node's database (observation only) -------------------------------------
    def connect(self):
        return mysql(self.db)

    def vector_seq(self, conn, origin: str) -> int:
        """Highest seq of ``origin``'s streams this node's version vector holds."""
        return int(scalar(conn, "SELECT COALESCE(MAX(seq), 0) FROM version_vector WHERE origin = %s "
                                "AND epoch = (SELECT MAX(epoch) FROM version_vector WHERE origin = %s)",
                          (origin, origin)) or 0)


def make_cluster(run: Run) -> tuple[Node, Node]:
    """Two nodes paired the way an operator does it (and bin/run does it): install the
    primary, grant the secondary's address, install the secondary with --secondary, start
    both panels and workers, then ``ezpyr-cluster add`` over the real cluster API."""
    primary = Node(run, "primary")
    secondary = Node(run, "secondary")
    primary.init()
    primary.cli("ezpyr-grant-host", "127.0.0.1")
    secondary.init(secondary_of=primary)
    return primary, secondary


def start_all(*nodes: Node) -> None:
    for node in nodes:
        node.start_panel()
    for node in nodes:
        node.start_worker()


def wait_workers_running(*nodes: Node, timeout: float = 60) -> None:
    """Until each node's worker says it runs (its imports and start-up, about a CPU-second
    each, are done): what an operator's Add meets on a cluster that was started earlier."""
    deadline = time.monotonic() + timeout
    for node in nodes:
        while "ezpyr-worker: running" not in node.tail("worker.log", 20_000):
            node.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name}'s worker did not start within {timeout:g} s:\n"
                                   f"{node.tail('worker.log')}")
            time.sleep(0.05)


def add_secondary(primary: Node, secondary: Node, wrap=None) -> tuple[float, dict]:
    t = time.monotonic()
    out = primary.cli("ezpyr-cluster", "add", secondary.address, "--setup-key", secondary.setup_key,
                      "--json", wrap=wrap).stdout
    took = time.monotonic() - t
    return took, json.loads(out.strip().splitlines()[-1])


def wait_connected(primary: Node, secondary: Node, timeout: float = 120) -> None:
    """Until the slave's worker is attached to the master's queue (as the status says)."""
    deadline = time.monotonic() + timeout
    state = {}
    while time.monotonic() < deadline:
        primary.check_alive()
        secondary.check_alive()
        state = primary.status()
        if state.get("status") == "connected" and state.get("peer_worker_attached") in (True, None):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the cluster did not connect within {timeout} s: {json.dumps(state)}")


def verify_cli(node: Node, timeout: float = 3600, wrap=None) -> tuple[float, int, dict]:
    """``ezpyr-cluster CONFIG verify --json``: (seconds, exit code, parsed output or {"error": …})."""
    t = time.monotonic()
    result = node.cli("ezpyr-cluster", "verify", "--json", check=False, timeout=timeout, wrap=wrap)
    took = time.monotonic() - t
    try:
        data = json.loads(result.stdout) if result.stdout.strip() else {}
    except ValueError:
        data = {}
    if "error" in data or not data:
        data = {"error": data.get("error") or (result.stderr.strip() or result.stdout.strip())[-500:]}
    return took, result.returncode, data


# -- writes, the way the panel makes them ----------------------------------------------------

DESCRIPTION = ("Production jump target in rack {r}; owned by team {t}; patched monthly; "
               "access via bastion only; notes: {n}")


def server_fields(i: int) -> dict:
    tag = uuid.uuid4().hex[:13]
    return {"host": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", "port": 22,
            "remote_user": "root" if i % 4 else "deploy",
            "description": DESCRIPTION.format(r=i % 97, t=i % 13, n=tag)}


def _writer_thread(env, box, name_check: str, next_job, out: list, prefix: str, pace) -> None:
    """name_check "panel": ServerService.create as the panel calls it (its name check seeks the
    case-insensitive unique index on MariaDB); "indexed": the same service with the bench's own
    exact-name lookup (``name = :name``)."""
    from sqlalchemy import select
    from ezpyr.activity.services import ActivityLog
    from ezpyr.servers.models import Server
    from ezpyr.servers.services import ServerInput, ServerLookup, ServerService

    class Indexed(ServerLookup):
        def name_owner(self, name):
            return self.dbsession.scalars(select(Server.id).where(Server.name == name)).first()

    node_name = env.settings.get("ezpyr.node_name", "")
    while True:
        k = next_job()
        if k is None:
            break
        scheduled = pace(k)
        if scheduled is None:
            break
        t0 = time.time_ns()
        try:
            # one transaction per change, as one panel request makes it (pyramid_tm + the
            # service + the activity log entry the view records)
            with env.session(actor="bench") as s:
                service = ServerService(s, box)
                data = ServerInput(name=f"{prefix}{k:08d}", **server_fields(k))
                if name_check == "indexed":
                    server = service.add(service.validate(data, lookup=Indexed(s)))
                    s.flush()
                else:
                    server = service.create(data)
                ActivityLog(s, node_name).record("server.create", server.name, username="bench",
                                                 remote_addr="127.0.0.1")
        except Exception as error:  # noqa: BLE001 - counted, reported
            out.append((k, t0, time.time_ns(), scheduled, repr(error)[:300]))
            continue
        out.append((k, t0, time.time_ns(), scheduled, None))


class PanelClient:
    """An admin in a browser: signs in to the panel over HTTP (once), then submits the
    New server form, one POST per change (the 303 answer means the change committed)."""

    def __init__(self, address: str, username: str = "admin", password: str = ADMIN_PASSWORD):
        import http.cookiejar
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.base = f"http://{address}"
        self.location = ""
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  NoRedirect)
        page = self._get("/login")
        self.csrf = self._token(page)
        status, _ = self._post("/login", {"username": username, "password": password, "csrf_token": self.csrf})
        if status != 303:
            raise RuntimeError(f"sign-in to {self.base} answered {status}")
        self.csrf = self._token(self._get("/servers/new"))

    @staticmethod
    def _token(page: str) -> str:
        m = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if not m:
            raise RuntimeError("no csrf_token on the page")
        return m.group(1)

    def _get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as r:
            return r.read().decode()

    def _post(self, path: str, fields: dict) -> tuple[int, str]:
        import urllib.error
        import urllib.parse
        data = urllib.parse.urlencode(fields).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=60) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:  # the 303 (redirects are not followed here) and real errors
            self.location = e.headers.get("Location", "")
            return e.code, e.read().decode(errors="replace")

    def follow(self) -> None:
        """What the browser does after the 303: load the page it points to (which also shows,
        and so takes out of the session cookie, the flash message)."""
        import urllib.parse
        if self.location:
            self._get(urllib.parse.urlsplit(self.location).path or "/")

    def add_server(self, name: str, fields: dict) -> None:
        """Returns when the panel answered 303 (committed); follow() loads the next page."""
        status, body = self._post("/servers/new", {
            "csrf_token": self.csrf, "name": name, "host": fields["host"], "port": str(fields["port"]),
            "remote_user": fields["remote_user"], "auth_method": "key", "password": "", "group_id": "",
            "description": fields["description"]})
        if status != 303:
            m = re.search(r'class="[^"]*error[^"]*"[^>]*>([^<]+)<', body)
            raise RuntimeError(f"POST /servers/new answered {status}: {m.group(1).strip() if m else body[:200]}")


def _http_writer_thread(address: str, next_job, out: list, prefix: str, pace) -> None:
    try:
        client = PanelClient(address)
    except Exception as error:  # noqa: BLE001
        out.append((-1, time.time_ns(), time.time_ns(), 0.0, f"sign-in failed: {error!r}"[:300]))
        return
    while True:
        k = next_job()
        if k is None:
            break
        scheduled = pace(k)
        if scheduled is None:
            break
        t0 = time.time_ns()
        try:
            client.add_server(f"{prefix}{k:08d}", server_fields(k))
        except Exception as error:  # noqa: BLE001 - counted, reported
            out.append((k, t0, time.time_ns(), scheduled, repr(error)[:300]))
            continue
        out.append((k, t0, time.time_ns(), scheduled, None))
        try:
            client.follow()
        except Exception:  # noqa: BLE001 - the list page is not what is measured
            pass


def writer_process(ini: str, name_check: str, prefix: str, indices: range, threads: int,
                   mode: str, start_wall: float, rate: float, deadline_wall: float, result_q,
                   via: str = "services", address: str = "") -> None:
    """One writer process (spawned): ``threads`` threads, each its own session per change,
    like one panel process with that many waitress threads.

    mode "paced": index k starts at start_wall + k / rate (open loop: a late writer does
    not lower the schedule of the others); "flat out": as fast as possible, until
    deadline_wall when given."""
    die_with_parent()
    import logging
    logging.disable(logging.WARNING)
    from ezpyr.scripts.node_env import NodeEnv
    env = NodeEnv(ini, logging=False)
    box = env.secret_box
    lock = threading.Lock()
    it = iter(indices)

    def next_job():
        with lock:
            return next(it, None)

    def pace(k):
        now = time.time()
        if mode == "paced":
            target = start_wall + k / rate
            if target > now:
                time.sleep(target - now)
            return target
        if now < start_wall:
            time.sleep(start_wall - now)
        if deadline_wall and time.time() >= deadline_wall:
            return None
        return 0.0

    outs = [[] for _ in range(threads)]
    if via == "http":
        ts = [threading.Thread(target=_http_writer_thread, args=(address, next_job, outs[i], prefix, pace))
              for i in range(threads)]
    else:
        ts = [threading.Thread(target=_writer_thread, args=(env, box, name_check, next_job, outs[i], prefix, pace))
              for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    env.close()
    result_q.put([r for o in outs for r in o])


def run_writers(node: Node, indices: range, *, procs: int, threads: int, mode: str, prefix: str,
                name_check: str = "panel", rate: float = 0.0, seconds: float = 0.0,
                lead: float = 3.0, on_start=None, on_wait=None, via: str = "services") -> tuple[list, float]:
    """Runs ``procs`` writer processes × ``threads`` threads over ``indices``.
    Returns (records, start_wall); a record is (k, t_before_ns, t_after_ns, scheduled, error).
    ``lead``: seconds from now to the common start (the processes import ezpyr meanwhile);
    ``on_start(pids)`` is called once the processes run (for the profiler), ``on_wait()``
    every 5 s while they do (for progress). ``via`` "services": ServerService in a NodeEnv
    session per change; "http": the panel's New server form over HTTP (PanelClient)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_wall = time.time() + lead
    deadline = start_wall + seconds if (mode == "flat out" and seconds) else 0.0
    shares = [indices[i::procs] for i in range(procs)]  # ranges: cheap to hand over
    ps = [ctx.Process(target=writer_process, args=(str(node.ini), name_check, prefix, share, threads, mode,
                                                     start_wall, rate, deadline, q, via, node.address), daemon=True)
          for share in shares]
    for p in ps:
        p.start()
    if on_start:
        on_start([p.pid for p in ps])
    records = []
    try:
        for _ in ps:
            while True:
                try:
                    records.extend(q.get(timeout=5))
                    break
                except Exception:  # noqa: BLE001 - queue.Empty: check the processes are alive
                    if on_wait:
                        on_wait()
                    dead = [p for p in ps if p.exitcode not in (None, 0)]
                    if dead:
                        raise RuntimeError(f"a writer process died (exit {dead[0].exitcode})")
        for p in ps:
            p.join(30)
    finally:
        for p in ps:
            if p.is_alive():
                p.terminate()
                p.join(5)
    return records, start_wall


# -- figures ------------------------------------------------------------------------------

def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def rounded(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(x, digits)


class Figures:
    """Figures of one bench: printed as they come, and collected for --json."""

    def __init__(self, bench: str):
        self.data = {"bench": bench, "figures": {}, "notes": [], "settings": {}}

    def figure(self, key: str, label: str, value, unit: str, **extra) -> None:
        self.data["figures"][key] = {"label": label, "value": value, "unit": unit, **extra}
        shown = "n/a" if value is None else (f"{value:,.3f}" if isinstance(value, float) and abs(value) < 10
                                              else f"{value:,.1f}" if isinstance(value, float)
                                              else f"{value:,}" if isinstance(value, int) else str(value))
        print(f"  FIGURE {label}: {shown} {unit}", flush=True)

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        print(f"  note: {text}", flush=True)


# -- the MariaDB anchors ----------------------------------------------------------------------

def load_anchors(paths: list[str]) -> dict:
    """{key: figure} from anchors.py's results json files (keys of later passes carry '@tag')."""
    out = {}
    for path in paths:
        p = Path(path)
        if not p.exists():
            continue
        data = json.loads(p.read_text())
        for rec in data.get("figures", []):
            out[rec["key"]] = rec
        out.setdefault("_facts", data.get("facts", {}))
    return out


def size_mismatches(anchors: dict, **sizes) -> list[str]:
    """The anchors' labels name their sizes: which of ``sizes`` (catchup, verify_rows,
    servers, users) differ from those of the anchor run, so that a ratio would mislead."""
    checks = {"catchup": ("catchup_single_apply_rate", "{:,} single-row"),
              "verify_rows": ("ptcs_clean_time", "{:,} rows"),
              "servers": ("snapshot_time", "({:,} servers"),
              "users": ("snapshot_time", "{:,} users")}
    out = []
    for name, value in sizes.items():
        key, pattern = checks[name]
        label = anchors.get(key, {}).get("figure")
        if value is not None and label and pattern.format(value) not in label:
            out.append(f"{name}={value:,} but the anchor measured: {label!r}; that ratio compares different sizes")
    return out


def anchor_paths(arg: str | None) -> list[str]:
    """--anchors: a results json, or a folder holding results.json (+ results.bp.json)."""
    if not arg:
        return []
    p = Path(arg)
    if p.is_dir():
        return [str(q) for q in (p / "results.json", p / "results.bp.json") if q.exists()]
    return [str(p)]


def compare(figs: Figures, anchors: dict, ours_key: str, anchor_key: str, *, lower_is_better: bool,
            target: str, label: str, met: bool | None = None) -> None:
    """Records the side-by-side row: the anchor figure of the same run, ours, the ratio
    ours / anchor, and the target (a bound on that ratio)."""
    ours = figs.data["figures"].get(ours_key, {}).get("value")
    anc = anchors.get(anchor_key, {}).get("value")
    unit = figs.data["figures"].get(ours_key, {}).get("unit", "")
    ratio = (ours / anc) if (isinstance(ours, (int, float)) and isinstance(anc, (int, float)) and anc) else None
    m = re.fullmatch(r"\s*([<>]=?|≤|≥)\s*([\d.]+)\s*[×x]?\s*", target)
    if met is None and ratio is not None and m:
        op, bound = m.group(1), float(m.group(2))
        met = ratio <= bound if op in ("<", "<=", "≤") else ratio >= bound
    row = {"label": label, "ezpyr": ours, "ezpyr_key": ours_key, "mariadb": anc, "mariadb_key": anchor_key,
           "unit": unit, "ratio": rounded(ratio), "target": target, "met": met,
           "lower_is_better": lower_is_better}
    figs.data.setdefault("compare", []).append(row)
    if anc is None:
        print(f"  COMPARE {label}: ezpyr {ours} {unit}; MariaDB anchor {anchor_key!r} not available", flush=True)
    else:
        print(f"  COMPARE {label}: MariaDB {anc} {unit} | ezpyr {ours} {unit} | ratio "
              f"{'n/a' if ratio is None else f'{ratio:.2f}'} | target {target}"
              f"{'' if met is None else (' met' if met else ' NOT met')}", flush=True)
