"""The target's host key is pinned on first connect (a replicated write on
the servers row); a changed key is refused with both fingerprints until an
admin resets the pin on the server's page (or with the CLI)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pexpect
import webtest

from ezpyr import main
from ezpyr.gateway.services import openssh_fingerprint
from ezpyr.node.services import NodeService
from ezpyr.replication.models import OutboxEntry
from ezpyr.servers.models import Server
from tests.conftest import app_settings
from tests.factories import PASSWORD, login, make_admin, post
from support import gateway as harness

ALICE = harness.account("alice")
MARKER = Path(f"/tmp/{harness.ACCOUNT_PREFIX}should-not-run")


def one_shot(site, command="echo through"):
    child = site.world.ssh(ALICE, "web1", command)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before.decode(errors="replace")


def presented_key(sshd) -> str:
    return " ".join(Path(f"{sshd.host_key}.pub").read_text().split()[:2])


def test_pinned_on_first_connect_refused_when_changed_reset_on_the_servers_page(
        site, engine, database_url, passwords):
    NodeService(site.dbsession).create("gw-node", "127.0.0.1:6543")
    site.dbsession.commit()
    web1 = site.world.targets["web1"]
    status, output = one_shot(site)
    assert status == 0 and "through" in output
    site.dbsession.expire_all()
    server = site.dbsession.get(Server, site.servers["web1"].id)
    assert server.host_key == presented_key(web1)
    # the pin is a replicated change, captured like every other
    assert any('"servers"' in entry.changes and server.host_key in entry.changes.replace("\\", "")
               for entry in site.dbsession.query(OutboxEntry))

    old = openssh_fingerprint(server.host_key)
    web1.new_host_key()
    try:
        new = openssh_fingerprint(presented_key(web1))
        status, output = one_shot(site, f"touch {MARKER}")
        assert status == 255
        flat = " ".join(output.split())
        assert old in flat and new in flat and "refused" in flat
        assert not MARKER.exists()

        make_admin(site.dbsession, passwords)
        panel = webtest.TestApp(main({}, **app_settings(database_url, **{"ezpyr.engine": engine})))
        login(panel, "root_admin")
        edit = panel.get(f"/servers/{server.id}/edit")
        assert old in edit.text
        confirm = panel.get(f"/servers/{server.id}/host-key/reset")
        assert old in confirm.text
        post(panel, f"/servers/{server.id}/host-key/reset")
        status, output = one_shot(site)
        assert status == 0 and "through" in output
        site.dbsession.expire_all()
        assert site.dbsession.get(Server, server.id).host_key == presented_key(web1)
    finally:
        MARKER.unlink(missing_ok=True)


def test_cli_resets_the_pin(site):
    status, _ = one_shot(site)
    assert status == 0
    admin = [str(Path(sys.executable).parent / "ezpyr-admin"), str(site.world.ini)]
    done = subprocess.run(admin + ["servers", "reset-host-key", "web1"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "forgot the pinned host key of web1" in done.stdout
    site.dbsession.expire_all()
    assert site.dbsession.get(Server, site.servers["web1"].id).host_key is None
    again = subprocess.run(admin + ["servers", "reset-host-key", "web1"], capture_output=True,
                           text=True)
    assert again.returncode == 0 and "nothing was changed" in again.stdout
