"""The activity log page and its CSV download."""
import csv
import io

from ezpyr.activity.models import ActivityEntry

NOTE = "Logs of this node only: the activity log is not replicated."


def rows(page):
    return page.html.select("table.activity tbody tr")


def test_the_page_shows_every_column_newest_first(admin_app, dbsession, make_entries):
    dbsession.query(ActivityEntry).delete()  # the admin's own sign-in
    dbsession.commit()
    make_entries({"username": "alice", "action": "servers.create", "target": "web1",
                  "details": "port 2222"},
                 {"username": "", "action": "auth.login_failed", "target": "ghost",
                  "remote_addr": "203.0.113.9", "node_name": "node-b"})
    page = admin_app.get("/activity")
    assert NOTE in page
    headers = [th.text for th in page.html.select("table.activity thead th")]
    assert headers == ["When (UTC)", "Who", "Action", "Target", "Details", "From address", "Node"]
    cells = [[td.get_text(strip=True) for td in tr.select("td")] for tr in rows(page)]
    assert cells == [
        ["2024-05-01 12:01:00", "nobody", "auth.login_failed", "ghost", "", "203.0.113.9", "node-b"],
        ["2024-05-01 12:00:00", "alice", "servers.create", "web1", "port 2222", "198.51.100.7",
         "node-test"],
    ]


def test_signing_in_is_logged_with_address_and_node(admin_app):
    page = admin_app.get("/activity")
    first = [td.get_text(strip=True) for td in rows(page)[0].select("td")]
    assert first[1:] == ["root_admin", "auth.login", "root_admin", "", "192.0.2.10", "node-test"]


def test_paging_is_fifty_a_page(admin_app, make_entries):
    make_entries(*({"username": f"u{n:02d}", "action": "x.y"} for n in range(60)))
    page1 = admin_app.get("/activity")  # 61 entries with the admin's sign-in
    assert len(rows(page1)) == 50 and "Page 1 of 2 (61 in all)" in page1
    assert "u59" in page1 and "u09" not in page1
    page2 = admin_app.get("/activity", {"page": 2})
    assert len(rows(page2)) == 11 and "u09" in page2 and "u00" in page2
    assert len(rows(admin_app.get("/activity", {"page": "many"}))) == 50


def test_filter_by_username_and_action(admin_app, make_entries):
    make_entries({"username": "alice", "action": "servers.create", "target": "web1"},
                 {"username": "bob", "action": "servers.create", "target": "web2"},
                 {"username": "alice", "action": "users.update", "target": "carol"})
    page = admin_app.get("/activity", {"username": "alice"})
    assert [tr.select("td")[3].text for tr in rows(page)] == ["carol", "web1"]
    page = admin_app.get("/activity", {"action": "servers.create"})
    assert [tr.select("td")[3].text for tr in rows(page)] == ["web2", "web1"]
    page = admin_app.get("/activity", {"username": " alice ", "action": "servers.create"})
    assert [tr.select("td")[3].text for tr in rows(page)] == ["web1"]
    options = [o["value"] for o in page.html.select("select[name=action] option")]
    assert options == ["", "auth.login", "servers.create", "users.update"]
    assert page.html.select_one("select[name=action] option[selected]")["value"] == "servers.create"
    assert page.html.select_one("input[name=username]")["value"] == "alice"
    csv_link = page.html.find("a", string="Download CSV")["href"]
    assert "username=alice" in csv_link and "action=servers.create" in csv_link


def test_a_filter_that_matches_nothing_says_so(admin_app):
    page = admin_app.get("/activity", {"username": "nobody", "action": "no.such.action"})
    assert page.status_int == 200 and "No activity matches this filter." in page


def test_csv_download_is_filtered_and_spreadsheet_safe(admin_app, make_entries):
    make_entries({"username": "alice", "action": "servers.create", "target": "=1+1"},
                 {"username": "bob", "action": "servers.create", "target": "+web"},
                 {"username": "alice", "action": "users.update", "target": "@carol"})
    res = admin_app.get("/activity.csv", {"username": "alice"})
    assert res.content_type == "text/csv" and res.charset == "utf-8"
    assert res.headers["Content-Disposition"].startswith('attachment; filename="activity-node-test-')
    table = list(csv.reader(io.StringIO(res.text)))
    assert table[0] == ["when (UTC)", "who", "action", "target", "details", "from address", "node"]
    assert [(r[1], r[2], r[3]) for r in table[1:]] == [
        ("alice", "users.update", "'@carol"), ("alice", "servers.create", "'=1+1")]
    everything = list(csv.reader(io.StringIO(admin_app.get("/activity.csv").text)))
    assert len(everything) == 1 + 4  # the three and the admin's sign-in
    assert ("bob", "'+web") in [(r[1], r[3]) for r in everything]


def test_the_log_is_for_admins_only(testapp, user_app):
    for url in ("/activity", "/activity.csv"):
        user_app.get(url, status=403)


def test_anonymous_visitors_are_sent_to_sign_in(testapp):
    for url in ("/activity", "/activity.csv"):
        res = testapp.get(url, status=303)
        assert res.location.startswith("http://localhost/login")
