"""Pages for command guard rules and the "test a command" box (admins only)."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ezpyr.faces import does
from ezpyr.paging import search_text
from ezpyr.guard.forms import CommandRuleForm, CommandTestForm
from ezpyr.guard.services import rule_label
from ezpyr.validation import Invalid


def _group_choices(request, blank: str) -> list[tuple[str, str]]:
    groups = request.services.user_groups.all()
    return [("", blank)] + [(g.id, g.name) for g in groups]


def _rule_or_404(request, service):
    rule = service.get(request.matchdict["id"])
    if rule is None:
        raise HTTPNotFound("No such command rule.")
    return rule


@view_config(route_name="guard.list", renderer="guard/list.jinja2", permission="admin")
def list_rules(request):
    q = search_text(request)
    groups = request.services.guard.grouped(q)
    return {"groups": groups, "q": q, "count": sum(len(g.rules) for g in groups)}


@does("guard.create")
@view_config(route_name="guard.new", renderer="guard/form.jinja2", permission="admin")
def new_rule(request):
    form = CommandRuleForm.from_request(request, user_group_id=request.GET.get("group", ""))
    form.user_group_id.choices = _group_choices(request, "— choose a user group —")
    if request.method == "POST" and form.validate():
        try:
            rule = request.services.guard.create(
                form.user_group_id.data, form.pattern.data, form.description.data
            )
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(
                f"Command rule {rule.pattern} added to user group {rule.user_group.name}.", "success"
            )
            return HTTPSeeOther(request.route_url("guard.list"))
    return {"form": form, "rule": None}


@does("guard.update")
@view_config(route_name="guard.edit", renderer="guard/form.jinja2", permission="admin")
def edit_rule(request):
    service = request.services.guard
    rule = _rule_or_404(request, service)
    form = CommandRuleForm.from_request(request, obj=rule)
    form.user_group_id.choices = _group_choices(request, "— choose a user group —")
    if request.method == "POST" and form.validate():
        try:
            service.update(rule, form.user_group_id.data, form.pattern.data, form.description.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"Command rule {rule.pattern} saved.", "success")
            return HTTPSeeOther(request.route_url("guard.list"))
    return {"form": form, "rule": rule}


@does("guard.delete")
@view_config(route_name="guard.delete", renderer="guard/delete.jinja2", permission="admin")
def delete_rule(request):
    service = request.services.guard
    rule = _rule_or_404(request, service)
    if request.method == "POST":
        label = rule_label(rule)
        service.delete(rule)
        request.session.flash(f"Command rule removed ({label}).", "success")
        return HTTPSeeOther(request.route_url("guard.list"))
    return {"rule": rule}


@view_config(route_name="guard.test", renderer="guard/test.jinja2", permission="admin")
def test_command(request):
    asked = "command" in request.GET
    form = CommandTestForm(request.GET if asked else None)
    form.user_group_id.choices = _group_choices(request, "— choose a user group —")
    verdict = None
    if asked:
        try:
            verdict = request.services.guard.try_command(
                form.command.data or "",
                user_group_id=form.user_group_id.data,
                username=form.username.data,
            )
        except Invalid as error:
            form.add_error(error)
    return {"form": form, "verdict": verdict}
