"""The cluster page's account section: Reset fingerprint on this / the other
node (with confirmation), and Reconcile."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config
from sqlalchemy import select

from ezpyr.accounts.client import NAMES, NodeUnreachable
from ezpyr.accounts.models import TARGETS
from ezpyr.accounts.runner import reconcile, reset_fingerprint
from ezpyr.accounts.settings import AccountSettings
from ezpyr.accounts.tasks import CHANNEL, targets
from ezpyr.jobs.services import start_after_commit
from ezpyr.node.models import NodeIdentity
from ezpyr.replication.capture import WRITABLE_ROLES
from ezpyr.replication.wake import wake_relay
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


@view_config(route_name="accounts.reset_fingerprint", renderer="accounts/reset_fingerprint.jinja2",
             permission="admin")
def reset_fingerprint_view(request):
    target = request.matchdict["node"]
    if target not in TARGETS:
        raise HTTPNotFound("No such node: this or other.")
    pin = request.services.account_tasks.pin(target)
    if request.method == "POST":
        presented = request.POST.get("presented", "")
        if pin is None or not pin.presented or presented != pin.presented:
            request.session.flash("The fingerprint confirmed is not the one the node presents now: "
                                  "nothing was reset. Look again.", "error")
            return HTTPSeeOther(request.route_url("accounts.reset_fingerprint", node=target))
        try:
            result = reset_fingerprint(request.registry["db_engine"], _settings(request), target, presented)
        except Invalid as error:
            request.session.flash(error.message, "error")
        else:
            request.activity.record("accounts.reset_fingerprint", target,
                                    f"{result['old']} -> {result['new']}")
            node = request.dbsession.scalars(select(NodeIdentity)).first()
            request.tm.get().addAfterCommitHook(
                lambda ok: ok and node and wake_relay(node.id, CHANNEL))
            request.session.flash(f"{NAMES[target].capitalize()}: {presented} is pinned now; "
                                  "its waiting account changes go on.", "success")
        return HTTPSeeOther(request.route_url("cluster.view"))
    return {"target": target, "name": NAMES[target], "pin": pin,
            "address": _settings(request).address(target)}


def reconcile_work(engine, settings: AccountSettings, nodes: list[str]):
    def work(progress):
        reports = []
        for target in nodes:
            try:
                reports.append(reconcile(engine, settings, target, progress=progress))
            except NodeUnreachable as error:
                reports.append({"node": target, "error": str(error)})
        failures = [r.get("error") or "; ".join(r["errors"]) for r in reports
                    if r.get("error") or r.get("errors")]
        if failures:
            raise RuntimeError("; ".join(failures))
        return {"reconcile": reports}
    return work


@view_config(route_name="accounts.reconcile", request_method="POST", permission="admin")
def start_reconcile(request):
    jobs = request.services.jobs
    job = jobs.running("accounts.reconcile")
    nodes = targets(request.dbsession.connection())
    if job is None:  # one already running is followed, not started twice
        job = jobs.create("accounts.reconcile", request.authenticated_user.username,
                          "reconciling system accounts")
        start_after_commit(request.dbsession, job.id,
                           reconcile_work(request.registry["db_engine"], _settings(request), nodes))
        request.activity.record("accounts.reconcile", ", ".join(nodes))
    return HTTPSeeOther(request.route_url("jobs.view", id=job.id))
