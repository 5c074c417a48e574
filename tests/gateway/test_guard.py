"""The command guard in the gateway: one-shot commands are checked before
anything is sent, interactive lines as the screen shows them when Enter is
pressed. Every refusal is proven by a marker file that must not exist on the
target (the target's account writes to /tmp)."""
from __future__ import annotations

import uuid
from pathlib import Path

import pexpect
import pytest
from sqlalchemy import select

from ezpyr.gateway.models import GatewaySession
from tests.factories import PASSWORD
from support import gateway as harness
from tests.gateway.conftest import interactive

ALICE = harness.account("alice")

REFUSED = "the command guard refuses"
SHELL_PROMPT = r"~\$ "


@pytest.fixture
def marker():
    path = Path(f"/tmp/ezgw-marker-{uuid.uuid4().hex[:12]}")
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def guarded(site):
    """Touching a marker file is refused; every other command is allowed."""
    site.rule(r"^touch\b.*ezgw-marker")
    return site


def one_shot(site, command: str) -> tuple[int, str]:
    child = site.world.ssh(ALICE, "web1", command)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before.decode(errors="replace")


@pytest.mark.parametrize("form", [
    "touch {m}",
    "echo x; touch {m}",
    "echo x && touch {m}",
    "false || touch {m}",
    "echo x | touch {m}",
    "to''uch {m}",
    'to"u"ch {m}',
    "\\touch {m}",
    "echo $(touch {m})",
    'echo "$(touch {m})"',
    "echo `touch {m}`",
    "A=1 touch {m}",
    "echo x\ntouch {m}",
    "if true; then touch {m}; fi",
])
def test_refused_one_shot_never_reaches_the_server(guarded, marker, form):
    status, output = one_shot(guarded, form.format(m=marker))
    assert status == 126
    assert REFUSED in output
    assert not marker.exists()
    row = guarded.dbsession.scalars(select(GatewaySession)).one()
    assert row.guard_refusals == 1


def test_allowed_one_shot_runs(guarded, marker):
    allowed = marker.with_name(marker.name.replace("marker", "allowed"))
    try:
        status, output = one_shot(guarded, f"touch {allowed}; echo done-$((1+1))")
        assert status == 0 and "done-2" in output
        assert allowed.exists()
    finally:
        allowed.unlink(missing_ok=True)


def test_refused_interactive_line_never_runs(guarded, marker):
    child = interactive(guarded)
    child.sendline(f"echo before; touch {marker}")
    child.expect(REFUSED)
    child.expect(SHELL_PROMPT)
    child.sendline("echo still-$((2+3))")
    child.expect("still-5")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    assert not marker.exists()
    row = guarded.dbsession.scalars(select(GatewaySession)).one()
    assert row.guard_refusals == 1


def test_line_recalled_with_the_up_arrow_is_checked_as_shown(guarded, marker):
    child = interactive(guarded)
    # put the refused line in bash's history without running it
    child.sendline(f"history -s 'touch {marker}'")
    child.expect(SHELL_PROMPT)
    child.send("\x1b[A")  # up arrow: bash shows the recalled line
    child.expect(f"touch {marker}")
    child.send("\r")
    child.expect(REFUSED)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    assert not marker.exists()


def test_line_completed_with_tab_is_checked_as_shown(guarded, marker):
    directory = Path(f"/tmp/ezgw-dir-{uuid.uuid4().hex[:8]}")
    directory.mkdir()
    directory.chmod(0o777)
    (directory / f"{marker.name}-target").touch()
    (directory / f"{marker.name}-target").chmod(0o666)
    created = directory / "copy.new"
    guarded.rule(r"^cp\b.*ezgw-marker")
    try:
        child = interactive(guarded)
        # typed: "cp <dir>/ezgw-mar" (does not match); Tab completes the name
        child.send(f"cp {directory}/ezgw-mar\t")
        child.expect("target")
        child.send(f" {created}\r")
        child.expect(REFUSED)
        child.sendline("exit")
        child.expect(pexpect.EOF)
        assert not created.exists()
    finally:
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


def test_pasted_lines_are_each_checked(guarded, marker):
    child = interactive(guarded)
    child.send(f"echo one-$((0+1))\rtouch {marker}\recho three-$((1+2))\r")
    child.expect("one-1")
    child.expect(REFUSED)
    child.expect("three-3")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    assert not marker.exists()


@pytest.mark.parametrize("viewer", ["less", "vim -u NONE -n"])
def test_output_of_full_screen_programs_is_not_taken_for_a_command(guarded, marker, viewer):
    text = Path(f"/tmp/ezgw-text-{uuid.uuid4().hex[:8]}")
    text.write_text("".join(f"touch {marker}\n" for _ in range(100)))
    text.chmod(0o644)
    try:
        child = interactive(guarded)
        child.sendline(f"{viewer} {text}")
        child.expect("ezgw-marker")
        for _ in range(3):
            child.send("\r")
        child.send("q" if viewer == "less" else "\x1b:q!\r")
        child.expect(SHELL_PROMPT)
        child.sendline("echo back-$((3+4))")
        child.expect("back-7")
        child.sendline("exit")
        child.expect(pexpect.EOF)
        assert REFUSED.encode() not in child.before
        row = guarded.dbsession.scalars(select(GatewaySession)).one()
        assert row.guard_refusals == 0
    finally:
        text.unlink()


def test_allowed_interactive_commands_run(guarded, marker):
    allowed = marker.with_name(marker.name.replace("marker", "allowed"))
    try:
        child = interactive(guarded)
        child.sendline(f"touch {allowed}")
        child.expect(SHELL_PROMPT)
        child.sendline("exit")
        child.expect(pexpect.EOF)
        assert allowed.exists()
    finally:
        allowed.unlink(missing_ok=True)


def test_a_shell_started_as_a_one_shot_command_with_a_terminal_is_guarded(guarded, marker):
    child = guarded.world.ssh(ALICE, "web1", "bash", tty=True)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(SHELL_PROMPT)
    child.sendline(f"touch {marker}")
    child.expect(REFUSED)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    assert not marker.exists()
