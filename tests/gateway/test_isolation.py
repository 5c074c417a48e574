"""A gateway user's process holds no secret and has no way around ezsh:
the config (database, secret key), the database file, the gateway service's
/proc and environment are out of its reach, ezsh's own environment holds
nothing secret, and sshd's Match Group block refuses every forwarding."""
from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

import pexpect
import pytest

from tests.conftest import SECRET_KEY
from tests.factories import PASSWORD
from support import gateway as harness

ALICE = harness.account("alice")


def as_account(name: str, code: str) -> subprocess.CompletedProcess:
    """Python code run as the system account ``name`` (its uid, gid, groups)."""
    entry = pwd.getpwnam(name)

    def drop():
        os.initgroups(name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return subprocess.run(["/usr/bin/python3", "-I", "-c", code], preexec_fn=drop,
                          capture_output=True, text=True, cwd="/", env={"PATH": "/usr/bin:/bin"})


def unreadable(path: str) -> str:
    return (f"try:\n    open({path!r}, 'rb').read(1)\n    print('READ')\n"
            f"except OSError as e:\n    print('DENIED', e.errno)\n")


def test_a_gateway_user_reads_no_secret(site, database_url):
    service_pid = site.world.service.process.pid
    targets = [str(site.world.ini), f"/proc/{service_pid}/environ", f"/proc/{service_pid}/mem",
               f"/proc/{service_pid}/maps", f"/proc/{service_pid}/fd/0"]
    if database_url.startswith("sqlite"):
        targets.append(database_url.split("///", 1)[1])
    for path in targets:
        done = as_account(ALICE, unreadable(path))
        assert done.stdout.startswith("DENIED"), (path, done.stdout, done.stderr)
    # listing the service's open files says nothing either
    listing = as_account(ALICE,
                         f"import os\ntry:\n    os.listdir('/proc/{service_pid}/fd')\n"
                         "    print('LISTED')\nexcept OSError:\n    print('DENIED')\n")
    assert listing.stdout.strip() == "DENIED"


def test_ezsh_holds_no_secret(site):
    child = site.world.ssh(ALICE, "web1", tty=True)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(r"~\$ ")
    uid = pwd.getpwnam(ALICE).pw_uid
    ezsh = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_ezsh(p, uid)]
    assert ezsh, "no ezsh process of ezgw_alice found"
    private_key = site.gateway_key.private_key_encrypted  # encrypted form: not even that
    for proc in ezsh:
        environ = (proc / "environ").read_bytes().decode(errors="replace")
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        for secret in (SECRET_KEY, "sqlalchemy", "mysql", private_key, "PRIVATE KEY"):
            assert secret not in environ and secret not in cmdline
        # its open files: the terminal, the socket to the service, nothing else
        for fd in (proc / "fd").iterdir():
            target = os.readlink(fd)
            assert target.startswith(("/dev/", "socket:", "pipe:", "anon_inode:")), target
    child.sendline("exit")
    child.expect(pexpect.EOF)


def _is_ezsh(proc: Path, uid: int) -> bool:
    try:
        return proc.stat().st_uid == uid and b"ezsh" in (proc / "cmdline").read_bytes()
    except OSError:
        return False


def test_forwarding_through_the_gateway_is_refused(site):
    world = site.world
    target_port = world.targets["web1"].port
    local_port = harness.free_port()
    # -L: the gateway refuses to open the channel when the forward is used
    child = harness.spawn(world.ssh_argv(ALICE, "-N", "-L",
                                         f"127.0.0.1:{local_port}:127.0.0.1:{target_port}"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", local_port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "ssh -L did not listen"
                time.sleep(0.1)
        with conn:
            conn.settimeout(10)
            assert conn.recv(100) == b""  # no SSH banner of the target: closed at once
        assert f"refused local port forward: originator 127.0.0.1" in world.gateway.log()
    finally:
        child.terminate(force=True)
    # -R: the gateway refuses the remote listener
    child = harness.spawn(world.ssh_argv(ALICE, "-N", "-o", "ExitOnForwardFailure=yes",
                                         "-R", f"127.0.0.1:{harness.free_port()}:127.0.0.1:22"))
    child.expect("remote port forwarding failed")
    child.expect(pexpect.EOF)
    # -W: stdio forwarding is a direct-tcpip channel: refused too
    refusals = world.gateway.log().count("refused local port forward")
    child = harness.spawn(world.ssh_argv(ALICE, "-W", f"127.0.0.1:{target_port}"))
    child.expect(pexpect.EOF)
    assert b"SSH-2.0" not in child.before
    assert world.gateway.log().count("refused local port forward") == refusals + 1
