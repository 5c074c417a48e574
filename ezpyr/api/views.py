"""The API's endpoints: the same services as the panel and ezpyr-admin."""
from __future__ import annotations

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import and_, func, or_, select

from ezpyr.api.framework import (
    ApiProblem, body_of, check_if_match, cursor_of, encode_cursor, endpoint, limit_of, query_text, record, route,
)
from ezpyr.api.schemas import (
    ClusterOut, DeletedOut, MeOut, ServerGroupIn, ServerGroupOut, ServerGroupPage, ServerGroupPatch, ServerIn,
    ServerOut, ServerPage, ServerPatch,
)
from ezpyr.servers.models import Server, ServerGroup
from ezpyr.servers.services import ServerInput, ServerService

ME = route("api.me", "/me")
CLUSTER = route("api.cluster", "/cluster")
SERVERS = route("api.servers", "/servers")
SERVER = route("api.server", "/servers/{id}")
GROUPS = route("api.server_groups", "/server-groups")
GROUP = route("api.server_group", "/server-groups/{id}")

PAGED = {"limit": ({"type": "integer", "minimum": 1, "maximum": 500}, "items per page (default 100)"),
         "cursor": ({"type": "string"}, "next_cursor of the previous page"),
         "q": ({"type": "string", "maxLength": 200}, "search in names, hosts and descriptions")}


# -- who am I ---------------------------------------------------------------------------------

@endpoint(ME, "GET", "The token's owner and the token", permission="user", response=MeOut, tag="tokens")
def me(request):
    token = request.environ["ezpyr.api_token"]
    user = request.authenticated_user
    return {"username": user.username, "admin": user.is_admin, "token": token.name,
            "read_only": token.read_only, "expires_at": token.expires_at}


@endpoint(CLUSTER, "GET", "This node's cluster status", response=ClusterOut, tag="cluster")
def cluster(request):
    state = request.services.cluster.state().as_dict()
    return {key: state.get(key) for key in ClusterOut.model_fields}


# -- servers ---------------------------------------------------------------------------------

def server_out(server: Server) -> dict:
    return ServerOut(id=server.id, name=server.name, host=server.host, port=server.port,
                     remote_user=server.remote_user, auth_method=server.auth_method,
                     has_password=bool(server.password_encrypted),
                     group=server.group.name if server.group else None, description=server.description,
                     created_at=server.created_at, updated_at=server.updated_at).model_dump(mode="json")


def _servers(request) -> ServerService:
    return request.services.servers


def _server(request) -> Server:
    server = _servers(request).get(request.matchdict["id"])
    if server is None:
        raise ApiProblem(404, "There is no server with that id.")
    return server


@endpoint(SERVERS, "GET", "List servers (paged by name)", response=ServerPage, query=PAGED, tag="servers")
def list_servers(request):
    limit = limit_of(request)
    after = cursor_of(request, 2)
    stmt = _servers(request).search(query_text(request)).order_by(None).order_by(Server.name, Server.id)
    if after is not None:
        stmt = stmt.where(or_(Server.name > after[0], and_(Server.name == after[0], Server.id > after[1])))
    rows = list(request.dbsession.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [server_out(s) for s in rows],
            "next_cursor": encode_cursor([rows[-1].name, rows[-1].id]) if more else None}


@endpoint(SERVERS, "POST", "Create a server", body=ServerIn, response=ServerOut, status=201, write=True,
          etag=True, tag="servers")
def create_server(request):
    data = body_of(request, ServerIn)
    server = _servers(request).create(ServerInput(
        name=data.name, host=data.host, port=data.port, remote_user=data.remote_user,
        auth_method=data.auth_method, password=data.password, group_name=data.group or "",
        description=data.description))
    record(request, "server.create", server.name)
    return server_out(server)


@endpoint(SERVER, "GET", "One server", response=ServerOut, etag=True, tag="servers")
def get_server(request):
    return server_out(_server(request))


@endpoint(SERVER, "PATCH", "Change a server (send If-Match with its ETag to refuse a lost update)",
          body=ServerPatch, response=ServerOut, write=True, etag=True, tag="servers")
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
    record(request, "server.update", server.name)
    return server_out(server)


@endpoint(SERVER, "DELETE", "Delete a server (and the access rules naming it)", response=DeletedOut,
          write=True, tag="servers")
def delete_server(request):
    service = _servers(request)
    server = _server(request)
    check_if_match(request, server_out(server))
    removed = service.dependants(server)
    name = server.name
    service.delete(server)
    record(request, "server.delete", name, f"{removed['access rules']} access rules")
    return {"deleted": name, "removed": removed}


# -- server groups -------------------------------------------------------------------------

def group_out(request, group: ServerGroup) -> dict:
    count = request.dbsession.scalar(select(func.count()).select_from(Server).where(Server.group_id == group.id))
    return ServerGroupOut(id=group.id, name=group.name, description=group.description,
                          servers=count).model_dump(mode="json")


def _group(request) -> ServerGroup:
    group = request.services.server_groups.get(request.matchdict["id"])
    if group is None:
        raise ApiProblem(404, "There is no server group with that id.")
    return group


@endpoint(GROUPS, "GET", "List server groups (paged by name)", response=ServerGroupPage, query=PAGED,
          tag="server groups")
def list_groups(request):
    limit = limit_of(request)
    after = cursor_of(request, 2)
    stmt = request.services.server_groups.search(query_text(request)).order_by(None).order_by(
        ServerGroup.name, ServerGroup.id)
    if after is not None:
        stmt = stmt.where(or_(ServerGroup.name > after[0],
                              and_(ServerGroup.name == after[0], ServerGroup.id > after[1])))
    rows = list(request.dbsession.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [group_out(request, g) for g in rows],
            "next_cursor": encode_cursor([rows[-1].name, rows[-1].id]) if more else None}


@endpoint(GROUPS, "POST", "Create a server group", body=ServerGroupIn, response=ServerGroupOut, status=201,
          write=True, etag=True, tag="server groups")
def create_group(request):
    data = body_of(request, ServerGroupIn)
    group = request.services.server_groups.create(data.name, data.description)
    record(request, "server_group.create", group.name)
    return group_out(request, group)


@endpoint(GROUP, "GET", "One server group", response=ServerGroupOut, etag=True, tag="server groups")
def get_group(request):
    return group_out(request, _group(request))


@endpoint(GROUP, "PATCH", "Change a server group", body=ServerGroupPatch, response=ServerGroupOut, write=True,
          etag=True, tag="server groups")
def patch_group(request):
    group = _group(request)
    check_if_match(request, group_out(request, group))
    data = body_of(request, ServerGroupPatch)
    request.services.server_groups.update(
        group, data.name if data.name is not None else group.name,
        data.description if data.description is not None else group.description)
    record(request, "server_group.update", group.name)
    return group_out(request, group)


@endpoint(GROUP, "DELETE", "Delete a server group (its servers stay, without a group)", response=DeletedOut,
          write=True, tag="server groups")
def delete_group(request):
    group = _group(request)
    check_if_match(request, group_out(request, group))
    name = group.name
    removed = request.services.server_groups.delete(group)
    record(request, "server_group.delete", name)
    return {"deleted": name, "removed": removed}


@view_config(route_name="api.openapi", request_method="GET", permission=NO_PERMISSION_REQUIRED,
             renderer="json", require_csrf=False)
def openapi(request):
    """The OpenAPI document, made from the endpoints' declarations."""
    from ezpyr.api.openapi import document
    return document(request)


@view_config(route_name="api.docs", request_method="GET", permission=NO_PERMISSION_REQUIRED,
             renderer="api/docs.jinja2")
def docs(request):
    from ezpyr.api.openapi import document
    return {"spec": document(request)}
