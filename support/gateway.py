"""The real parts the gateway tests run against: system accounts whose login
shell is ``ezsh``, OpenSSH sshd instances on loopback (the gateway, with the
``Match Group`` block, and target servers), the gateway service, and
OpenSSH's ``ssh`` client driven through a PTY with pexpect."""
from __future__ import annotations

import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pexpect

from support.net import free_port

# One set of test accounts per test process: pytest-xdist's workers (gw0,
# gw1 …) run side by side and would each sweep away the other's, so theirs
# are ezgw0_…, ezgw1_…; a run without workers (and the bench) uses ezgw_.
ACCOUNT_PREFIX = f"ezgw{os.environ.get('PYTEST_XDIST_WORKER', '').removeprefix('gw')}_"
GATEWAY_GROUP = f"{ACCOUNT_PREFIX}users"
VENV_BIN = Path(sys.executable).parent
EZSH_HOME = Path(f"/tmp/{ACCOUNT_PREFIX}ezsh")  # the test accounts' login shell lives here
SSHD = "/usr/sbin/sshd"
TOP = Path(__file__).resolve().parents[1]  # the checkout


def account(name: str) -> str:
    """This test process's name for the test account ``name``."""
    return ACCOUNT_PREFIX + name


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# -- system accounts ---------------------------------------------------------------------

def sweep_accounts() -> None:
    """Remove every test account (and the test group) a run left behind."""
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(ACCOUNT_PREFIX):
            subprocess.run(["userdel", "-r", "-f", entry.pw_name], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        grp.getgrnam(GATEWAY_GROUP)
        subprocess.run(["groupdel", GATEWAY_GROUP], stderr=subprocess.DEVNULL)
    except KeyError:
        pass


def make_account(name: str, *, shell: str | Path, gateway: bool,
                 group: str = GATEWAY_GROUP) -> pwd.struct_passwd:
    argv = ["useradd", "-m", "-s", str(shell), "-p", "*"]
    if gateway:
        argv += ["-G", group]
    run(*argv, name)
    return pwd.getpwnam(name)


def make_gateway_group(group: str = GATEWAY_GROUP) -> None:
    run("groupadd", group)


# -- keys and sshd -----------------------------------------------------------------------------

def keygen(path: Path, kind: str = "ed25519") -> str:
    if path.exists():
        path.unlink()
        Path(f"{path}.pub").unlink(missing_ok=True)
    run("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "ezgw-test", "-f", str(path))
    return Path(f"{path}.pub").read_text().strip()


class Sshd:
    """A real OpenSSH sshd on a loopback port, with its own host key and a
    config the test writes."""

    def __init__(self, directory: Path, name: str, extra: str = ""):
        self.dir = directory / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_key = self.dir / "host_key"
        keygen(self.host_key)
        self.keys_dir = self.dir / "authorized"
        self.keys_dir.mkdir(exist_ok=True)
        os.chmod(self.keys_dir, 0o755)
        self.extra = extra
        self.process: subprocess.Popen | None = None
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def write_config(self) -> Path:
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.keys_dir}/%u\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "UseDNS no\n"
            "LogLevel VERBOSE\n"
            "MaxStartups 100\n"
            "MaxSessions 50\n"
            + self.extra)
        return config

    def authorize(self, account: str, public_key: str) -> None:
        path = self.keys_dir / account
        path.write_text(public_key.strip() + "\n")
        os.chmod(path, 0o644)

    def start(self) -> None:
        config = self.write_config()
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "sshd.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.dir / "sshd.log").read_text())
                time.sleep(0.05)
        raise RuntimeError(f"sshd on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def new_host_key(self) -> None:
        """Restart with a new host key, as after a reinstalled OS."""
        self.stop()
        keygen(self.host_key)
        self.start()

    def log(self) -> str:
        return (self.dir / "sshd.log").read_text(errors="replace")


def install_ezsh(directory: Path) -> Path:
    """The ezsh entry point for the test accounts. The venv's interpreter
    lives under /root (mode 0700) on this machine, where the accounts cannot
    run it, so the same entry point is run by the system's Python 3.11: ezsh
    needs nothing but the standard library and ezpyr.gateway."""
    path = directory / "ezsh"
    path.write_text("#!/usr/bin/python3 -I\n"
                    "import sys\n"
                    f"sys.path.insert(0, {str(TOP)!r})\n"
                    "from ezpyr.gateway.shell import main\n"
                    "sys.exit(main())\n")
    os.chmod(path, 0o755)
    return path


def gateway_block(socket_path: Path, ezsh: Path, group: str = GATEWAY_GROUP) -> str:
    """The Match Group block of config/sshd-gateway.conf, pointed at this
    test's ezsh and service socket."""
    block = (TOP / "config" / "sshd-gateway.conf").read_text()
    block = block.replace("/opt/ezpyr/.venv/bin/ezsh", str(ezsh))
    block = block.replace("Match Group ezpyr-users", f"Match Group {group}")
    block = block.replace("/run/ezpyr/gateway.sock", str(socket_path))
    return block


# -- the gateway service ------------------------------------------------------------------------

class GatewayProcess:
    def __init__(self, ini: Path, socket_path: Path):
        self.ini = ini
        self.socket_path = socket_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([str(VENV_BIN / "ezpyr-gateway"), str(self.ini)],
                                        stdout=subprocess.DEVNULL,
                                        stderr=open(f"{self.ini}.log", "ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.socket_path.is_socket():
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(str(self.socket_path))
                    return
                except OSError:
                    pass
            if self.process.poll() is not None:
                raise RuntimeError(Path(f"{self.ini}.log").read_text())
            time.sleep(0.05)
        raise RuntimeError("the gateway service did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def write_ini(path: Path, url: str, secret_key: str, socket_path: Path, log_dir: Path,
              node_name: str = "gw-node", **extra: str) -> Path:
    lines = ["[app:main]", "use = egg:ezpyr", f"sqlalchemy.url = {url}",
             f"ezpyr.node_name = {node_name}", "ezpyr.node_address = 127.0.0.1:6543",
             f"ezpyr.secret_key = {secret_key}",
             "ezpyr.session_secret = test-session-secret-" + "x" * 40,
             f"ezpyr.gateway.socket = {socket_path}", f"ezpyr.gateway.log_dir = {log_dir}",
             "ezpyr.argon2.time_cost = 1", "ezpyr.argon2.memory_cost = 1024",
             "ezpyr.argon2.parallelism = 1"]
    lines += [f"{k.replace('__', '.')} = {v}" for k, v in extra.items()]
    lines += ["", "[alembic]",
              f"script_location = {TOP / 'alembic'}"]
    lines += ["", "[loggers]", "keys = root", "[handlers]", "keys = console",
              "[formatters]", "keys = generic", "[logger_root]", "level = INFO",
              "handlers = console", "[handler_console]", "class = StreamHandler",
              "args = (sys.stderr,)", "level = NOTSET", "formatter = generic",
              "[formatter_generic]", "format = %(asctime)s %(levelname)s %(name)s %(message)s"]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


# -- the user's side: OpenSSH's client through a PTY ---------------------------------------------

def ssh_argv(port: int, account: str, key: Path, *args: str, tty: bool = False) -> list[str]:
    return ["ssh", "-F", "/dev/null", "-p", str(port), "-i", str(key),
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", *(["-tt"] if tty else ["-T"]),
            f"{account}@127.0.0.1", *args]


def spawn(argv: list[str], *, cols: int = 100, rows: int = 30, timeout: int = 90) -> pexpect.spawn:
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(rows, cols), timeout=timeout,
                          env={"TERM": "xterm", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "LANG": "C.UTF-8"})
    return child


def cleanup_path(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
