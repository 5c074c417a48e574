"""The cluster page's account section: Reset fingerprint on this / the other
node (with confirmation), and Reconcile."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config
from sqlalchemy import select

from ezpyr.accounts.client import NAMES
from ezpyr.accounts.models import TARGETS
from ezpyr.accounts.settings import AccountSettings
from ezpyr.accounts.tasks import targets
from ezpyr.faces import does
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.capture import WRITABLE_ROLES
from ezpyr.validation import Invalid


def _settings(request) -> AccountSettings:
    return AccountSettings.from_settings(request.registry.settings)


def account_summary(request) -> dict:
    """``request.account_summary``: per node, its SSH address, pin and
    tasks, for the cluster page and the users page."""
    settings = _settings(request)
    service = request.services.account_tasks
    counts = service.counts()
    nodes = []
    for target in targets(request.dbsession.connection()):
        pin = service.pin(target)
        nodes.append({"target": target, "name": NAMES[target], "address": settings.address(target),
                      "problem": settings.missing(target), "pin": pin, **counts[target],
                      "last_error": service.last_error(target)})
    role = request.dbsession.scalar(select(NodeIdentity.role))
    return {"nodes": nodes, "user": settings.user, "master": role in WRITABLE_ROLES}


@does("accounts.reset_fingerprint")
@view_config(route_name="accounts.reset_fingerprint", renderer="accounts/reset_fingerprint.jinja2",
             permission="admin")
def reset_fingerprint_view(request):
    target = request.matchdict["node"]
    if target not in TARGETS:
        raise HTTPNotFound("No such node: this or other.")
    actions = request.services.account_actions
    if request.method == "POST":
        presented = request.POST.get("presented", "")
        try:
            actions.reset_fingerprint(target, presented)
        except Invalid as error:
            request.tm.doom()
            request.session.flash(error.message, "error")
            if error.field == "presented":
                return HTTPSeeOther(request.route_url("accounts.reset_fingerprint", node=target))
        else:
            request.session.flash(f"{NAMES[target].capitalize()}: {presented} is pinned now; "
                                  "its waiting account changes go on.", "success")
        return HTTPSeeOther(request.route_url("cluster.view"))
    return {"target": target, "name": NAMES[target], "pin": actions.tasks.pin(target),
            "address": _settings(request).address(target)}


@does("accounts.reconcile")
@view_config(route_name="accounts.reconcile", request_method="POST", permission="admin")
def start_reconcile(request):
    try:
        launch = request.services.account_actions.start_reconcile()
    except Invalid as error:
        request.tm.doom()
        request.session.flash(error.message, "error")
        return HTTPSeeOther(request.route_url("cluster.view"))
    launch.start_after_commit(request.dbsession)
    return HTTPSeeOther(request.route_url("jobs.view", id=launch.job.id))
