"""Every way a session ends leaves nothing behind: the gateway service's
connection to the target closes (the target's sshd keeps no session of it)
and the service is back to the threads it had before."""
from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from sqlalchemy import select

from ezpyr.access.models import AccessRule
from ezpyr.gateway.models import GatewaySession
from ezpyr.servers.models import Server
from tests.factories import PASSWORD
from support import gateway as harness
from support.net import wait_until
from tests.gateway.conftest import TARGET_ACCOUNT, interactive

ALICE = harness.account("alice")


@pytest.fixture
def own_target(site):
    """A target sshd of this test's own (no other test's session on it), as
    server web3 that alice may reach."""
    sshd = harness.Sshd(site.world.root, "web3")
    sshd.authorize(TARGET_ACCOUNT, site.gateway_key.public_key)
    sshd.start()
    try:
        server = Server(name="web3", host="127.0.0.1", port=sshd.port, remote_user=TARGET_ACCOUNT,
                        auth_method="key", description="the teardown test's target")
        site.dbsession.add(server)
        site.dbsession.add(AccessRule(user_group=site.group, server=server))
        site.dbsession.commit()
        yield sshd
    finally:
        sshd.stop()


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a listening sshd's: one per
    connection)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text() if proc.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # (ppid follows the name)
            found.append(int(proc.name))
    return found


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def ezsh_of(account: str) -> int:
    uid = pwd.getpwnam(account).pw_uid
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and proc.stat().st_uid == uid \
                    and b"ezsh" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            pass
    return 0


def one_shot(site, command: str):
    child = site.world.ssh(ALICE, "web3", command)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    return child


def ended(child) -> None:
    child.expect(pexpect.EOF, timeout=60)
    child.close()


def terminate(site) -> None:
    site.dbsession.expire_all()
    row = site.dbsession.scalars(select(GatewaySession).where(
        GatewaySession.ended_at.is_(None))).one()
    done = subprocess.run([str(Path(sys.executable).parent / "ezpyr-admin"), str(site.world.ini),
                           "sessions", "terminate", row.id], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_no_connection_or_thread_outlives_its_session(site, own_target):
    service = site.world.service.process.pid
    baseline = threads(service)

    def on_target() -> int:  # the target's sessions: one sshd child per connection
        return len(children(own_target.process.pid))

    # (the probe that saw it listening may still have its child for a moment)
    wait_until(lambda: on_target() == 0, 10, message="the new target's sshd idle")

    def each_session_ends(start_and_end) -> None:
        start_and_end()
        try:
            wait_until(lambda: on_target() == 0 and threads(service) <= baseline, 30)
        except AssertionError:
            raise AssertionError(
                f"after {start_and_end.__name__}, the target's sshd kept {on_target()} "
                f"session(s) and the service has {threads(service)} threads ({baseline} "
                "before)") from None

    def normal_exit():
        child = interactive(site, "web3")
        child.sendline("exit")
        ended(child)

    def one_shot_ends():
        child = one_shot(site, "echo one-shot-done")
        child.expect("one-shot-done")
        ended(child)

    def client_killed():
        child = interactive(site, "web3")
        wait_until(lambda: on_target() == 1, 10)
        os.kill(child.pid, signal.SIGKILL)
        child.close(force=True)

    def one_shot_client_killed():  # a command that prints nothing: nothing to notice it by
        child = one_shot(site, "echo started; sleep 600")
        child.expect("started")
        os.kill(child.pid, signal.SIGKILL)
        child.close(force=True)

    def ezsh_killed():
        child = interactive(site, "web3")
        os.kill(ezsh_of(ALICE), signal.SIGKILL)
        ended(child)

    def terminated():
        child = interactive(site, "web3")
        terminate(site)
        child.expect("terminated by an admin")
        ended(child)

    for case in (normal_exit, one_shot_ends, client_killed, one_shot_client_killed, ezsh_killed,
                 terminated):
        each_session_ends(case)


@pytest.fixture
def full_log_dir(site):
    """The recordings' folder on a 64 KiB file system of its own (a real
    tmpfs, mounted over it for this test): a session that prints more
    fills it, as a full disk would."""
    log_dir = site.world.log_dir
    owner = log_dir.stat()
    subprocess.run(["mount", "-t", "tmpfs", "-o",
                    f"size=64k,mode={owner.st_mode & 0o7777:o},uid={owner.st_uid},gid={owner.st_gid}",
                    "ezpyr-test-full", str(log_dir)], check=True)
    try:
        yield log_dir
    finally:
        subprocess.run(["umount", str(log_dir)], check=True)


def test_a_session_whose_recording_cannot_be_written_ends_and_says_why(site, full_log_dir):
    """No session goes on unrecorded: when the recording cannot be written
    the session ends, the user is told, and its row is ended with the reason
    (not left live for ever)."""
    child = site.world.ssh(ALICE, "web1", "head -c 400000 /dev/zero | base64; echo never-all-shown")
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect("could not write the session's recording", timeout=60)
    ended(child)
    assert child.exitstatus == 255
    site.dbsession.expire_all()
    row = site.dbsession.scalars(select(GatewaySession).where(GatewaySession.username == ALICE)
                                 .order_by(GatewaySession.started_at.desc())).first()
    assert row is not None and not row.live
    assert row.end_reason.startswith("the recording could not be written"), row.end_reason


def test_stopping_the_service_ends_its_sessions_and_says_so(site):
    """A stop (SIGTERM, as systemd sends it) ends the live sessions: each
    user is told why, and each row is ended with that reason, before the
    process exits."""
    from ezpyr.gateway.daemon import STOPPING
    service = site.world.service
    child = interactive(site)
    try:
        service.process.send_signal(signal.SIGTERM)
        child.expect(f"session ended: {STOPPING}", timeout=30)
        ended(child)
        assert service.process.wait(30) == 0
    finally:
        service.stop()
        service.start()  # the other tests of this process use it
    site.dbsession.expire_all()
    row = site.dbsession.scalars(select(GatewaySession).where(GatewaySession.username == ALICE)
                                 .order_by(GatewaySession.started_at.desc())).first()
    assert row is not None and not row.live and row.end_reason == STOPPING
