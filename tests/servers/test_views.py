"""Server and server group pages."""
import pytest

from ezpyr.access.models import AccessRule
from ezpyr.activity.models import ActivityEntry
from ezpyr.servers.models import Server, ServerGroup
from tests.factories import make_rule, make_user_group, post
from tests.servers.conftest import make_server, make_server_group, server_form

SECRET = "Tr0ub4dor&3-very-secret"


# -- server groups ------------------------------------------------------------------

def test_group_create_edit_delete(admin_app, dbsession):
    res = post(admin_app, "/server-groups/new", {"name": "web", "description": "front ends"})
    assert res.status_int == 303
    page = res.follow()
    assert "Server group web created." in page and "front ends" in page
    group = dbsession.query(ServerGroup).one()

    form = admin_app.get(f"/server-groups/{group.id}/edit")
    assert 'value="web"' in form
    res = post(admin_app, f"/server-groups/{group.id}/edit", {"name": "www", "description": ""})
    assert res.status_int == 303
    dbsession.expire_all()
    assert dbsession.get(ServerGroup, group.id).name == "www"

    res = post(admin_app, f"/server-groups/{group.id}/delete")
    assert res.status_int == 303
    assert "Server group www deleted" in res.follow()
    dbsession.expire_all()
    assert dbsession.query(ServerGroup).count() == 0


def test_group_list_search_paging_and_counts(admin_app, dbsession, secret_box):
    for i in range(30):
        make_server_group(dbsession, f"grp{i:02d}")
    g00 = dbsession.query(ServerGroup).filter_by(name="grp00").one()
    make_server(dbsession, secret_box, "a1", group=g00)
    make_server(dbsession, secret_box, "a2", group=g00)
    page1 = admin_app.get("/server-groups")
    assert "Page 1 of 2" in page1 and "grp00" in page1 and "grp29" not in page1
    row = page1.html.find("a", string="grp00").find_parent("tr")
    assert row.find_all("td")[1].get_text(strip=True) == "2"
    assert "grp29" in admin_app.get("/server-groups", {"page": 2})
    found = admin_app.get("/server-groups", {"q": "grp1"})
    assert "grp15" in found and "grp25" not in found


def test_group_bad_input_is_shown_beside_the_field(admin_app, dbsession):
    make_server_group(dbsession, "web")
    res = post(admin_app, "/server-groups/new", {"name": "  "})
    assert res.status_int == 200 and "This field is required." in res
    res = post(admin_app, "/server-groups/new", {"name": "WEB"})
    assert res.status_int == 200
    assert res.html.select_one("#name-error").get_text() == "A server group named 'web' already exists."
    res = post(admin_app, "/server-groups/new", {"name": "x" * 101})
    assert res.status_int == 200 and res.html.select_one("#name-error")
    dbsession.expire_all()
    assert dbsession.query(ServerGroup).count() == 1


def test_group_delete_confirmation_counts_and_effect(admin_app, dbsession, secret_box):
    team = make_user_group(dbsession, "ops")
    group = make_server_group(dbsession, "web")
    server = make_server(dbsession, secret_box, "web1", group=group)
    make_server(dbsession, secret_box, "web2", group=group)
    make_rule(dbsession, user_group=team, server_group=group)
    page = admin_app.get(f"/server-groups/{group.id}/delete")
    assert "2 servers will lose their group" in page
    assert "1 access rule that names this group will be removed" in page
    res = post(admin_app, f"/server-groups/{group.id}/delete")
    assert "2 servers left without a group, 1 access rule removed" in res.follow()
    dbsession.expire_all()
    assert dbsession.get(Server, server.id).group_id is None
    assert dbsession.query(Server).count() == 2
    assert dbsession.query(AccessRule).count() == 0


def test_unknown_group_is_404(admin_app):
    admin_app.get("/server-groups/nope/edit", status=404)
    admin_app.get("/server-groups/nope/delete", status=404)


# -- servers ------------------------------------------------------------------------

def test_server_create_edit_delete(admin_app, dbsession):
    group = make_server_group(dbsession, "db")
    res = post(admin_app, "/servers/new", server_form(
        name="db1", host="2001:db8::1", port="2222", remote_user="deploy",
        group_id=group.id, description="main database"))
    assert res.status_int == 303
    page = res.follow()
    assert "Server db1 created." in page and "2001:db8::1" in page and "main database" in page
    server = dbsession.query(Server).one()
    assert (server.port, server.remote_user, server.group_id) == (2222, "deploy", group.id)

    form = next(f for f in admin_app.get(f"/servers/{server.id}/edit").forms.values()
                if "group_id" in f.fields)
    assert form["group_id"].value == group.id and form["port"].value == "2222"
    res = post(admin_app, f"/servers/{server.id}/edit",
               server_form(name="db1", host="10.0.0.5", group_id=""))
    assert res.status_int == 303
    dbsession.expire_all()
    server = dbsession.get(Server, server.id)
    assert (server.host, server.port, server.group_id) == ("10.0.0.5", 22, None)

    res = post(admin_app, f"/servers/{server.id}/delete")
    assert res.status_int == 303
    assert "Server db1 deleted" in res.follow()
    dbsession.expire_all()
    assert dbsession.query(Server).count() == 0
    actions = [e.action for e in dbsession.query(ActivityEntry).order_by(ActivityEntry.at)]
    assert actions[-3:] == ["server.create", "server.update", "server.delete"]


@pytest.mark.parametrize("fields, field, message", [
    ({"host": "a b"}, "host", "Host must be a host name"),
    ({"host": "x;rm -rf /"}, "host", "Host must be a host name"),
    ({"host": "300.1.1.1"}, "host", "is not a valid IPv4 address"),
    ({"port": "0"}, "port", "Port must be a number from 1 to 65535."),
    ({"port": "70000"}, "port", "Port must be a number from 1 to 65535."),
    ({"port": "abc"}, "port", "Port must be a number from 1 to 65535."),
    ({"remote_user": "Root"}, "remote_user", "Remote user must be 1 to 32 characters"),
    ({"remote_user": "a;b"}, "remote_user", "Remote user must be 1 to 32 characters"),
    ({"name": "web 1"}, "name", "A server name is 1 to 100 characters"),
    ({"name": ""}, "name", "This field is required."),
    ({"auth_method": "telnet"}, "auth_method", "Authentication must be"),
    ({"auth_method": "password"}, "password", "A password is required"),
    ({"group_id": "no-such-group"}, "group_id", "That server group does not exist"),
])
def test_server_bad_input_is_shown_beside_the_field(admin_app, dbsession, fields, field, message):
    res = post(admin_app, "/servers/new", server_form(**fields))
    assert res.status_int == 200
    error = res.html.select_one(f"#{field}-error")
    assert error is not None and message in error.get_text()
    dbsession.expire_all()
    assert dbsession.query(Server).count() == 0


def test_duplicate_server_name_is_shown_beside_the_field(admin_app, dbsession, secret_box):
    make_server(dbsession, secret_box, "web1")
    res = post(admin_app, "/servers/new", server_form(name="web1", host="other.example.net"))
    assert res.html.select_one("#name-error").get_text() == "A server named 'web1' already exists."
    other = make_server(dbsession, secret_box, "web2")
    res = post(admin_app, f"/servers/{other.id}/edit", server_form(name="WEB1"))
    assert res.status_int == 200 and res.html.select_one("#name-error")
    dbsession.expire_all()
    assert dbsession.get(Server, other.id).name == "web2"


def test_several_errors_show_at_once(admin_app):
    res = post(admin_app, "/servers/new", server_form(host="a b", port="0", remote_user="X"))
    assert {e["id"] for e in res.html.select(".error")} == {
        "host-error", "port-error", "remote_user-error"}


def test_password_is_encrypted_and_never_shown(admin_app, dbsession, secret_box):
    res = post(admin_app, "/servers/new", server_form(
        name="vault", auth_method="password", password=SECRET))
    assert res.status_int == 303
    pages = [res.follow()]
    server = dbsession.query(Server).one()
    assert server.auth_method == "password"
    assert SECRET not in server.password_encrypted
    assert secret_box.decrypt(server.password_encrypted) == SECRET

    pages.append(admin_app.get(f"/servers/{server.id}/edit"))
    assert "A password is stored" in pages[-1]
    # Saving with the box left empty keeps it.
    res = post(admin_app, f"/servers/{server.id}/edit",
               server_form(name="vault", auth_method="password"))
    assert res.status_int == 303
    pages.append(res.follow())
    dbsession.expire_all()
    assert secret_box.decrypt(dbsession.get(Server, server.id).password_encrypted) == SECRET
    # A form sent back with an error does not echo it either.
    pages.append(post(admin_app, f"/servers/{server.id}/edit",
                      server_form(name="vault", auth_method="password", password=SECRET,
                                  port="0")))
    pages += [admin_app.get("/servers"), admin_app.get(f"/servers/{server.id}/delete"),
              admin_app.get("/servers/export.csv"), admin_app.get("/activity"),
              admin_app.get("/activity.csv")]
    for page in pages:
        assert SECRET not in page.text
        assert server.password_encrypted not in page.text


def test_switching_to_key_forgets_the_password(admin_app, dbsession, secret_box):
    server = make_server(dbsession, secret_box, "vault", auth_method="password", password=SECRET)
    res = post(admin_app, f"/servers/{server.id}/edit", server_form(name="vault", auth_method="key"))
    assert res.status_int == 303
    dbsession.expire_all()
    server = dbsession.get(Server, server.id)
    assert (server.auth_method, server.password_encrypted) == ("key", None)


def test_edit_can_change_the_password(admin_app, dbsession, secret_box):
    server = make_server(dbsession, secret_box, "vault", auth_method="password", password="old-one")
    post(admin_app, f"/servers/{server.id}/edit",
         server_form(name="vault", auth_method="password", password=SECRET))
    dbsession.expire_all()
    assert secret_box.decrypt(dbsession.get(Server, server.id).password_encrypted) == SECRET


def test_server_list_search_filter_and_paging(admin_app, dbsession, secret_box):
    web = make_server_group(dbsession, "web")
    for i in range(30):
        make_server(dbsession, secret_box, f"node{i:02d}", group=web if i % 2 else None,
                    description="rack 7" if i == 3 else "")
    make_server(dbsession, secret_box, "special", host="10.9.8.7")
    page1 = admin_app.get("/servers")
    assert "Page 1 of 2" in page1 and "node00" in page1 and "node29" not in page1
    assert "node29" in admin_app.get("/servers", {"page": 2})
    assert "node03" in admin_app.get("/servers", {"q": "rack 7"})
    found = admin_app.get("/servers", {"q": "10.9.8"})
    assert "special" in found and "node00" not in found
    in_web = admin_app.get("/servers", {"group": web.id})
    assert "node01" in in_web and "node02" not in in_web and "15 in all" in in_web
    no_group = admin_app.get("/servers", {"group": "none"})
    assert "node02" in no_group and "node01" not in no_group
    both = admin_app.get("/servers", {"group": web.id, "q": "node2"})
    assert "node21" in both and "node22" not in both
    # the pager keeps the search
    paged = admin_app.get("/servers", {"q": "node"})
    assert "q=node" in paged.html.select_one("a[rel=next]")["href"]


def test_server_delete_confirmation_and_rules(admin_app, dbsession, secret_box):
    team = make_user_group(dbsession, "ops")
    server = make_server(dbsession, secret_box, "web1")
    make_rule(dbsession, user_group=team, server=server)
    page = admin_app.get(f"/servers/{server.id}/delete")
    assert "1 access rule that names this server will be removed" in page
    res = post(admin_app, f"/servers/{server.id}/delete")
    assert "1 access rule removed" in res.follow()
    dbsession.expire_all()
    assert dbsession.query(AccessRule).count() == 0 and dbsession.query(Server).count() == 0


def test_get_never_deletes(admin_app, dbsession, secret_box):
    server = make_server(dbsession, secret_box, "web1")
    group = make_server_group(dbsession, "web")
    admin_app.get(f"/servers/{server.id}/delete")
    admin_app.get(f"/server-groups/{group.id}/delete")
    dbsession.expire_all()
    assert dbsession.query(Server).count() == 1 and dbsession.query(ServerGroup).count() == 1


def test_unknown_server_is_404(admin_app):
    admin_app.get("/servers/nope/edit", status=404)
    admin_app.get("/servers/nope/delete", status=404)


ADMIN_PAGES = ["/servers", "/servers/new", "/servers/import", "/servers/export.csv",
               "/server-groups", "/server-groups/new"]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_anonymous_is_sent_to_sign_in(testapp, url):
    res = testapp.get(url, status=303)
    assert "/login" in res.location


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_non_admin_is_refused(user_app, url):
    user_app.get(url, status=403)


def test_non_admin_cannot_post(user_app, dbsession, secret_box):
    server = make_server(dbsession, secret_box, "web1")
    token = user_app.get("/profile").html.select_one("input[name=csrf_token]")["value"]
    user_app.post(f"/servers/{server.id}/delete", {"csrf_token": token}, status=403)
    user_app.post("/servers/new", dict(server_form(name="x"), csrf_token=token), status=403)
    dbsession.expire_all()
    assert [s.name for s in dbsession.query(Server)] == ["web1"]
