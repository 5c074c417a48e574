"""Build rows for tests. Each returns the committed object."""
from __future__ import annotations

import re

from ezpyr.access.models import AccessRule
from ezpyr.passwords import Passwords
from ezpyr.users.groups import UserGroupService
from ezpyr.users.services import UserService

PASSWORD = "Correct-horse-42"


def make_user_group(dbsession, name="ops", description=""):
    group = UserGroupService(dbsession).create(name, description)
    dbsession.commit()
    return group


def make_user(dbsession, passwords: Passwords, username="alice", *, role="user",
              password=PASSWORD, group=None, **fields):
    user = UserService(dbsession, passwords).create(
        username, password, role=role, group_id=group.id if group else None, **fields
    )
    dbsession.commit()
    return user


def make_admin(dbsession, passwords, username="root_admin", **fields):
    return make_user(dbsession, passwords, username, role="admin", **fields)


def make_rule(dbsession, *, user_group=None, user=None, server_group=None, server=None):
    rule = AccessRule(user_group=user_group, user=user, server_group=server_group, server=server)
    dbsession.add(rule)
    dbsession.commit()
    return rule


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(response) -> str:
    match = CSRF_RE.search(response.text)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(testapp, username, password=PASSWORD, *, follow=True):
    page = testapp.get("/login")
    response = testapp.post("/login", {"username": username, "password": password,
                                       "csrf_token": csrf_from(page)})
    return response


def post(testapp, url, data=None, *, form_url=None, status=None):
    """POST ``data`` to ``url`` with a CSRF token taken from ``form_url``
    (default: ``url`` itself), as a browser submitting the form would."""
    page = testapp.get(form_url or url)
    payload = dict(data or {})
    payload["csrf_token"] = csrf_from(page)
    return testapp.post(url, payload, status=status)
