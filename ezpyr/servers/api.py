"""The API's servers and server groups: the same services as the panel's
pages and ``ezpyr-admin servers|server-groups``."""
from __future__ import annotations

from pyramid.response import Response
from sqlalchemy import Select, func

from ezpyr.api.framework import PAGED, ApiProblem, body_of, check_if_match, endpoint, page_of, query_text, route
from ezpyr.api.schemas import DeletedOut
from ezpyr.jobs.api import LOCATION, started
from ezpyr.jobs.schemas import JobStartedOut
from ezpyr.servers import csvio
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.servers.schemas import (
    ROW_FIELDS, HostKeyResetOut, ServerGroupIn, ServerGroupOut, ServerGroupPage, ServerGroupPatch, ServerIn, ServerOut,
    ServerPage, ServerPatch,
)
from ezpyr.servers.services import ServerInput, ServerService

SERVERS = route("api.servers", "/servers")
EXPORT = route("api.servers_export", "/servers/export.csv")  # before /servers/{id}, which would match it
IMPORT = route("api.servers_import", "/servers/import")
SERVER = route("api.server", "/servers/{id}")
HOST_KEY_RESET = route("api.server_host_key_reset", "/servers/{id}/host-key/reset")
GROUPS = route("api.server_groups", "/server-groups")
GROUP = route("api.server_group", "/server-groups/{id}")


# -- servers ---------------------------------------------------------------------------------

server_out = ServerOut.of


def server_rows(stmt: Select) -> Select:
    """``stmt`` (servers, filtered and ordered) selecting ServerOut's fields
    as columns, the group's name joined: a list reads plain rows, not ORM
    objects (which cost several times more to load than to answer)."""
    columns = {"has_password": (func.coalesce(Server.password_encrypted, "") != "").label("has_password"),
               "group": ServerGroup.name.label("group")}
    return stmt.with_only_columns(
        *(columns[name] if name in columns else getattr(Server, name) for name in ROW_FIELDS),
        maintain_column_froms=False,
    ).join_from(Server, ServerGroup, Server.group_id == ServerGroup.id, isouter=True)


def _servers(request) -> ServerService:
    return request.services.servers


def _server(request) -> Server:
    server = _servers(request).get(request.matchdict["id"])
    if server is None:
        raise ApiProblem(404, "There is no server with that id.")
    return server


@endpoint(SERVERS, "GET", "List servers (paged by name)", response=ServerPage, query=PAGED, tag="servers")
def list_servers(request):
    return page_of(request, server_rows(_servers(request).search(query_text(request))), (Server.name, Server.id),
                   ServerOut.of_rows, as_rows=True)


@endpoint(SERVERS, "POST", "Create a server", body=ServerIn, response=ServerOut, status=201, write=True,
          etag=True, does="server.create", tag="servers")
def create_server(request):
    data = body_of(request, ServerIn)
    server = _servers(request).create(ServerInput(
        name=data.name, host=data.host, port=data.port, remote_user=data.remote_user,
        auth_method=data.auth_method, password=data.password, group_name=data.group or "",
        description=data.description))
    return server_out(server)


@endpoint(SERVER, "GET", "One server", response=ServerOut, etag=True, tag="servers")
def get_server(request):
    return server_out(_server(request))


@endpoint(SERVER, "PATCH", "Change a server (send If-Match with its ETag to refuse a lost update)",
          body=ServerPatch, response=ServerOut, write=True, etag=True, does="server.update", tag="servers")
def patch_server(request):
    server = _server(request)
    check_if_match(request, server_out(server))
    data = body_of(request, ServerPatch).model_dump(exclude_unset=True)
    current = server_out(server)
    merged = {**current, **{k: v for k, v in data.items() if v is not None}}
    _servers(request).update(server, ServerInput(
        name=merged["name"], host=merged["host"], port=merged["port"], remote_user=merged["remote_user"],
        auth_method=merged["auth_method"], password=data.get("password") or "",
        group_name=merged["group"] or "", description=merged["description"]))
    return server_out(server)


@endpoint(SERVER, "DELETE", "Delete a server (and the access rules naming it)", response=DeletedOut,
          write=True, does="server.delete", tag="servers")
def delete_server(request):
    service = _servers(request)
    server = _server(request)
    check_if_match(request, server_out(server))
    name = server.name
    removed = service.delete(server)
    return {"deleted": name, "removed": removed}


# -- server groups -------------------------------------------------------------------------

def group_out(request, group: ServerGroup) -> dict:
    return groups_out(request, [group])[0]


def groups_out(request, groups: list[ServerGroup]) -> list[dict]:
    """The groups with their server counts, counted in one query."""
    counts = request.services.server_groups.server_counts(groups)
    return [ServerGroupOut.of(g, counts.get(g.id, 0)) for g in groups]


def _group(request) -> ServerGroup:
    group = request.services.server_groups.get(request.matchdict["id"])
    if group is None:
        raise ApiProblem(404, "There is no server group with that id.")
    return group


@endpoint(GROUPS, "GET", "List server groups (paged by name)", response=ServerGroupPage, query=PAGED,
          tag="server groups")
def list_groups(request):
    return page_of(request, request.services.server_groups.search(query_text(request)),
                   (ServerGroup.name, ServerGroup.id), lambda rows: groups_out(request, rows))


@endpoint(GROUPS, "POST", "Create a server group", body=ServerGroupIn, response=ServerGroupOut, status=201,
          write=True, etag=True, does="server_group.create", tag="server groups")
def create_group(request):
    data = body_of(request, ServerGroupIn)
    group = request.services.server_groups.create(data.name, data.description)
    return group_out(request, group)


@endpoint(GROUP, "GET", "One server group", response=ServerGroupOut, etag=True, tag="server groups")
def get_group(request):
    return group_out(request, _group(request))


@endpoint(GROUP, "PATCH", "Change a server group", body=ServerGroupPatch, response=ServerGroupOut, write=True,
          etag=True, does="server_group.update", tag="server groups")
def patch_group(request):
    group = _group(request)
    check_if_match(request, group_out(request, group))
    data = body_of(request, ServerGroupPatch)
    request.services.server_groups.update(
        group, data.name if data.name is not None else group.name,
        data.description if data.description is not None else group.description)
    return group_out(request, group)


@endpoint(GROUP, "DELETE", "Delete a server group (its servers stay, without a group)", response=DeletedOut,
          write=True, does="server_group.delete", tag="server groups")
def delete_group(request):
    group = _group(request)
    check_if_match(request, group_out(request, group))
    name = group.name
    removed = request.services.server_groups.delete(group)
    return {"deleted": name, "removed": removed}



@endpoint(EXPORT, "GET", "Every server as CSV (never a password)", response="text/csv", does="server.export",
          tag="servers")
def export_servers(request):
    text = _servers(request).export_csv()
    return Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8")


@endpoint(HOST_KEY_RESET, "POST", "Forget the server's pinned host key (after a reinstall): the gateway "
          "pins the key the server presents at its next connection", response=HostKeyResetOut, write=True,
          does="servers.host_key_reset", tag="servers")
def reset_host_key(request):
    server = _server(request)
    before = _servers(request).reset_host_key(server)
    return {"server": server.name, "was_pinned": before}


@endpoint(IMPORT, "POST", "Import servers from a CSV file (the body, text/csv; header "
          + ",".join(csvio.COLUMNS) + "[,password]): a job that checks every row, then adds all of them or "
          "none; GET /jobs/{id} follows it (its result: servers added, or the rows' errors)",
          body="text/csv", response=JobStartedOut, status=202, headers=LOCATION, write=True,
          does="server.import", tag="servers")
def import_servers(request):
    data = request.body_file.read(csvio.MAX_BYTES + 1)
    return started(request, request.services.server_imports.start(data, "the request's body"))
