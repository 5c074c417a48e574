"""The activity log service: recording, filtering, CSV."""
import csv
import io

import pytest

from ezpyr.activity.models import ActivityEntry
from ezpyr.activity.services import CSV_COLUMNS, ActivityLog, csv_cell
from tests.factories import make_user


def test_record_keeps_who_what_where(dbsession, passwords):
    alice = make_user(dbsession, passwords, "alice")
    log = ActivityLog(dbsession, "node-a")
    log.record("servers.create", "web1", "port 22", user=alice, remote_addr="203.0.113.5")
    log.record("auth.login_failed", "mallory", "wrong password", username="mallory")
    dbsession.commit()
    first, second = dbsession.query(ActivityEntry).order_by(ActivityEntry.id)
    assert (first.user_id, first.username, first.action, first.target, first.details,
            first.remote_addr, first.node_name) == (
        alice.id, "alice", "servers.create", "web1", "port 22", "203.0.113.5", "node-a")
    assert second.user_id is None and second.username == "mallory"


def test_an_entry_commits_or_rolls_back_with_the_work_it_records(dbsession):
    log = ActivityLog(dbsession, "n")
    log.record("x.kept", user_id="someone")
    dbsession.commit()
    log.record("x.dropped")
    dbsession.rollback()
    assert [(e.action, e.user_id) for e in dbsession.query(ActivityEntry)] == [("x.kept", "someone")]


def test_a_long_target_is_cut_to_fit(dbsession):
    ActivityLog(dbsession, "n").record("x.y", "t" * 400)
    dbsession.commit()
    assert len(dbsession.query(ActivityEntry).one().target) == 255


def test_query_is_newest_first_and_filters(dbsession, make_entries):
    make_entries({"username": "alice", "action": "auth.login"},
                 {"username": "bob", "action": "auth.login"},
                 {"username": "alice", "action": "servers.create"})
    log = ActivityLog(dbsession, "node-test")
    everything = dbsession.scalars(log.query()).all()
    assert [(e.username, e.action) for e in everything] == [
        ("alice", "servers.create"), ("bob", "auth.login"), ("alice", "auth.login")]
    assert [e.action for e in dbsession.scalars(log.query(username="alice"))] == [
        "servers.create", "auth.login"]
    assert [e.username for e in dbsession.scalars(log.query(action="auth.login"))] == ["bob", "alice"]
    assert [e.action for e in dbsession.scalars(log.query("alice", "auth.login"))] == ["auth.login"]
    assert dbsession.scalars(log.query(username="nobody")).all() == []


def test_actions_are_distinct_and_sorted(dbsession, make_entries):
    make_entries({"action": "users.create"}, {"action": "auth.login"}, {"action": "users.create"})
    assert ActivityLog(dbsession, "n").actions() == ["auth.login", "users.create"]


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("alice", "alice"), ("a=b", "a=b"), ("", ""), (None, ""),
])
def test_csv_cells_never_start_a_formula(value, cell):
    assert csv_cell(value) == cell


def test_export_csv_has_a_header_and_the_filtered_rows(dbsession, make_entries):
    make_entries({"username": "alice", "action": "auth.login", "details": "line one\nline two"},
                 {"username": "=cmd|' /C calc'!A0", "action": "auth.login_failed",
                  "target": "-evil", "details": "@x"})
    log = ActivityLog(dbsession, "node-test")
    rows = list(csv.reader(io.StringIO(log.export_csv())))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1] == ["2024-05-01 12:01:00", "'=cmd|' /C calc'!A0", "auth.login_failed",
                       "'-evil", "'@x", "198.51.100.7", "node-test"]
    assert rows[2][4] == "line one\nline two"
    only = list(csv.reader(io.StringIO(log.export_csv(action="auth.login"))))
    assert len(only) == 2 and only[1][1] == "alice"
