"""The account buttons in a real browser (Playwright driving Debian's
Chromium) against two real nodes with real sshds: a user's account waiting
for a node whose host key changed, Reset fingerprint on the other node with
its confirmation, then Reconcile. Screenshots land in
``test-artifacts/browser/accounts-<backend>/``."""
from __future__ import annotations

from tests.accounts.test_cluster_accounts import (PASSWORD, accounts_on, assert_both_match, on,
                                                  settled, start_reconciled, tasks)
from tests.cluster_nodes import wait_until
from tests.functional.test_browser_cluster import Shots, browser, sign_in, wait_for_job  # noqa: F401


def test_reset_fingerprint_and_reconcile_from_the_browser(accounts_cluster, browser, backend):  # noqa: F811
    cluster = accounts_cluster
    shots = Shots(f"accounts-{backend}")
    start_reconciled(cluster)
    pinned = cluster.sshd_slave.fingerprint()
    cluster.sshd_slave.stop()
    cluster.sshd_slave.new_host_key()
    cluster.sshd_slave.start()
    presented = cluster.sshd_slave.fingerprint()
    on(cluster.master, lambda users, keys, s: users.create("grace", PASSWORD))
    wait_until(lambda: any(t.error for t in tasks(cluster.master, "other")), 60,
               message="the other node's task to be refused")

    page = sign_in(browser, cluster.master)
    page.goto(f"http://{cluster.master.address}/users?q=grace")
    cell = page.inner_text("td[data-field=account]")
    assert "waiting" in cell and presented in cell and pinned in cell
    shots(page, "users-waiting")

    page.goto(f"http://{cluster.master.address}/cluster")
    assert "1 waiting" in page.inner_text("tr[data-node=other]")
    page.click("a:has-text('Reset fingerprint on the other node')")
    assert pinned in page.inner_text("[data-field=pinned]")
    assert presented in page.inner_text("[data-field=presented]")
    shots(page, "reset-confirm")
    page.click(f"button:has-text('Pin {presented}')")
    page.wait_for_url(lambda url: url.endswith("/cluster"))
    assert f"{presented} is pinned now" in page.content()
    shots(page, "reset-done")
    settled(cluster)
    assert "grace" in cluster.sshd_slave.passwd()

    cluster.sshd_slave.authorized_keys("grace").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHV0K1M6Ryr/hvA0Sl5vK2V2P6KMmt7tBA2fpW0yXbTB\n")
    page.click("button:has-text('Reconcile accounts')")
    assert wait_for_job(page) == "done"
    shots(page, "reconcile-done")
    assert accounts_on(cluster.sshd_slave)["grace"] == (False, [])
    assert_both_match(cluster)
    page.goto(f"http://{cluster.master.address}/users?q=grace")
    assert "waiting" not in page.inner_text("td[data-field=account]")
