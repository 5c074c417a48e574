"""The API's gateway sessions (node-local): paged newest first with the
Sessions page's filters, one session with its ETag, its recording as
asciicast, and Terminate through the same service as the page (its
activity entry; allowed on a slave, refused for an ended session)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import webtest
from sqlalchemy import select

from ezpyr import main
from ezpyr.activity.models import ActivityEntry
from ezpyr.gateway.models import GatewaySession
from tests.conftest import app_settings

T0 = dt.datetime(2026, 3, 4, 5, 6, 7)
MADE_UP = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def log_dir(tmp_path):
    return tmp_path / "sessions"


@pytest.fixture
def api(engine, database_url, log_dir, tokens):
    """The panel with its own session log directory."""
    return webtest.TestApp(main({}, **app_settings(database_url, **{"ezpyr.engine": engine,
                                                                   "ezpyr.gateway.log_dir": str(log_dir)})))


def session(dbsession, n: int, *, live=False, username="alice", server="web1", at=None) -> GatewaySession:
    row = GatewaySession(username=username, server_name=server, server_address=f"root@10.0.0.{n}:22",
                         client_address="192.0.2.5", command="" if n % 2 else "uptime",
                         started_at=at or T0 + dt.timedelta(minutes=n),
                         ended_at=None if live else (at or T0) + dt.timedelta(minutes=n, seconds=30),
                         exit_status=None if live else 0)
    dbsession.add(row)
    dbsession.flush()
    row.recording = f"{row.id}.cast"
    dbsession.commit()
    return row


def test_list_newest_first_with_filters_and_paging(api, tokens, dbsession):
    rows = [session(dbsession, n, username="alice" if n < 4 else "bob", server="web1" if n % 2 else "db1")
            for n in range(6)]
    rows += [session(dbsession, 10 + n, at=T0 - dt.timedelta(hours=1), live=n == 0) for n in range(3)]
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/sessions", {"limit": 2, **({"cursor": cursor} if cursor else {})},
                       headers=tokens.ro).json
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    same_instant = sorted(r.id for r in rows[6:])  # ties: by id
    assert seen == [r.id for r in reversed(rows[:6])] + same_instant
    bob = api.get("/api/v1/sessions", {"username": "bo", "server": "db"}, headers=tokens.ro).json["items"]
    assert [s["id"] for s in bob] == [rows[4].id]
    live = api.get("/api/v1/sessions", {"state": "live"}, headers=tokens.ro).json["items"]
    assert [s["id"] for s in live] == [rows[6].id] and live[0]["state"] == "live"
    for bad in ({"state": "asleep"}, {"limit": 0}, {"cursor": "x"}, {"username": "u" * 65}):
        assert api.get("/api/v1/sessions", bad, headers=tokens.ro, status=422).json["fields"]


def test_one_session_and_its_recording(api, tokens, dbsession, log_dir):
    row = session(dbsession, 1)
    one = api.get(f"/api/v1/sessions/{row.id}", headers=tokens.ro)
    assert one.headers["ETag"] and one.json == {
        "id": row.id, "username": "alice", "client_address": "192.0.2.5", "server": "web1",
        "server_address": "root@10.0.0.1:22", "command": "", "state": "ended",
        "started_at": "2026-03-04T05:07:07Z", "ended_at": "2026-03-04T05:07:37Z", "exit_status": 0,
        "bytes_in": 0, "bytes_out": 0, "guard_refusals": 0, "end_reason": "", "terminate_requested": False,
        "recording": f"{row.id}.cast"}
    missing = api.get(f"/api/v1/sessions/{row.id}/recording", headers=tokens.ro, status=404)
    assert "not on this node's disk" in missing.json["error"]
    log_dir.mkdir()
    cast = json.dumps({"version": 2, "width": 80, "height": 24}) + "\n" + json.dumps([0.1, "o", "hello"]) + "\n"
    (log_dir / row.recording).write_text(cast)
    recording = api.get(f"/api/v1/sessions/{row.id}/recording", headers=tokens.ro)
    assert recording.content_type == "application/x-asciicast" and recording.text == cast
    for path in (f"/api/v1/sessions/{MADE_UP}", f"/api/v1/sessions/{MADE_UP}/recording"):
        assert "no session" in api.get(path, headers=tokens.ro, status=404).json["error"]


def terminations(dbsession) -> list[tuple]:
    return [(e.target, e.details, e.username) for e in dbsession.scalars(
        select(ActivityEntry).where(ActivityEntry.action == "gateway.session_terminate"))]


def test_terminate_a_live_session(api, tokens, dbsession):
    live, ended = session(dbsession, 1, live=True), session(dbsession, 2)
    refused = api.post_json(f"/api/v1/sessions/{ended.id}/terminate", {}, headers=tokens.rw, status=422)
    assert "already ended" in refused.json["error"]
    assert api.post_json(f"/api/v1/sessions/{live.id}/terminate", {}, headers=tokens.ro, status=403)
    done = api.post_json(f"/api/v1/sessions/{live.id}/terminate", {}, headers=tokens.rw).json
    assert done["session"]["terminate_requested"] is True and "alice on web1" in done["message"]
    dbsession.expire_all()
    assert dbsession.get(GatewaySession, live.id).terminate_requested is True
    assert dbsession.get(GatewaySession, ended.id).terminate_requested is False
    assert terminations(dbsession) == [(live.id, "alice on web1; via API token script-rw", "root_admin")]
    api.post_json(f"/api/v1/sessions/{MADE_UP}/terminate", {}, headers=tokens.rw, status=404)


def test_a_slave_terminates_its_own_sessions(api, tokens, dbsession, this_node):
    """Sessions are node-local: the slave's panel and API end them too."""
    this_node.role = "slave"
    dbsession.commit()
    live = session(dbsession, 1, live=True)
    api.post_json(f"/api/v1/sessions/{live.id}/terminate", {}, headers=tokens.rw)
    dbsession.expire_all()
    assert dbsession.get(GatewaySession, live.id).terminate_requested is True
    assert [t for t, *_ in terminations(dbsession)] == [live.id]
