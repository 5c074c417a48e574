"""A real OpenSSH sshd per test node, on a spare loopback port with its own
host key, letting the provisioning key run the account agent (and nothing
else) on accounts kept under the node's own root directory."""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

from support.net import free_port, wait_until

SSHD = "/usr/sbin/sshd"
BIN = Path(sys.executable).parent
SHELL = "/usr/local/bin/ezsh-for-tests"  # never run: the accounts only carry it

CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
StrictModes no
PermitRootLogin forced-commands-only
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
LogLevel VERBOSE
"""


def make_root(root: Path) -> None:
    """An empty system's account files: the node's accounts live here."""
    (root / "etc").mkdir(parents=True)
    (root / "home").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\n")
    os.chmod(root / "etc/shadow", 0o640)
    os.chmod(root / "etc/gshadow", 0o640)


class NodeSshd:
    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = self.dir / "root"
        make_root(self.root)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.agent_log = self.dir / "agent.log"
        self.agent_log.touch()
        self.process: subprocess.Popen | None = None
        self.new_host_key()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory

    def settings(self, key_file: Path) -> dict:
        return {"ezpyr.accounts.ssh_address": self.address, "ezpyr.accounts.root": str(self.root),
                "ezpyr.accounts.shell": SHELL, "ezpyr.accounts.key_file": str(key_file),
                "ezpyr.accounts.timeout": "10", "ezpyr.accounts.retry_interval": "0.5"}

    def new_host_key(self) -> None:
        self.host_key = self.dir / "host_ed25519"
        for path in (self.host_key, Path(f"{self.host_key}.pub")):
            path.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
                       check=True)
        (self.dir / "sshd_config").write_text(CONFIG.format(port=self.port, host_key=self.host_key,
                                                           dir=self.dir))

    def fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-l", "-f", f"{self.host_key}.pub"], check=True,
                             capture_output=True, text=True).stdout
        return out.split()[1]

    def authorize(self, public_key: str, lock_wait: float | None = None) -> None:
        """The provisioning key's line, as ezpyr-init prints it, with this
        node's root and a log of every command the agent runs (and how long
        it waits for locks others hold, when given)."""
        command = shlex.join([str(BIN / "ezpyr-account-agent"), "--shell", SHELL, "--root", str(self.root),
                              "--log", str(self.agent_log)]
                             + (["--lock-wait", f"{lock_wait:g}"] if lock_wait is not None else []))
        (self.dir / "authorized_keys").write_text(f'restrict,command="{command}" {public_key}\n')

    def start(self) -> None:
        log = open(self.dir / "sshd.log", "ab")
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                        stdout=log, stderr=log, start_new_session=True)
        wait_until(self._listening, 20, message=f"sshd on {self.address}")

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"sshd exited: {(self.dir / 'sshd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    # -- reading the node's files -------------------------------------------
    def passwd(self) -> dict[str, list[str]]:
        return {f[0]: f for f in (line.split(":") for line in
                                  (self.root / "etc/passwd").read_text().splitlines()) if f[0] != "root"}

    def shadow(self) -> dict[str, list[str]]:
        return {f[0]: f for f in (line.split(":") for line in
                                  (self.root / "etc/shadow").read_text().splitlines()) if f[0] != "root"}

    def authorized_keys(self, username: str) -> Path:
        return self.root / "home" / username / ".ssh" / "authorized_keys"

    def commands_run(self) -> int:
        return len(self.agent_log.read_text().splitlines())


def wait_for(predicate, timeout=60, message=""):
    return wait_until(predicate, timeout, 0.1, message)


def provisioned_pair(workdir: Path, names=("sshd-a", "sshd-b")) -> tuple[Path, list[NodeSshd]]:
    """A provisioning key, and two sshds that let it run the agent (started:
    stop them at the end, also after a failure)."""
    from ezpyr.accounts.provisioning import ensure_key, public_key

    key_file = workdir / "provisioning_ed25519"
    ensure_key(str(key_file))
    sshds = [NodeSshd(workdir / name) for name in names]
    for sshd in sshds:
        sshd.authorize(public_key(str(key_file)))
    try:
        for sshd in sshds:
            sshd.start()
    except BaseException:
        for sshd in sshds:
            sshd.stop()
        raise
    return key_file, sshds


def node_settings(own: NodeSshd, other: NodeSshd, key_file: Path) -> dict:
    """A node's ezpyr.accounts settings: its own sshd, the other's."""
    return {**own.settings(key_file), "ezpyr.accounts.other_ssh_address": other.address}
