"""The gateway's world for a test session: real system accounts whose login
shell is ``ezsh`` (prefix ``ezgw_``, or ``ezgw0_``… per xdist worker, removed afterwards and swept at the
start of the next run after a crash), a real sshd as the gateway, real sshd
instances as target servers, and the gateway service on this back end's
database."""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest

from ezpyr.access.models import AccessRule
from ezpyr.gateway.services import GatewayKeyService
from ezpyr.guard.models import CommandRule
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.users.keys import UserKeyService
from tests.conftest import SECRET_KEY
from tests.factories import PASSWORD, make_user, make_user_group
from support import gateway as harness

if os.geteuid() != 0:  # pragma: no cover - the project's machines run tests as root
    pytest.skip("the gateway tests make system accounts: they run as root",
                allow_module_level=True)

USERS = (harness.account("alice"), harness.account("bob"))
TARGET_ACCOUNT = harness.account("target")
# held while a test session uses this process's accounts (ezgw0_…: see
# support/gateway.py): the same worker of another test run waits for it
ACCOUNTS_LOCK = Path(f"/tmp/{harness.ACCOUNT_PREFIX}accounts.lock")


@pytest.fixture(scope="session")
def accounts():
    """The test accounts: swept first (a failed run may have left some),
    removed at the end, whatever happened. Another test run on this machine
    (another checkout) that uses them is waited for."""
    with ACCOUNTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _accounts()


def _accounts():
    harness.sweep_accounts()
    harness.make_gateway_group()
    harness.EZSH_HOME.mkdir(mode=0o755, exist_ok=True)
    ezsh = harness.install_ezsh(harness.EZSH_HOME)
    try:
        made = {name: harness.make_account(name, shell=ezsh, gateway=True)
                for name in USERS}
        made[TARGET_ACCOUNT] = harness.make_account(TARGET_ACCOUNT, shell="/bin/bash",
                                                    gateway=False)
        yield made
    finally:
        harness.sweep_accounts()


@dataclass
class World:
    root: Path
    gateway: harness.Sshd
    targets: dict
    service: harness.GatewayProcess
    ini: Path
    log_dir: Path
    user_keys: dict = field(default_factory=dict)

    def ssh(self, account: str, *args: str, tty: bool = False, **spawn_args):
        argv = harness.ssh_argv(self.gateway.port, account, self.user_keys[account], *args,
                                tty=tty)
        return harness.spawn(argv, **spawn_args)

    def ssh_argv(self, account: str, *args: str, tty: bool = False) -> list[str]:
        return harness.ssh_argv(self.gateway.port, account, self.user_keys[account], *args,
                                tty=tty)


@pytest.fixture(scope="session")
def world(accounts, database_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway")
    os.chmod(root, 0o755)
    for parent in root.parents:  # pytest makes its folders 0700: the accounts pass through
        if parent == Path("/tmp") or parent == Path("/"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o111)
    socket_path = root / "run" / "gateway.sock"
    log_dir = root / "sessions"
    ini = harness.write_ini(root / "gateway.ini", database_url, SECRET_KEY, socket_path, log_dir)
    service = harness.GatewayProcess(ini, socket_path)
    gateway = harness.Sshd(root, "gateway", harness.gateway_block(socket_path, harness.EZSH_HOME / "ezsh"))
    targets = {name: harness.Sshd(root, name) for name in ("web1", "web2")}
    world = World(root, gateway, targets, service, ini, log_dir)
    keys_dir = root / "client-keys"
    keys_dir.mkdir()
    for name in USERS:
        world.user_keys[name] = keys_dir / name
        gateway.authorize(name, harness.keygen(keys_dir / name))
    try:
        service.start()
        gateway.start()
        for target in targets.values():
            target.start()
        yield world
    finally:
        for target in targets.values():
            target.stop()
        gateway.stop()
        service.stop()


@dataclass
class Site:
    """The ezpyr data of one test: a user group with guard rules, the users
    (accounts alice and bob, with this process's prefix), servers web1 and web2 on the target
    sshd instances, and access for the group to web1 only."""

    world: World
    dbsession: object
    group: object
    users: dict
    servers: dict
    gateway_key: object

    def rule(self, pattern: str) -> CommandRule:
        rule = CommandRule(user_group=self.group, pattern=pattern, description="test")
        self.dbsession.add(rule)
        self.dbsession.commit()
        return rule

    def grant(self, server_name: str) -> None:
        self.dbsession.add(AccessRule(user_group=self.group, server=self.servers[server_name]))
        self.dbsession.commit()


@pytest.fixture
def site(world, dbsession, passwords, secret_box):
    group = make_user_group(dbsession, "gwops")
    users = {}
    for name in USERS:
        user = make_user(dbsession, passwords, name, group=group)
        public = Path(f"{world.user_keys[name]}.pub").read_text()
        UserKeyService(dbsession).add(user, public, "laptop")
        users[name] = user
    key = GatewayKeyService(dbsession, secret_box).generate()
    sgroup = ServerGroup(name="webs", description="web servers")
    dbsession.add(sgroup)
    servers = {}
    for name, sshd in world.targets.items():
        sshd.authorize(TARGET_ACCOUNT, key.public_key)
        servers[name] = Server(name=name, host="127.0.0.1", port=sshd.port,
                               remote_user=TARGET_ACCOUNT, auth_method="key", group=sgroup,
                               description=f"{name} of the test")
        dbsession.add(servers[name])
    dbsession.commit()
    site = Site(world, dbsession, group, users, servers, key)
    site.grant("web1")
    return site


def interactive(site, server: str = "web1"):
    """alice signed in and at the shell prompt of ``server``, through the gateway."""
    child = site.world.ssh(USERS[0], server, tty=True)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(r"~\$ ")
    return child


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


__all__ = ["PASSWORD", "totp_now"]
