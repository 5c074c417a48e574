"""Pages for user groups (admins only)."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ezpyr.faces import does
from ezpyr.paging import Page, page_number, search_text
from ezpyr.users.forms import UserGroupForm
from ezpyr.validation import Invalid


def _group_or_404(request, service):
    group = service.get(request.matchdict["id"])
    if group is None:
        raise HTTPNotFound("No such user group.")
    return group


@view_config(route_name="user_groups.list", renderer="users/groups_list.jinja2", permission="admin")
def list_groups(request):
    service = request.services.user_groups
    q = search_text(request)
    page = Page(request.dbsession, service.search(q), page_number(request))
    return {"page": page, "q": q, "counts": service.member_counts(page.items)}


@does("user_group.create")
@view_config(route_name="user_groups.new", renderer="users/group_form.jinja2", permission="admin")
def new_group(request):
    form = UserGroupForm.from_request(request)
    if request.method == "POST" and form.validate():
        try:
            group = request.services.user_groups.create(form.name.data, form.description.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"User group {group.name} created.", "success")
            return HTTPSeeOther(request.route_url("user_groups.list"))
    return {"form": form, "group": None}


@does("user_group.update")
@view_config(route_name="user_groups.edit", renderer="users/group_form.jinja2", permission="admin")
def edit_group(request):
    service = request.services.user_groups
    group = _group_or_404(request, service)
    form = UserGroupForm.from_request(request, obj=group)
    if request.method == "POST" and form.validate():
        try:
            service.update(group, form.name.data, form.description.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"User group {group.name} saved.", "success")
            return HTTPSeeOther(request.route_url("user_groups.list"))
    return {"form": form, "group": group}


@does("user_group.delete")
@view_config(route_name="user_groups.delete", renderer="users/group_delete.jinja2", permission="admin")
def delete_group(request):
    service = request.services.user_groups
    group = _group_or_404(request, service)
    if request.method == "POST":
        try:
            name = group.name
            service.delete(group)
        except Invalid as error:
            request.session.flash(error.message, "error")
            return HTTPSeeOther(request.route_url("user_groups.list"))
        request.session.flash(f"User group {name} deleted.", "success")
        return HTTPSeeOther(request.route_url("user_groups.list"))
    return {"group": group, "members": service.member_count(group),
            "dependants": service.dependants(group)}
