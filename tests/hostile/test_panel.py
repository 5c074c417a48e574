"""Every form, every list's query and every ``{id}`` route of the panel,
fed hostile input by an admin: never a 5xx, and a refused request changes
no replicated row."""
from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

import pytest
import webtest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import csrf_from, login
from tests.hostile.conftest import HOSTILE, NOT_UTF8, TEXT, raw_request, snapshot, url_segment
from tests.test_routes import PLACEHOLDER, route_inventory

# Signing out would end the session the suite works in.
SKIP = {"auth.logout"}
# What success looks like for a POST: a redirect (post/redirect/get), or a
# page shown once (a generated password): refused requests are the others.
SUCCESS = {302, 303}
SHOWN_ONCE = {"users.new", "users.password"}
# Answers 503 by design while this node is not ready (no worker runs here).
NOT_READY = {"ops.readyz"}
NAME_RE = re.compile(r'name="([A-Za-z_][\w-]*)"')
QUERY_NAMES = ["q", "page", "group", "next", "user", "username", "action", "user_group_id", "command",
               "server", "job"]


def panel_routes(app, method: str) -> list:
    """The panel's routes that answer ``method`` (not the cluster API)."""
    return [r for r in route_inventory(app)
            if method in r.permissions and r.name not in SKIP and not r.name.startswith("cluster.api.")]


@pytest.fixture
def admin_browser(wsgi_app, world):
    browser = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "192.0.2.10"})
    login(browser, world["admin"].username)
    token = csrf_from(browser.get("/users/new"))
    return browser, token


@pytest.fixture
def names(wsgi_app, world, admin_browser):
    return field_names(admin_browser[0], panel_routes(wsgi_app, "GET"), world["ids"])


def fill(pattern: str, draw, ids) -> str:
    return "/" + PLACEHOLDER.sub(
        lambda _m: draw(st.one_of(st.sampled_from(ids), url_segment())), pattern).lstrip("/")


def field_names(browser, routes, ids) -> list[str]:
    """Every field name the panel's pages use."""
    names = set(QUERY_NAMES)
    for route in routes:
        for some_id in ids[:2]:
            page = browser.get("/" + PLACEHOLDER.sub(some_id, route.pattern).lstrip("/"), expect_errors=True)
            names.update(NAME_RE.findall(page.text))
            if "{" not in route.pattern:
                break
    names.discard("csrf_token")
    return sorted(names)


def form_body(draw, names) -> bytes:
    fields = draw(st.dictionaries(st.one_of(st.sampled_from(names), st.text(max_size=8)), TEXT,
                                  max_size=8))
    body = urlencode(fields).encode()
    if draw(st.booleans()) and draw(st.booleans()):  # one field that is not UTF-8
        body += b"&" + draw(st.sampled_from(names)).encode() + b"=" + quote(draw(NOT_UTF8)).encode()
    return body


@given(data=st.data())
@HOSTILE
def test_every_form_answers_hostile_input_below_500_and_a_refusal_changes_nothing(
        wsgi_app, engine, world, admin_browser, names, data):
    browser, token = admin_browser
    route = data.draw(st.sampled_from(panel_routes(wsgi_app, "POST")), label="route")
    path = fill(route.pattern, data.draw, world["ids"])
    body = form_body(data.draw, names)
    before = snapshot(engine)
    answer = raw_request(wsgi_app, "POST", path, body=body, cookies=dict(browser.cookies),
                         headers={"X-CSRF-Token": token})
    assert answer.status_code < 500, (route.name, path, body[:200], answer.text[:2000])
    if answer.status_code not in SUCCESS and route.name not in SHOWN_ONCE:
        assert snapshot(engine) == before, (route.name, answer.status_code, body[:200])


@given(data=st.data())
@HOSTILE
def test_every_page_and_id_answers_hostile_paths_and_queries_below_500(
        wsgi_app, engine, world, admin_browser, data):
    browser, _token = admin_browser
    route = data.draw(st.sampled_from(panel_routes(wsgi_app, "GET")), label="route")
    path = fill(route.pattern, data.draw, world["ids"])
    query = data.draw(st.dictionaries(st.sampled_from(QUERY_NAMES), TEXT, max_size=3))
    raw = urlencode(query)
    if data.draw(st.booleans()):
        raw += "&q=" + quote(data.draw(NOT_UTF8))
    before = snapshot(engine)
    answer = raw_request(wsgi_app, "GET", f"{path}?{raw}", cookies=dict(browser.cookies))
    if route.name in NOT_READY:
        assert answer.status_code in (200, 503), answer.text[:2000]
    else:
        assert answer.status_code < 500, (route.name, path, raw[:200], answer.text[:2000])
    assert snapshot(engine) == before


@given(path=st.lists(url_segment(), min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts)))
@HOSTILE
def test_anonymous_hostile_paths_answer_below_500(wsgi_app, path):
    assert raw_request(wsgi_app, "GET", path).status_code < 500


@pytest.mark.parametrize("path", ["/users/%ED%A0%80/edit", "/servers/%ff/edit", "/%ff", "/login?next=%ff"])
def test_a_path_that_is_not_utf8_is_a_400(wsgi_app, world, admin_browser, path):
    browser, _token = admin_browser
    answer = raw_request(wsgi_app, "GET", path, cookies=dict(browser.cookies))
    assert answer.status_code == 400 and "not valid UTF-8" in answer.text


@pytest.mark.parametrize("page", ["/users", "/user-groups", "/servers", "/server-groups", "/access",
                                  "/command-guard", "/profile/servers"])
def test_a_60000_character_search_is_cut_not_a_500(admin_browser, page):
    browser, _token = admin_browser
    res = browser.get(page, {"q": "x" * 60_000})
    assert res.status_int == 200 and "x" * 201 not in res.text


HEADER_LINE = "name,host,port,remote_user,auth_method,group,description"
# a CSV file an attacker may upload: hostile cells under a good header, a hostile header, raw bytes
CELL = st.one_of(TEXT, st.sampled_from(["web1", "10.0.0.1", "22", "root", "key", "password", "web", ""]))
HOSTILE_FILE = st.one_of(
    st.lists(st.lists(CELL, min_size=7, max_size=7), min_size=1, max_size=5).map(
        lambda rows: "\n".join([HEADER_LINE] + [",".join(f'"{c}"' for c in row) for row in rows]).encode(
            "utf-8", "surrogatepass")),
    st.builds(lambda header, row: f"{header}\n{row}\n".encode("utf-8", "surrogatepass"), TEXT, TEXT),
    st.binary(max_size=300),
    NOT_UTF8.map(lambda b: HEADER_LINE.encode() + b"\n" + b),
)


@given(content=HOSTILE_FILE)
@HOSTILE
def test_the_import_form_answers_hostile_files_below_500_and_adds_all_or_nothing(
        wsgi_app, engine, world, admin_browser, content):
    from ezpyr.jobs.services import wait_for
    from tests.hostile.conftest import snapshot

    browser, token = admin_browser
    before = snapshot(engine)
    answer = browser.post("/servers/import", {"csrf_token": token}, upload_files=[("file", "x.csv", content)],
                          expect_errors=True)
    assert answer.status_code < 500, (content[:200], answer.text[:2000])
    if answer.status_code != 303:
        assert snapshot(engine) == before
        return
    job = wait_for(engine, answer.location.rsplit("/", 1)[1], interval=0.02)
    page = browser.get(answer.location)
    assert page.status_code == 200
    after = snapshot(engine)
    if job.state == "done":
        added = len(after["servers"]) - len(before["servers"])
        assert added == json.loads(job.result)["added"] > 0
    else:
        assert job.refused, job.error
        assert after == before
