"""ezsh through a real OpenSSH gateway: sign in, pick, go through."""
from __future__ import annotations

import re
import subprocess

import pexpect
import pytest
import pyotp
from sqlalchemy import select

from ezpyr.activity.models import ActivityEntry
from ezpyr.auth.models import LoginThrottle
from ezpyr.gateway.models import GatewaySession
from ezpyr.settings.services import SettingsService
from tests.factories import PASSWORD
from support import gateway as harness

ALICE = harness.account("alice")

PROMPT = r"Server \(number or name"


def sign_in(child, password=PASSWORD):
    child.expect("ezpyr password for ")
    child.sendline(password)


def finish(child) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_one_shot_returns_output_and_status(site):
    child = site.world.ssh(ALICE, "web1", "echo hi; exit 3")
    sign_in(child)
    child.expect("hi")
    assert finish(child) == 3
    row = site.dbsession.scalars(select(GatewaySession)).one()
    assert (row.username, row.server_name, row.exit_status) == (ALICE, "web1", 3)
    assert row.command == "echo hi; exit 3" and row.ended_at is not None


def test_wrong_password_refused_and_counted_toward_the_panels_lockout(site):
    child = site.world.ssh(ALICE, "web1", "echo hi")
    sign_in(child, "not-the-password")
    child.expect("Wrong username or password")
    assert finish(child) == 1
    counts = {row.kind: row.failures for row in site.dbsession.scalars(
        select(LoginThrottle).where(LoginThrottle.username == ALICE))}
    assert counts == {"pair": 1, "account": 1}  # the same counts as the panel's sign-in
    actions = site.dbsession.scalars(select(ActivityEntry.action)).all()
    assert "gateway.refused" in actions and "gateway.sign_in" not in actions


def test_locked_user_refused_even_with_the_right_password(site):
    SettingsService(site.dbsession).update(lockout_threshold=2)
    site.dbsession.commit()
    for _ in range(2):
        child = site.world.ssh(ALICE, "web1", "echo hi")
        sign_in(child, "wrong")
        assert finish(child) == 1
    child = site.world.ssh(ALICE, "web1", "echo went-through")
    sign_in(child)
    child.expect("locked")
    child.expect(pexpect.EOF)
    assert b"went-through" not in child.before


def test_suspended_user_refused(site):
    site.users[ALICE].suspended = True
    site.dbsession.commit()
    child = site.world.ssh(ALICE, "web1", "echo hi")
    sign_in(child)
    child.expect("suspended")
    assert finish(child) == 1


def test_password_and_totp_code(site, secret_box):
    secret = pyotp.random_base32()
    user = site.users[ALICE]
    user.totp_secret, user.totp_enabled = secret_box.encrypt(secret), True
    site.dbsession.commit()
    child = site.world.ssh(ALICE, "web1", "echo signed-in")
    sign_in(child)
    child.expect("TOTP code: ")
    child.sendline("000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    child.expect("code")
    assert finish(child) == 1
    child = site.world.ssh(ALICE, "web1", "echo signed-in")
    sign_in(child)
    child.expect("TOTP code: ")
    child.sendline(pyotp.TOTP(secret).now())
    child.expect("signed-in")
    assert finish(child) == 0


def test_menu_lists_exactly_the_effective_access_and_connects_by_number_and_name(site):
    child = site.world.ssh(ALICE, tty=True)
    sign_in(child)
    child.expect(PROMPT)
    listing = child.before.decode()
    assert re.search(r"1\s+web1\s+webs\s+web1 of the test", listing)
    assert "web2" not in listing  # no access
    child.sendline("1")
    child.expect(r"\$ ")
    child.sendline("echo through-$((40+2)); exit 5")
    child.expect("through-42")
    assert finish(child) == 5

    site.grant("web2")
    child = site.world.ssh(ALICE, tty=True)
    sign_in(child)
    child.expect(PROMPT)
    assert "web2" in child.before.decode()
    child.sendline("eb2")  # a filter
    child.expect(PROMPT)
    assert "web1" not in child.before.decode().split("Servers you may reach")[-1]
    child.sendline("web2")
    child.expect(r"\$ ")
    child.sendline("exit 0")
    assert finish(child) == 0


def test_unreachable_and_unknown_servers_get_the_same_answer(site):
    answers = []
    for name in ("web2", "nosuch"):
        child = site.world.ssh(ALICE, name, "true")
        sign_in(child)
        child.expect(pexpect.EOF)
        answers.append(child.before.decode().strip().replace(name, "NAME"))
        child.close()
        assert child.exitstatus == 1
    assert answers[0] == answers[1] and "that you may reach" in answers[0]


def test_window_resize_reaches_the_remote(site):
    child = site.world.ssh(ALICE, "web1", tty=True, cols=100, rows=30)
    sign_in(child)
    child.expect(r"\$ ")
    child.sendline("stty size")
    child.expect(r"30 100")
    child.setwinsize(40, 132)
    child.expect(r"\$ ")
    child.sendline("stty size")
    child.expect(r"40 132")
    child.sendline("exit")
    assert finish(child) == 0


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "terminal"])
def test_bulk_output_arrives_whole_and_in_order(site, tty):
    """Megabytes in frames ezsh passes on as they come (spliced into sshd's
    pipe, or copied to the terminal), byte for byte."""
    argv = site.world.ssh_argv(ALICE, "web1", "seq 1 400000", tty=tty)
    done = subprocess.run(argv, input=f"{PASSWORD}\n".encode(), capture_output=True, timeout=120)
    expected = subprocess.run(["seq", "1", "400000"], capture_output=True).stdout
    assert done.returncode == 0
    if tty:  # the prompt shares the terminal, and the terminal ends lines with CR LF
        assert done.stdout.replace(b"\r\n", b"\n").endswith(b"\n" + expected)
    else:
        assert done.stdout == expected and len(expected) > 2_000_000
