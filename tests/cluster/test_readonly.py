"""A slave's panel shows everything and changes nothing: every mutating
route is refused with a message naming the master."""
import pytest
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import func, select

from ezpyr.meta import replicated_tables
from ezpyr.replication.models import OutboxEntry
from tests.factories import csrf_from

MASTER = "192.0.2.20:6543"


def mutating_routes(app):
    """(route name, path) of every route with a view that takes POST and
    may change replicated data."""
    introspector = app.registry.introspector
    routes = {i["introspectable"]["name"]: i["introspectable"]
              for i in introspector.get_category("routes")}
    found = {}
    for item in introspector.get_category("views"):
        view = item["introspectable"]
        name = view["route_name"]
        methods = view["request_methods"]
        if not name or name not in routes:
            continue
        if methods is not None and "POST" not in methods:
            continue
        permissions = [p["value"] for p in item["related"] if p.category_name == "permissions"]
        if view.get("node_local") or NO_PERMISSION_REQUIRED in permissions:
            continue
        if name.startswith("cluster.api."):
            continue
        if name.startswith("api."):  # bearer tokens, not this session: tests/api/test_api.py walks them
            continue
        pattern = routes[name]["pattern"]
        path = pattern.replace("{id}", "00000000-0000-0000-0000-000000000000")
        found[name] = "/" + path.lstrip("/")
    return sorted(found.items())


def snapshot(engine):
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in replicated_tables()}


@pytest.fixture
def slave_admin_app(admin_app, dbsession, peer, this_node):
    this_node.role = "slave"
    peer.role = "master"
    peer.address = MASTER
    dbsession.commit()
    return admin_app


def test_there_are_mutating_routes_to_check(wsgi_app):
    names = dict(mutating_routes(wsgi_app))
    assert "user_groups.new" in names and "user_groups.delete" in names


def test_the_slave_refuses_every_mutating_route(slave_admin_app, wsgi_app, engine, dbsession):
    token = csrf_from(slave_admin_app.get("/cluster"))
    before = snapshot(engine)
    refused = []
    for name, path in mutating_routes(wsgi_app):
        res = slave_admin_app.post(path, {"csrf_token": token, "name": "x"}, expect_errors=True)
        assert res.status_int == 409, f"{name} {path}: {res.status}"
        assert "does not accept changes" in res.text and MASTER in res.text, name
        refused.append(name)
    assert refused
    assert snapshot(engine) == before
    assert dbsession.scalar(select(func.count()).select_from(OutboxEntry)) == 0


def test_the_slave_still_shows_pages(slave_admin_app):
    assert slave_admin_app.get("/user-groups").status_int == 200
    assert "slave" in slave_admin_app.get("/cluster").text


def test_the_master_is_not_refused(admin_app, this_node):
    res = admin_app.get("/user-groups/new")
    token = csrf_from(res)
    assert admin_app.post("/user-groups/new", {"csrf_token": token, "name": "ops"}).status_int == 303


def test_every_page_of_the_slave_says_where_to_make_changes(slave_admin_app):
    page = slave_admin_app.get("/user-groups")
    assert "This node is <strong>slave</strong>" in page and MASTER in page


def test_the_master_shows_no_such_banner(admin_app, this_node):
    assert "you can look, but changes are made" not in admin_app.get("/user-groups")


def test_a_change_refused_at_commit_by_a_switchover_gets_the_409_page(admin_app, engine, dbsession,
                                                                      this_node, peer):
    """A graceful switchover demotes the master while a request is in flight:
    the request passed the page's check as master, and its commit is refused
    (the locking read of the node's role sees the demote). The refusal page
    must come out as a 409 naming the master, not a 500 from an error page
    that reads the failed transaction (the 2FA check reads settings)."""
    if engine.dialect.name != "mysql":
        pytest.skip("needs row locks held across connections (MariaDB)")
    import threading
    import time

    from sqlalchemy import text

    token = csrf_from(admin_app.get("/user-groups/new"))
    answers = []
    with engine.connect() as switchover:
        # the switchover holds the node row, as demote does
        switchover.execute(text("SELECT role FROM node_identity FOR UPDATE"))
        post = threading.Thread(target=lambda: answers.append(admin_app.post(
            "/user-groups/new", {"csrf_token": token, "name": "ops"}, expect_errors=True)))
        post.start()
        for _ in range(100):  # until the request's commit waits for the node row
            waiting = switchover.execute(text(
                "SELECT COUNT(*) FROM information_schema.innodb_trx "
                "WHERE trx_state = 'LOCK WAIT'")).scalar_one()
            if waiting:
                break
            time.sleep(0.1)
        assert waiting, "the request never reached its commit"
        switchover.execute(text("UPDATE node_identity SET role = 'slave'"))
        switchover.execute(text("UPDATE cluster_peer SET role = 'master', address = :a"), {"a": MASTER})
        switchover.commit()
        post.join(30)
    res = answers[0]
    assert res.status_int == 409, res.text[:2000]
    assert "does not accept changes" in res.text and MASTER in res.text
    assert snapshot(engine)["user_groups"] == 0


def test_with_2fa_required_a_user_new_to_the_slave_is_sent_to_enrol_on_the_master(
        testapp, dbsession, passwords, this_node, peer):
    """Enrolling is a change, which the slave refuses: the enrolment page on
    the slave says where to enrol (the master's address), shows no secret
    and no form, and every other page still leads back to it."""
    from urllib.parse import urlparse

    from ezpyr.settings.services import SettingsService
    from tests.factories import login, make_user

    make_user(dbsession, passwords, "newcomer")
    SettingsService(dbsession).update(totp_required=True)
    dbsession.commit()
    this_node.role, peer.role, peer.address = "slave", "master", MASTER
    dbsession.commit()

    res = login(testapp, "newcomer")
    while res.status_int == 303 and urlparse(res.location).path != "/profile/2fa":
        res = res.follow()
    assert urlparse(res.location).path == "/profile/2fa"
    page = res.follow()
    assert page.status_int == 200
    assert "set it up on the master" in page.text.lower()
    assert f'href="http://{MASTER}/profile/2fa"' in page.text
    assert "totp-qr" not in page.text and "Turn on two-factor sign-in" not in page.text
    # no access meanwhile
    for url in ("/", "/profile/servers", "/profile"):
        res = testapp.get(url)
        assert res.status_int == 303 and urlparse(res.location).path == "/profile/2fa", url
