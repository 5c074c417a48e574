"""Rows and requests the server tests build."""
from __future__ import annotations

from ezpyr.servers.services import ServerGroupService, ServerInput, ServerService
from tests.factories import csrf_from


def make_server_group(dbsession, name="web", description=""):
    group = ServerGroupService(dbsession).create(name, description)
    dbsession.commit()
    return group


def make_server(dbsession, secret_box, name="web1", **fields):
    fields.setdefault("host", f"{name}.example.net")
    group = fields.pop("group", None)
    server = ServerService(dbsession, secret_box).create(
        ServerInput(name=name, group_id=group.id if group else None, **fields)
    )
    dbsession.commit()
    return server


def server_form(**fields) -> dict:
    """A filled-in server form (a new key-authenticated server)."""
    data = {"name": "web1", "host": "web1.example.net", "port": "22", "remote_user": "root",
            "auth_method": "key", "password": "", "group_id": "", "description": ""}
    data.update(fields)
    return data


def upload(testapp, content, *, filename="servers.csv", status=None):
    """Send ``content`` (str or bytes) as the import form's file."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    page = testapp.get("/servers/import")
    return testapp.post("/servers/import", {"csrf_token": csrf_from(page)},
                        upload_files=[("file", filename, content)], status=status)
