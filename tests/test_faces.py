"""The three faces (panel, API, ezpyr-admin) offer the same admin actions:
each action a service records in the activity log is offered by every face,
unless ``ezpyr.faces.ONE_FACE`` says why not; and no face writes an activity
entry itself (the services do)."""
from __future__ import annotations

import ast
from pathlib import Path

from ezpyr.faces import API, CLI, OFFERED, ONE_FACE, PANEL

PACKAGE = Path(__file__).resolve().parents[1] / "ezpyr"


def self_activity(node) -> bool:
    """``self.activity``: a service's activity log."""
    return (isinstance(node, ast.Attribute) and node.attr == "activity"
            and isinstance(node.value, ast.Name) and node.value.id == "self")


def activity_log(node) -> bool:
    """``ActivityLog(...)``: a job writing its entry in a session of its own."""
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ActivityLog"


def recorded_by_services() -> dict[str, str]:
    """Each action name a service (``self.activity.record``) or a job
    (``ActivityLog(...).record``) records, with where."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "record"
                    and (self_activity(node.func.value) or activity_log(node.func.value))
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.setdefault(node.args[0].value, f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def all_faces_loaded(wsgi_app) -> None:
    """The panel's views (scanned by the app), the API's endpoints and the
    command lines' parsers have all declared what they offer."""
    from ezpyr.scripts import accounts, admin, cluster
    for command_line in (admin, cluster, accounts):
        command_line.build_parser()


def test_every_action_is_offered_by_every_face(wsgi_app):
    all_faces_loaded(wsgi_app)
    actions = set(recorded_by_services()) | OFFERED[PANEL] | OFFERED[API] | OFFERED[CLI]
    missing = sorted(f"{action}: not offered by {face}" for action in actions if action not in ONE_FACE
                     for face in (PANEL, API, CLI) if action not in OFFERED[face])
    assert missing == []


def test_what_a_face_offers_is_recorded_by_a_service(wsgi_app):
    """A face's ``does`` names an action some service records (no typo, no
    action that only a view writes)."""
    all_faces_loaded(wsgi_app)
    recorded = recorded_by_services()
    offered = OFFERED[PANEL] | OFFERED[API] | OFFERED[CLI]
    assert sorted(offered - set(recorded)) == []


def test_one_face_names_only_actions_that_exist():
    recorded = recorded_by_services()
    assert sorted(set(ONE_FACE) - set(recorded)) == []


def test_the_walk_finds_what_a_service_records(tmp_path):
    found = recorded_by_services()
    assert found["server.create"].startswith("ezpyr/servers/services.py:")


SIGN_IN_EVENTS = {"auth.login", "auth.login_failed", "auth.logout"}  # the panel's own, not admin actions


def test_no_face_writes_an_activity_entry_itself():
    """Pages, endpoints and commands leave the entry to the service; only
    the sign-in page records sign-ins (and the API framework its reads)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if not (path.name in ("views.py", "cli.py", "api.py", "rest.py") or path.name.endswith("_views.py")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "record" and node.args
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value not in SIGN_IN_EVENTS):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.args[0].value}")
    assert found == []
