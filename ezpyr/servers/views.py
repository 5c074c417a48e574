"""Pages for servers, and their CSV import and export (admins only)."""
from __future__ import annotations

import re

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config
from wtforms.fields.choices import SelectChoice

from ezpyr.faces import does
from ezpyr.gateway.services import pinned_fingerprint
from ezpyr.meta import utcnow
from ezpyr.paging import Page, page_number, search_text
from ezpyr.servers import csvio, imports
from ezpyr.servers.forms import ServerForm
from ezpyr.servers.services import NO_GROUP, InvalidServer, ServerInput, ServerService, plural
from ezpyr.validation import CONTROL_RE, Invalid


def _service(request) -> ServerService:
    return request.services.servers


def _server_or_404(request, service):
    server = service.get(request.matchdict["id"])
    if server is None:
        raise HTTPNotFound("No such server.")
    return server


def _group_choices(request) -> list[SelectChoice]:
    groups = request.services.server_groups.all()
    return [SelectChoice("", "— no group —")] + [SelectChoice(g.id, g.name) for g in groups]


def _input(form: ServerForm) -> ServerInput:
    return ServerInput(
        name=form.name.data, host=form.host.data, port=form.port.data,
        remote_user=form.remote_user.data, auth_method=form.auth_method.data,
        password=form.password.data or "", group_id=form.group_id.data or None,
        description=form.description.data,
    )


def _show_errors(form: ServerForm, error: InvalidServer) -> None:
    for each in error.errors:
        form.add_error(each)


@view_config(route_name="servers.list", renderer="servers/list.jinja2", permission="admin")
def list_servers(request):
    q = search_text(request)
    group = request.params.get("group", "").strip()
    page = Page(request.dbsession, _service(request).search(q, group or None), page_number(request))
    query = {k: v for k, v in (("q", q), ("group", group)) if v}
    return {"page": page, "q": q, "group": group, "query": query, "no_group": NO_GROUP,
            "groups": request.services.server_groups.all()}


@does("server.create")
@view_config(route_name="servers.new", renderer="servers/form.jinja2", permission="admin")
def new_server(request):
    form = ServerForm.from_request(request)
    form.group_id.choices = _group_choices(request)
    if request.method == "POST" and form.validate():
        try:
            server = _service(request).create(_input(form))
        except InvalidServer as error:
            _show_errors(form, error)
        else:
            request.session.flash(f"Server {server.name} created.", "success")
            return HTTPSeeOther(request.route_url("servers.list"))
    return {"form": form, "server": None}


@does("server.update")
@view_config(route_name="servers.edit", renderer="servers/form.jinja2", permission="admin")
def edit_server(request):
    service = _service(request)
    server = _server_or_404(request, service)
    form = ServerForm.from_request(request, obj=server)
    form.group_id.choices = _group_choices(request)
    if request.method != "POST":
        form.group_id.data = server.group_id or ""
    if request.method == "POST" and form.validate():
        try:
            service.update(server, _input(form))
        except InvalidServer as error:
            _show_errors(form, error)
        else:
            request.session.flash(f"Server {server.name} saved.", "success")
            return HTTPSeeOther(request.route_url("servers.list"))
    return {"form": form, "server": server, "host_key_fingerprint": pinned_fingerprint(server)}


@does("server.delete")
@view_config(route_name="servers.delete", renderer="servers/delete.jinja2", permission="admin")
def delete_server(request):
    service = _service(request)
    server = _server_or_404(request, service)
    if request.method == "POST":
        name = server.name
        rules = service.delete(server)["access rules"]
        details = f"{plural(rules, 'access rule')} removed"
        request.session.flash(f"Server {name} deleted: {details}.", "success")
        return HTTPSeeOther(request.route_url("servers.list"))
    return {"server": server, "dependants": service.dependants(server)}


@does("server.export")
@view_config(route_name="servers.export", permission="admin")
def export_servers(request):
    text = request.services.servers.export_csv()
    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.registry.settings.get("ezpyr.node_name", "")) or "node"
    response = Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8")
    response.content_disposition = f'attachment; filename="servers-{node}-{utcnow():%Y%m%d-%H%M%S}.csv"'
    return response


def _source_name(filename) -> str:
    """The uploaded file's name as messages show it: its last part, one
    line, at most 100 characters."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = CONTROL_RE.sub("?", name).strip()[:100]
    return name or "the file"


@does("server.import")
@view_config(route_name="servers.import", renderer="servers/import.jinja2", permission="admin")
def import_servers(request):
    """The upload: the file is checked as far as its first server and
    handed to an import job; the browser follows the job's page."""
    page = {"refused": None, "columns": csvio.COLUMNS, "max_mb": csvio.MAX_BYTES // (1024 * 1024),
            "max_rows": csvio.MAX_ROWS, "running": request.jobs.holding(imports.LOCK)}
    if request.method != "POST":
        return page
    upload = request.POST.get("file")
    if upload is None or not hasattr(upload, "file"):
        page["refused"] = "Choose a CSV file to upload."
        return page
    service = request.services.server_imports
    try:
        launch = service.start(upload.file.read(csvio.MAX_BYTES + 1), _source_name(upload.filename))
    except Invalid as refused:
        request.tm.doom()
        page["refused"] = refused.message
        return page
    launch.start_after_commit(request.dbsession)
    return HTTPSeeOther(request.route_url("jobs.view", id=launch.job.id))
