"""The route-permission inventory.

Every route of the real app is found by introspection (no hand-kept list of
routes), and each is requested: anonymously, and signed in as a user without
the admin role. What each route must do follows from the permission its views
declare:

* ``NO_PERMISSION_REQUIRED``: anyone reaches the view — and only the routes
  in the allow-lists below may be public, so that a route made public by
  mistake fails here;
* ``user``: anonymous visitors are sent to sign in; any signed-in user
  reaches the view;
* ``admin``: anonymous visitors are sent to sign in; a non-admin gets 403.

Each request goes through the app's own request pipeline (tweens, security
policy, exception views), and the test looks at what answered: the security
policy's refusal (an ``HTTPForbidden`` carrying a ``Denied``) or the view.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pytest
import webob
from pyramid.httpexceptions import HTTPForbidden
from pyramid.interfaces import IDefaultPermission
from pyramid.security import NO_PERMISSION_REQUIRED, Denied

from ezpyr.node.services import NodeService
from tests.factories import csrf_from

# Routes that must exist and be open to anonymous visitors (signing in).
MUST_BE_PUBLIC = {"auth.login"}
# Must be public when they exist.
PUBLIC_IF_PRESENT = {"auth.totp"}
# May be public: signing out (harmless without a session), and the node-to-node
# cluster API, whose credential is a signature with the cluster secret.
MAY_BE_PUBLIC = {"auth.logout"}
# The operators' endpoints: health checks for load balancers (they say only
# what is wrong), and the metrics, which check the scraper's address instead
# (tests/ops/test_ops.py proves a foreign address is refused).
MAY_BE_PUBLIC |= {"ops.healthz", "ops.readyz", "ops.metrics"}
# /readyz answers 503 on purpose while the node is not ready (here: no worker).
MAY_ANSWER_503 = {"ops.readyz"}
# The API's reference (the OpenAPI document and its page) is public; its
# endpoints need a bearer token, and answer 401 without one (never a redirect).
MAY_BE_PUBLIC |= {"api.openapi", "api.docs"}


def is_api(name: str) -> bool:
    return name.startswith("api.") and name not in MAY_BE_PUBLIC
MAY_BE_PUBLIC_PREFIXES = ("cluster.api.",)

MADE_UP_ID = "00000000-0000-4000-8000-000000000000"
PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
METHODS = ("GET", "POST")


def may_be_public(name: str) -> bool:
    return (name in MUST_BE_PUBLIC or name in PUBLIC_IF_PRESENT or name in MAY_BE_PUBLIC
            or name.startswith(MAY_BE_PUBLIC_PREFIXES))


def is_static(name: str) -> bool:
    # add_static_view registers routes named "__<name>/"
    return name.startswith("__")


def _methods(view) -> set[str]:
    methods = view["request_methods"]
    if methods is None:
        return set(METHODS)
    if isinstance(methods, str):
        methods = (methods,)
    return {m for m in methods if m in METHODS}


@dataclass
class Route:
    name: str
    pattern: str
    # method -> the permissions its views need
    permissions: dict

    @property
    def path(self) -> str:
        return "/" + PLACEHOLDER.sub(MADE_UP_ID, self.pattern).lstrip("/")

    def permission(self, method: str):
        (permission,) = self.permissions[method]
        return permission


def views_by_route(app) -> dict:
    """route name -> [(view introspectable, declared permission or None)]."""
    found = {}
    for item in app.registry.introspector.get_category("views"):
        view = item["introspectable"]
        if not view["route_name"]:
            continue  # exception and not-found views
        declared = [p["value"] for p in item["related"] if p.category_name == "permissions"]
        found.setdefault(view["route_name"], []).append((view, declared[0] if declared else None))
    return found


def route_inventory(app) -> list[Route]:
    """Every route with at least one view, except static files."""
    views = views_by_route(app)
    # a view that declares nothing gets the default (its own test fails)
    default = app.registry.queryUtility(IDefaultPermission)
    routes = []
    for item in app.registry.introspector.get_category("routes"):
        intr = item["introspectable"]
        name = intr["name"]
        if is_static(name) or name not in views:
            continue
        permissions = {}
        for view, permission in views[name]:
            for method in _methods(view):
                permissions.setdefault(method, set()).add(
                    default if permission is None else permission)
        routes.append(Route(name, intr["pattern"], permissions))
    return routes


@dataclass
class Answer:
    status: int
    location: str
    denied: bool  # refused by the security policy (the view never ran)
    route: str | None
    body: str


def send(app, browser, method: str, path: str, token: str) -> Answer:
    """One request through the app's pipeline, with ``browser``'s cookies."""
    cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    environ = webob.Request.blank(
        path, method=method, headers={"Cookie": cookies} if cookies else {},
        POST={"csrf_token": token} if method == "POST" else None,
        environ={"REMOTE_ADDR": "192.0.2.10"},
    ).environ
    with app.request_context(environ) as request:
        try:
            response = app.invoke_request(request)
        except Exception as error:  # noqa: BLE001 - what the WSGI server would answer with a 500
            route = request.matched_route.name if request.matched_route else None
            return Answer(500, "", False, route, f"{type(error).__name__}: {error}")
        exc = getattr(request, "exception", None)
        denied = isinstance(exc, HTTPForbidden) and isinstance(getattr(exc, "result", None), Denied)
        route = request.matched_route.name if request.matched_route else None
        return Answer(response.status_int, response.headers.get("Location", ""), denied,
                      route, response.text if response.content_type else "")


@pytest.fixture
def this_node(dbsession):
    """The node's identity, as ezpyr-init leaves it."""
    node = NodeService(dbsession).create("node-test", "127.0.0.1:6543")
    dbsession.commit()
    return node


def token_of(browser) -> str:
    return csrf_from(browser.get("/login").maybe_follow())


def checks(routes, *, skip_public=False):
    """(route, method) pairs to request, unambiguous ones only."""
    for route in routes:
        for method in METHODS:
            if method not in route.permissions or len(route.permissions[method]) != 1:
                continue
            if skip_public and route.permission(method) == NO_PERMISSION_REQUIRED:
                continue
            yield route, method


def test_the_inventory_sees_the_app(wsgi_app):
    routes = {r.name: r for r in route_inventory(wsgi_app)}
    assert routes["auth.login"].permission("GET") == NO_PERMISSION_REQUIRED
    assert routes["activity.list"].permission("GET") == "admin"
    assert routes["home"].permission("GET") == "user"
    assert not any(is_static(name) for name in routes)


def test_every_view_of_a_route_declares_its_permission(wsgi_app):
    offenders = sorted(
        f"{name}: {view['callable']!r}"
        for name, views in views_by_route(wsgi_app).items() if not is_static(name)
        for view, permission in views if permission is None
    )
    assert not offenders, (
        "these views declare no permission= (the default 'admin' applies, but every view "
        "must say what it needs):\n  " + "\n  ".join(offenders))


def test_each_method_of_a_route_has_one_permission(wsgi_app):
    mixed = [f"{r.name} {method}: {sorted(map(str, perms))}"
             for r in route_inventory(wsgi_app) for method, perms in r.permissions.items()
             if len(perms) > 1]
    assert not mixed, "views of one route and method with different permissions:\n  " + "\n  ".join(mixed)


def test_only_allowed_routes_are_public(wsgi_app):
    routes = route_inventory(wsgi_app)
    public = {r.name for r in routes for perms in r.permissions.values()
              if NO_PERMISSION_REQUIRED in perms}
    unexpected = sorted(name for name in public if not may_be_public(name))
    assert not unexpected, (
        "these routes need no permission but are not on the public allow-list in "
        f"tests/test_routes.py: {unexpected}")
    names = {r.name for r in routes}
    must = MUST_BE_PUBLIC | (PUBLIC_IF_PRESENT & names)
    closed = sorted(must - public)
    assert not closed, f"these routes must be reachable without signing in: {closed}"
    assert MUST_BE_PUBLIC <= names, f"missing routes: {sorted(MUST_BE_PUBLIC - names)}"


def test_anonymous_visitors(wsgi_app, testapp, this_node):
    token = token_of(testapp)
    problems, checked = [], 0
    for route, method in checks(route_inventory(wsgi_app)):
        answer = send(wsgi_app, testapp, method, route.path, token)
        checked += 1
        where = f"{route.name} {method} {route.path}"
        if answer.route != route.name:
            problems.append(f"{where}: matched route {answer.route}, not {route.name}")
        elif answer.status >= 500 and not (answer.status == 503 and route.name in MAY_ANSWER_503):
            problems.append(f"{where}: {answer.status} {answer.body[:200]}")
        elif is_api(route.name):
            if answer.status != 401 or not answer.body.startswith("{"):
                problems.append(f"{where}: an API call without a token got {answer.status}, not a JSON 401")
        elif route.permission(method) == NO_PERMISSION_REQUIRED:
            if answer.denied:
                problems.append(f"{where}: public, but refused by the security policy")
            if route.name.startswith("cluster.api.") and answer.status != 403:
                problems.append(f"{where}: an unsigned API request got {answer.status}, not 403")
        else:
            target = urlparse(answer.location)
            if not answer.denied or answer.status != 303 or target.path != "/login":
                problems.append(f"{where}: expected a 303 to /login, got {answer.status} "
                                f"{answer.location} (denied: {answer.denied})")
            elif method == "GET" and parse_qs(target.query).get("next") != [route.path]:
                problems.append(f"{where}: the sign-in link does not come back: {answer.location}")
    assert checked > 10
    assert not problems, "anonymous visitors:\n  " + "\n  ".join(problems)


def test_a_signed_in_user_without_the_admin_role(wsgi_app, user_app, this_node):
    token = token_of(user_app)
    problems, checked = [], {"admin": 0, "user": 0}
    # admin routes first: they are refused before any view runs, so nothing
    # a user route does (an empty form posted) can change what they see
    ordered = sorted(checks(route_inventory(wsgi_app), skip_public=True),
                     key=lambda pair: pair[0].permission(pair[1]) != "admin")
    for route, method in ordered:
        permission = route.permission(method)
        answer = send(wsgi_app, user_app, method, route.path, token)
        where = f"{route.name} {method} {route.path} ({permission})"
        if answer.route != route.name:
            problems.append(f"{where}: matched route {answer.route}, not {route.name}")
        elif answer.status >= 500 and not (answer.status == 503 and route.name in MAY_ANSWER_503):
            problems.append(f"{where}: {answer.status} {answer.body[:200]}")
        elif is_api(route.name):  # the session cookie counts for nothing on the API
            if answer.status != 401:
                problems.append(f"{where}: a session without a token got {answer.status}, not 401")
        elif permission == "admin":
            if answer.status != 403 or not answer.denied:
                problems.append(f"{where}: expected 403, got {answer.status} {answer.location}")
        elif permission == "user":
            if answer.status == 403 or answer.denied:
                problems.append(f"{where}: refused a signed-in user")
            elif urlparse(answer.location).path == "/login":
                problems.append(f"{where}: sent a signed-in user to sign in")
        else:
            problems.append(f"{where}: unknown permission {permission!r}")
        checked[permission] = checked.get(permission, 0) + 1
    assert checked["admin"] > 5 and checked["user"] > 0
    assert not problems, "a signed-in non-admin:\n  " + "\n  ".join(problems)


def test_static_files_are_public(testapp):
    assert testapp.get("/static/ezpyr.css").status_int == 200


def test_an_admin_reaches_every_route(wsgi_app, admin_app, this_node):
    """Admins pass every permission check; a made-up id may then be a 404,
    and an empty form a page with errors, but never a 500."""
    token = token_of(admin_app)
    problems, checked = [], 0
    for route, method in checks(route_inventory(wsgi_app), skip_public=True):
        answer = send(wsgi_app, admin_app, method, route.path, token)
        checked += 1
        where = f"{route.name} {method} {route.path}"
        if answer.route != route.name:
            problems.append(f"{where}: matched route {answer.route}, not {route.name}")
        elif is_api(route.name):  # the session cookie counts for nothing on the API
            if answer.status != 401:
                problems.append(f"{where}: a session without a token got {answer.status}, not 401")
        elif answer.denied or answer.status == 403:
            problems.append(f"{where}: refused an admin ({answer.status})")
        elif answer.status >= 500 and not (answer.status == 503 and route.name in MAY_ANSWER_503):
            problems.append(f"{where}: {answer.status} {answer.body[:200]}")
        elif urlparse(answer.location).path == "/login":
            problems.append(f"{where}: sent a signed-in admin to sign in")
    assert checked > 10
    assert not problems, "a signed-in admin:\n  " + "\n  ".join(problems)
