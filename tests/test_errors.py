"""Error pages: what a node answers when its database is down."""
import pytest
import webtest

from ezpyr import main
from tests.conftest import app_settings
from tests.factories import csrf_from

# Nothing listens on port 1; a SQLite file in a directory that does not exist
# cannot be opened. Both are real databases that cannot be reached.
DOWN = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:1/ezpyr?connect_timeout=2",
    "sqlite": "sqlite:////nonexistent-ezpyr-dir/ezpyr.sqlite",
}


def down_app(backend, cookies=None):
    app = webtest.TestApp(main({}, **app_settings(DOWN[backend])))
    for name, value in (cookies or {}).items():
        app.set_cookie(name, value)
    return app


def assert_database_page(res):
    assert res.status_int == 503
    assert "Database unreachable" in res.text and "cannot reach its database" in res.text
    assert "Traceback" not in res.text and "Internal Server Error" not in res.text
    assert res.headers["Retry-After"]


@pytest.mark.parametrize("backend", sorted(DOWN))
def test_the_sign_in_page_of_a_node_whose_database_is_down_says_so(backend):
    app = down_app(backend)
    assert_database_page(app.get("/login", status=503))
    # the home page sends a stranger to sign in, which says the same
    res = app.get("/", status=303).follow(status=503)
    assert_database_page(res)


@pytest.mark.parametrize("path", ["/", "/servers", "/cluster", "/profile/servers"])
def test_signed_in_pages_of_a_node_whose_database_is_down_say_so(admin_app, backend, path):
    app = down_app(backend, admin_app.cookies)
    assert_database_page(app.get(path, status=503))


def test_a_change_sent_while_the_database_is_down_is_answered_503(admin_app, backend):
    token = csrf_from(admin_app.get("/user-groups/new"))
    app = down_app(backend, admin_app.cookies)
    res = app.post("/user-groups/new", {"name": "ops", "csrf_token": token}, status=503)
    assert_database_page(res)
    assert "Nothing was changed." in res.text
