"""The faces (pages, API endpoints, command lines) take their services from
one place, ``ezpyr.services.Services`` (``request.services``,
``Admin.services``, ``NodeEnv.services``), and never construct one: this
walks their source and names every construction it finds."""
from __future__ import annotations

import ast
from functools import cached_property
from pathlib import Path

import pytest

from ezpyr.services import Activity, Actor, Services

PACKAGE = Path(__file__).resolve().parents[1] / "ezpyr"
# what Services makes (and the activity log it binds to an actor)
MADE_BY_SERVICES = {
    "AccessService", "AccountActions", "AccountTaskService", "ActivityLog", "AuthService", "ClusterActions",
    "ClusterService", "GatewayKeyService", "GuardService", "HomeService", "JobService", "ServerGroupService",
    "ServerLookup", "ServerService", "SessionLog", "SettingsService", "SetupService", "TokenService", "TotpService",
    "UserGroupService", "UserKeyService", "UserService",
}
# first-run setup makes the node before any service can be looked up
BEFORE_SERVICES = {"ezpyr/scripts/init.py"}


def faces(package: Path = PACKAGE) -> list[Path]:
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).as_posix()
        if relative in BEFORE_SERVICES:
            continue
        if (path.name in ("views.py", "cli.py", "api.py", "rest.py") or path.name.endswith("_views.py")
                or path.parent.name in ("scripts", "api")):
            found.append(path)
    return found


def constructions(path: Path, package: Path = PACKAGE) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in MADE_BY_SERVICES:
                found.append(f"{path.relative_to(package.parent)}:{node.lineno} {name}(...)")
    return found


def test_the_walk_sees_the_faces():
    names = {p.relative_to(PACKAGE.parent).as_posix() for p in faces()}
    for expected in ("ezpyr/users/views.py", "ezpyr/users/cli.py", "ezpyr/api/views.py",
                     "ezpyr/scripts/admin.py", "ezpyr/scripts/cluster.py", "ezpyr/cluster/api.py",
                     "ezpyr/cluster/rest.py"):
        assert expected in names


def test_no_face_constructs_a_service():
    found = [hit for path in faces() for hit in constructions(path)]
    assert found == [], "use request.services / a.services / env.services(s) instead:\n" + "\n".join(found)


def test_the_walk_finds_a_construction(tmp_path):
    """The check itself can fail: a face that makes its own service is named."""
    package = tmp_path / "ezpyr"
    (package / "users").mkdir(parents=True)
    face = package / "users" / "group_views.py"
    face.write_text("def v(request):\n    return UserGroupService(request.dbsession).all()\n")
    (package / "users" / "models.py").write_text("x = UserGroupService(None)\n")  # not a face
    assert faces(package) == [face]
    assert [hit.split(" ")[1] for hit in constructions(face, package)] == ["UserGroupService(...)"]


@pytest.mark.parametrize("name", sorted(n for n, v in vars(Services).items() if isinstance(v, cached_property)))
def test_every_service_is_made_once_per_unit_of_work(dbsession, name):
    services = Services(dbsession, settings={"ezpyr.node_name": "n1", "ezpyr.argon2.time_cost": "1",
                                              "ezpyr.argon2.memory_cost": "1024",
                                              "ezpyr.argon2.parallelism": "1"},
                        actor=Actor.cli(), secret_box=lambda: None)
    assert getattr(services, name) is getattr(services, name)


def test_the_activity_names_the_actor_and_the_way_it_came(dbsession):
    from ezpyr.activity.models import ActivityEntry
    from ezpyr.activity.services import ActivityLog

    actor = Actor(username="alice", remote_addr="192.0.2.7", via="via API token sync")
    Activity(ActivityLog(dbsession, "n1"), lambda: actor).record("server.create", "web1", "port 22")
    entry = dbsession.query(ActivityEntry).one()
    assert (entry.username, entry.remote_addr, entry.details, entry.node_name) == (
        "alice", "192.0.2.7", "port 22; via API token sync", "n1")


def test_a_request_reads_the_panel_settings_once(admin_app, engine):
    """Creating a user checks the password policy, reads the 2FA rule and
    renders the layout: all from one reading of the settings row."""
    from sqlalchemy import event

    from tests.factories import csrf_from

    token = csrf_from(admin_app.get("/users/new"))
    reads = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and " settings" in statement.replace("\n", " "):
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        res = admin_app.post("/users/new", {"csrf_token": token, "username": "carol", "role": "user",
                                            "password": "Carol-pass-1234", "confirm": "Carol-pass-1234"})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert res.status_int in (302, 303), res.text[:500]
    assert len(reads) == 1, reads
