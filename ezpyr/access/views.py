"""Pages for access rules (admins), effective access (admins) and the
signed-in user's own servers."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ezpyr.access.forms import AccessRuleForm, grouped_choices, subject_of, target_of
from ezpyr.access.services import rule_label
from ezpyr.faces import does
from ezpyr.paging import Page, page_number, search_text
from ezpyr.validation import Invalid


@view_config(route_name="access.list", renderer="access/list.jinja2", permission="admin")
def list_rules(request):
    service = request.services.access
    q = search_text(request)
    page = Page(request.dbsession, service.search(q), page_number(request))
    return {"page": page, "q": q}


@does("access.create")
@view_config(route_name="access.new", renderer="access/form.jinja2", permission="admin")
def new_rule(request):
    service = request.services.access
    form = AccessRuleForm.from_request(request)
    form.subject.choices = grouped_choices("— a user group or a user —", service.subject_choices())
    form.target.choices = grouped_choices("— a server group or a server —", service.target_choices())
    if request.method == "POST" and form.validate():
        try:
            rule = service.create(subject_of(form.subject.data), target_of(form.target.data))
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"Access rule added: {rule_label(rule)}.", "success")
            return HTTPSeeOther(request.route_url("access.list"))
    return {"form": form}


@does("access.delete")
@view_config(route_name="access.delete", renderer="access/delete.jinja2", permission="admin")
def delete_rule(request):
    service = request.services.access
    rule = service.get(request.matchdict["id"])
    if rule is None:
        raise HTTPNotFound("No such access rule.")
    label = rule_label(rule)
    if request.method == "POST":
        service.delete(rule)
        request.session.flash(f"Access rule removed: {label}.", "success")
        return HTTPSeeOther(request.route_url("access.list"))
    return {"rule": rule, "label": label}


@view_config(route_name="access.effective", renderer="access/effective.jinja2", permission="admin")
def effective_access(request):
    service = request.services.access
    asked = request.params.get("user", "").strip()
    user = service.find_user(asked) if asked else None
    error = ""
    if asked and user is None:
        error = f"No user is named {asked!r}; pick one from the list."
    reaches = service.effective_access(user) if user is not None else []
    return {"asked": asked, "user": user, "error": error, "usernames": service.usernames(),
            "reaches": reaches}


@view_config(route_name="profile.servers", renderer="profile/servers.jinja2", permission="user")
def my_servers(request):
    q = search_text(request)
    user = request.authenticated_user
    reaches = request.services.access.effective_access(user, q)
    return {"q": q, "user": user, "reaches": reaches}
