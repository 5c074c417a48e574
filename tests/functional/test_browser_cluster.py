"""The cluster life cycle in a real browser (Playwright driving Debian's
Chromium) against two real nodes: Add with its progress bar, Make master,
then a split-brain's banner and the resolve pages. Screenshots of every step
land in ``test-artifacts/browser/<backend>/``.

Chromium missing is a skip locally and a failure under CI (``bin/test``
installs it with apt when it can)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ezpyr.servers.models import Server, ServerGroup
from tests.backends import IN_CI
from tests.cluster_nodes import ADMIN_PASSWORD, primary_and_secondary, wait_until
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "browser"


def chromium_or_skip():
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is not installed (apt install chromium chromium-driver)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            reason = f"playwright is not installed: {error}"
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture
def browser():
    sync_playwright = chromium_or_skip()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def nodes(tmp_path, backend, tmp_path_factory):
    primary, secondary = primary_and_secondary(tmp_path, backend, tmp_path_factory)
    yield primary, secondary
    primary.close()
    secondary.close()


class Shots:
    def __init__(self, backend: str):
        self.dir = ARTIFACTS / backend
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.count = 0

    def __call__(self, page, name: str) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def sign_in(browser, node):
    """A browser context of its own per node: both listen on 127.0.0.1, and
    cookies do not tell ports apart."""
    page = browser.new_context().new_page()
    page.set_default_timeout(60_000)
    page.goto(f"http://{node.address}/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def wait_for_job(page, timeout_ms: int = 90_000) -> str:
    """The job page reloads itself each second until the job finishes."""
    page.wait_for_selector(".job[data-state=done], .job[data-state=failed]", timeout=timeout_ms)
    return page.get_attribute(".job", "data-state")


def add_servers(node, names, actor, net):
    with node.env.session(actor=actor) as s:
        s.add_all(Server(name=n, host=f"10.{net}.0.{i + 1}") for i, n in enumerate(names))


def server_names(node):
    with node.env.engine.connect() as conn:
        return sorted(conn.exec_driver_sql("SELECT name FROM servers").scalars())


def server_ids(nodes, name):
    """The ids of the servers named ``name`` on either node (a split-brain
    can give two rows one name)."""
    from sqlalchemy import text
    ids = set()
    for node in nodes:
        with node.env.engine.connect() as conn:
            ids.update(conn.execute(text("SELECT id FROM servers WHERE name = :n"), {"n": name}).scalars())
    return sorted(ids)


def test_add_make_master_split_brain_and_resolve_in_the_browser(browser, nodes, backend):
    primary, secondary = nodes
    shots = Shots(backend)
    with primary.env.session(actor="test") as s:  # enough rows that Add takes a moment
        group = ServerGroup(name="web")
        s.add(group)
        s.add_all(Server(name=f"srv{i:04d}", host=f"10.0.{i // 256}.{i % 256}", group=group)
                  for i in range(3000))
    primary.start()
    secondary.start()
    primary.run("ezpyr-grant-host", "127.0.0.1")

    # the half-made secondary says only to set it up from the primary (it
    # names no node and no address to an anonymous visitor)
    lonely = browser.new_context().new_page()
    lonely.goto(f"http://{secondary.address}/")
    assert "This node is a secondary" in lonely.content() and primary.address not in lonely.content()
    shots(lonely, "secondary-awaiting-setup")

    # Add, from the primary's cluster page
    on_primary = sign_in(browser, primary)
    on_primary.goto(f"http://{primary.address}/cluster")
    on_primary.fill("input[name=address]", secondary.address)
    on_primary.fill("input[name=setup_key]", "not-the-key")
    on_primary.click("form.add-form button[type=submit]")
    assert wait_for_job(on_primary) == "failed"
    assert "Nothing was changed on either node" in on_primary.content()
    shots(on_primary, "add-refused-wrong-key")
    assert secondary.status()["node"]["state"] == "secondary awaiting setup"

    on_primary.goto(f"http://{primary.address}/cluster")
    on_primary.fill("input[name=address]", secondary.address)
    on_primary.fill("input[name=setup_key]", secondary.setup_key)
    on_primary.click("form.add-form button[type=submit]")
    on_primary.wait_for_selector("progress")
    shots(on_primary, "add-progress")
    assert wait_for_job(on_primary) == "done", on_primary.inner_text("body")
    assert on_primary.get_attribute("progress", "value") == "100"
    assert "is now this node's slave" in on_primary.inner_text("[data-field=verdict]")
    shots(on_primary, "add-done")
    assert secondary.count(Server) == 3000

    # Make master, from the slave's cluster page: a graceful switchover
    on_secondary = sign_in(browser, secondary)
    on_secondary.goto(f"http://{secondary.address}/cluster")
    assert "changes are made on the master" in on_secondary.inner_text(".banner")
    shots(on_secondary, "slave-cluster-page")
    on_secondary.click("button:has-text('Make master')")
    assert wait_for_job(on_secondary) == "done", on_secondary.inner_text("body")
    verdict = on_secondary.inner_text("[data-field=verdict]")
    assert "This node is master now" in verdict and "graceful" in verdict
    shots(on_secondary, "make-master-done")
    assert secondary.status()["node"]["role"] == "master"
    wait_until(lambda: primary.status()["node"]["role"] == "slave", 30)

    # the reference page's story, now with the secondary as master
    add_servers(secondary, ["common"], "bob", 1)
    wait_until(lambda: "common" in server_names(primary), 30)
    primary.stop()
    add_servers(secondary, ["web1", "only-on-secondary"], "bob", 2)
    secondary.stop()
    # the secondary's broker outlives it here (not in the story): the
    # primary's worker starts after its own changes, so that it cannot take
    # the secondary's last changes first (then there would be no split-brain)
    primary.start_panel()
    assert primary.run("ezpyr-cluster", "make-master", "--force", "--yes").returncode == 0
    add_servers(primary, ["web1", "only-on-primary"], "alice", 3)
    primary.start_worker()
    secondary.start()
    wait_until(lambda: primary.status()["split_brain"] and secondary.status()["split_brain"], 45,
               message="both nodes to see the split-brain")

    for page, node, name in ((on_primary, primary, "primary"), (on_secondary, secondary, "secondary")):
        page.goto(f"http://{node.address}/servers")
        banner = page.inner_text("[data-banner=split-brain]")
        assert "Split-brain between" in banner and "Automatic sync has stopped" in banner
        assert f"{name} (this node)" in banner and "stream" not in banner
        shots(page, f"split-brain-banner-{name}")

    # Resolve on the master (the primary took the newer epoch): Verify, choose, review, confirm
    on_primary.goto(f"http://{primary.address}/cluster")
    on_primary.click("button:has-text('Verify')")
    assert wait_for_job(on_primary) == "done"
    assert "The nodes differ." in on_primary.inner_text("[data-field=verdict]")
    # the rows named as the admin knows them, field by field, made by whom in words
    web1 = [on_primary.inner_text(f"[data-row='servers:{i}']") for i in server_ids(nodes, "web1")]
    assert all(text.startswith("server web1") for text in web1) and len(web1) == 2
    assert any("made on primary, then master, by alice at" in text for text in web1)
    assert any("made on secondary, then master, by bob at" in text for text in web1)
    assert on_primary.locator("[data-row] tr.differs").count() > 0
    shots(on_primary, "verify-differences")
    with secondary.env.engine.connect() as conn:
        keep_there = conn.exec_driver_sql(
            "SELECT id FROM servers WHERE name = 'only-on-secondary'").scalar_one()
    on_primary.select_option("select[name=all]", "here")
    on_primary.check(f"input[name='row:servers:{keep_there}'][value=there]")
    on_primary.click("button:has-text('Review what will be kept and lost')")
    losses = on_primary.inner_text("[data-field=losses]")
    assert "will be lost" in losses
    page_text = on_primary.inner_text("body")
    assert "10.2.0.1" in page_text  # the secondary's web1, which the choice drops
    shots(on_primary, "resolve-review")
    assert primary.status()["split_brain"]  # nothing changed before the confirmation
    on_primary.click("button:has-text('Resolve: keep these choices')")
    assert wait_for_job(on_primary) == "done", on_primary.inner_text("body")
    assert "The split-brain is resolved" in on_primary.inner_text("[data-field=verdict]")
    shots(on_primary, "resolve-done")

    wait_until(lambda: not secondary.status()["split_brain"], 30, message="the secondary to leave the split-brain")
    expected = ["common", "only-on-primary", "only-on-secondary", "web1"]
    assert [n for n in server_names(primary) if not n.startswith("srv")] == expected
    assert server_names(primary) == server_names(secondary)
    on_secondary.goto(f"http://{secondary.address}/servers")
    assert on_secondary.query_selector("[data-banner=split-brain]") is None
    shots(on_secondary, "after-resolve-secondary")
