"""Pages for server groups (admins only)."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ezpyr.faces import does
from ezpyr.paging import Page, page_number, search_text
from ezpyr.servers.forms import ServerGroupForm
from ezpyr.servers.services import plural
from ezpyr.validation import Invalid


def _group_or_404(request, service):
    group = service.get(request.matchdict["id"])
    if group is None:
        raise HTTPNotFound("No such server group.")
    return group


@view_config(route_name="server_groups.list", renderer="server_groups/list.jinja2", permission="admin")
def list_groups(request):
    service = request.services.server_groups
    q = search_text(request)
    page = Page(request.dbsession, service.search(q), page_number(request))
    return {"page": page, "q": q, "counts": service.server_counts(page.items)}


@does("server_group.create")
@view_config(route_name="server_groups.new", renderer="server_groups/form.jinja2", permission="admin")
def new_group(request):
    form = ServerGroupForm.from_request(request)
    if request.method == "POST" and form.validate():
        try:
            group = request.services.server_groups.create(form.name.data, form.description.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"Server group {group.name} created.", "success")
            return HTTPSeeOther(request.route_url("server_groups.list"))
    return {"form": form, "group": None}


@does("server_group.update")
@view_config(route_name="server_groups.edit", renderer="server_groups/form.jinja2", permission="admin")
def edit_group(request):
    service = request.services.server_groups
    group = _group_or_404(request, service)
    form = ServerGroupForm.from_request(request, obj=group)
    if request.method == "POST" and form.validate():
        try:
            service.update(group, form.name.data, form.description.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"Server group {group.name} saved.", "success")
            return HTTPSeeOther(request.route_url("server_groups.list"))
    return {"form": form, "group": group}


@does("server_group.delete")
@view_config(route_name="server_groups.delete", renderer="server_groups/delete.jinja2", permission="admin")
def delete_group(request):
    service = request.services.server_groups
    group = _group_or_404(request, service)
    if request.method == "POST":
        name = group.name
        done = service.delete(group)
        details = (f"{plural(done['servers'], 'server')} left without a group, "
                   f"{plural(done['access rules'], 'access rule')} removed")
        request.session.flash(f"Server group {name} deleted: {details}.", "success")
        return HTTPSeeOther(request.route_url("server_groups.list"))
    return {"group": group, "dependants": service.dependants(group)}
