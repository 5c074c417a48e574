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
