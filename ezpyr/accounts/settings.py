"""The accounts' settings, read from this node's config file."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ezpyr.accounts.models import TARGETS


@dataclass(frozen=True)
class AccountSettings:
    ssh_address: str  # this node's sshd, host:port
    other_ssh_address: str  # the other node's sshd, host:port
    user: str  # the provisioning account on both nodes
    key_file: str  # its private key (ezpyr-init makes it)
    shell: str  # the login shell put in the agent's command line
    root: str  # the accounts' root directory (/ in production)
    timeout: float
    retry_interval: float

    @classmethod
    def from_settings(cls, settings) -> "AccountSettings":
        key_file = settings.get("ezpyr.accounts.key_file", "")
        if not key_file:
            secret = settings.get("ezpyr.secret_key_file", "")
            key_file = str(Path(secret).parent / "provisioning_ed25519") if secret else ""
        return cls(
            ssh_address=settings.get("ezpyr.accounts.ssh_address", "").strip(),
            other_ssh_address=settings.get("ezpyr.accounts.other_ssh_address", "").strip(),
            user=settings.get("ezpyr.accounts.user", "root").strip(),
            key_file=key_file,
            shell=settings.get("ezpyr.accounts.shell", "") or str(Path(sys.executable).parent / "ezsh"),
            root=settings.get("ezpyr.accounts.root", "/") or "/",
            timeout=float(settings.get("ezpyr.accounts.timeout", 15)),
            retry_interval=float(settings.get("ezpyr.accounts.retry_interval", 5)),
        )

    def address(self, target: str) -> str:
        if target not in TARGETS:
            raise ValueError(f"node must be 'this' or 'other', not {target!r}")
        return self.ssh_address if target == "this" else self.other_ssh_address

    def missing(self, target: str) -> str:
        """Why account work for ``target`` cannot start ('' when it can)."""
        setting = "ezpyr.accounts.ssh_address" if target == "this" else "ezpyr.accounts.other_ssh_address"
        if not self.address(target):
            return f"{setting} is not set in this node's config"
        if not self.key_file or not Path(self.key_file).is_file():
            return (f"the provisioning key {self.key_file or '(ezpyr.accounts.key_file)'} is missing: "
                    "run ezpyr-init CONFIG")
        return ""

    def agent_command(self) -> str:
        """What the provisioning key may run: the command= of its line."""
        import shlex
        agent = str(Path(sys.executable).parent / "ezpyr-account-agent")
        argv = [agent, "--shell", self.shell]
        if self.root != "/":
            argv += ["--root", self.root]
        return shlex.join(argv)
