"""Recordings and the Sessions page: the .cast file replays the session's
output, the page lists and plays it (in Chromium), and Terminate ends a live
session."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
import webtest
from sqlalchemy import select

from ezpyr import main
from ezpyr.gateway.models import GatewaySession
from ezpyr.gateway.recording import read_cast
from tests.conftest import ROOT, app_settings
from tests.factories import PASSWORD, login, make_admin, post
from support import gateway as harness

ALICE = harness.account("alice")

SHELL_PROMPT = r"~\$ "
SHOTS = ROOT / "test-artifacts" / "browser" / "gateway"


@pytest.fixture(scope="module")
def panel(world, engine, database_url):
    """The panel of the node the gateway service runs on (same database,
    same log directory)."""
    return main({}, **app_settings(database_url, **{
        "ezpyr.engine": engine, "ezpyr.gateway.log_dir": str(world.log_dir)}))


@pytest.fixture
def admin_panel(panel, site, passwords):
    make_admin(site.dbsession, passwords)
    app = webtest.TestApp(panel, extra_environ={"REMOTE_ADDR": "192.0.2.10"})
    login(app, "root_admin")
    return app


def run_session(site):
    child = site.world.ssh(ALICE, "web1", tty=True)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(SHELL_PROMPT)
    child.sendline("echo recorded-$((6*7))")
    child.expect("recorded-42")
    child.sendline("exit 4")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    site.dbsession.expire_all()
    return site.dbsession.scalars(select(GatewaySession)).one()


def test_cast_file_replays_the_output(site):
    row = run_session(site)
    header, events = read_cast(site.world.log_dir / row.recording)
    assert header["version"] == 2 and header["width"] == 100 and header["height"] == 30
    output = "".join(e[2] for e in events if e[1] == "o")
    assert "recorded-42" in output
    times = [e[0] for e in events]
    assert times == sorted(times)
    assert row.exit_status == 4 and row.bytes_out >= len("recorded-42")
    assert row.bytes_in > 0 and row.ended_at is not None


def test_sessions_page_lists_shows_and_downloads(site, admin_panel):
    row = run_session(site)
    page = admin_panel.get("/sessions")
    assert "Logs of this node only" in page.text
    assert ALICE in page.text and "web1" in page.text
    assert ALICE not in admin_panel.get("/sessions", {"username": "nobody"}).text.split(
        "<tbody>")[1]
    shown = admin_panel.get(f"/sessions/{row.id}")
    assert "asciinema-player.min.js" in shown.text and "Terminate" not in shown.text
    cast = admin_panel.get(f"/sessions/{row.id}.cast")
    assert "attachment" in cast.headers["Content-Disposition"]
    assert json.loads(cast.body.splitlines()[0])["version"] == 2
    assert b"recorded-42" in cast.body


def test_terminate_ends_a_live_session(site, admin_panel):
    child = site.world.ssh(ALICE, "web1", tty=True)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(SHELL_PROMPT)
    site.dbsession.expire_all()
    row = site.dbsession.scalars(select(GatewaySession)).one()
    page = admin_panel.get(f"/sessions/{row.id}")
    assert "live" in page.text and "Terminate" in page.text
    post(admin_panel, f"/sessions/{row.id}/terminate", form_url=f"/sessions/{row.id}")
    child.expect("terminated by an admin")
    child.expect(pexpect.EOF)
    site.dbsession.expire_all()
    row = site.dbsession.get(GatewaySession, row.id)
    assert row.ended_at is not None and row.end_reason == "terminated by an admin"
    again = post(admin_panel, f"/sessions/{row.id}/terminate", form_url=f"/sessions/{row.id}")
    assert "already ended" in again.follow().text


def test_playback_page_loads_in_chromium(site, panel, passwords):
    from tests.functional.test_browser_cluster import chromium_or_skip
    from webtest.http import StopableWSGIServer

    make_admin(site.dbsession, passwords)
    row = run_session(site)
    sync_playwright = chromium_or_skip()
    server = StopableWSGIServer.create(panel)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu",
                                              "--disable-dev-shm-usage"])
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server.application_url}login")
            page.fill("input[name=username]", "root_admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login" not in url)
            page.goto(f"{server.application_url}sessions/{row.id}")
            page.wait_for_selector(".ap-player", timeout=30_000)
            page.click(".ap-player")  # start playing
            SHOTS.mkdir(parents=True, exist_ok=True)
            try:
                page.locator("#player", has_text="recorded-42").wait_for(timeout=30_000)
            finally:
                page.screenshot(path=str(SHOTS / "session-playback.png"), full_page=True)
            browser.close()
        assert not errors
    finally:
        server.shutdown()


def admin_cli(site, *args: str) -> subprocess.CompletedProcess:
    argv = [str(Path(sys.executable).parent / "ezpyr-admin"), str(site.world.ini), *args]
    return subprocess.run(argv, capture_output=True, text=True)


def test_cli_lists_shows_exports_and_terminates(site, tmp_path):
    row = run_session(site)
    listed = json.loads(admin_cli(site, "sessions", "list", "--json").stdout)
    assert [s["id"] for s in listed["sessions"]] == [row.id]
    assert listed["sessions"][0]["exit_status"] == 4
    assert listed["sessions"][0]["state"] == "ended"
    shown = json.loads(admin_cli(site, "sessions", "show", row.id, "--json").stdout)
    assert shown["session"]["server"] == "web1"
    exported = admin_cli(site, "sessions", "export", row.id)
    assert exported.returncode == 0 and "recorded-42" in exported.stdout
    out = tmp_path / "s.cast"
    assert admin_cli(site, "sessions", "export", row.id, "--output", str(out)).returncode == 0
    assert json.loads(out.read_text().splitlines()[0])["version"] == 2
    ended = admin_cli(site, "sessions", "terminate", row.id)
    assert ended.returncode == 2 and "already ended" in ended.stderr
    missing = admin_cli(site, "sessions", "show", "no-such-id")
    assert missing.returncode == 2 and "No session" in missing.stderr

    child = site.world.ssh(ALICE, "web1", tty=True)
    child.expect("ezpyr password for ")
    child.sendline(PASSWORD)
    child.expect(SHELL_PROMPT)
    live = json.loads(admin_cli(site, "sessions", "list", "--state", "live", "--json").stdout)
    (live_row,) = live["sessions"]
    assert admin_cli(site, "sessions", "terminate", live_row["id"]).returncode == 0
    child.expect("terminated by an admin")
    child.expect(pexpect.EOF)
