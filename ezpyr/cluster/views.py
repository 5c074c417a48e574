"""The cluster page (Settings → Cluster) and its buttons: faces over
``ClusterActions`` (request.cluster_actions)."""
from __future__ import annotations

import json

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ezpyr.jobs.services import Launch
from ezpyr.cluster.forms import AddForm
from ezpyr.cluster.reconcile import row_label, shown_value
from ezpyr.cluster.resolve import Plan
from ezpyr.faces import does
from ezpyr.validation import Invalid


def _page(request) -> dict:
    service = request.cluster
    last = request.jobs.latest("verify")
    in_sync = json.loads(last.result).get("in_sync") if last and last.result else None
    return {"state": service.state(), "granted": service.granted(),
            "last_verify": last, "last_verify_in_sync": in_sync}


@view_config(route_name="cluster.view", renderer="cluster/view.jinja2", permission="admin")
def cluster_view(request):
    return {**_page(request), "add_form": AddForm()}


def _set_link(request, change, done: str):
    try:
        change()
    except Invalid as error:
        request.session.flash(error.message, "error")
    else:
        request.session.flash(done, "success")
    return HTTPSeeOther(request.route_url("cluster.view"))


@does("cluster.disconnect")
@view_config(route_name="cluster.disconnect", request_method="POST", permission="admin",
             node_local=True)
def disconnect(request):
    return _set_link(request, request.cluster_actions.disconnect,
                     "Disconnected: this node stops probing the other node and keeps its changes queued.")


@does("cluster.connect")
@view_config(route_name="cluster.connect", request_method="POST", permission="admin",
             node_local=True)
def connect(request):
    return _set_link(request, request.cluster_actions.connect,
                     "Connected: probing resumes and the backlog drains when the other node is up.")


def _refused(request, error: Invalid):
    """An action refused: nothing of this request is committed."""
    request.tm.doom()
    request.session.flash(error.message, "error")
    return HTTPSeeOther(request.route_url("cluster.view"))


def _follow(request, launch: Launch):
    launch.start_after_commit(request.dbsession)
    return HTTPSeeOther(request.route_url("jobs.view", id=launch.job.id))


@does("cluster.verify")
@view_config(route_name="cluster.verify", request_method="POST", permission="admin",
             node_local=True)
def start_verify(request):
    try:
        return _follow(request, request.cluster_actions.verify())
    except Invalid as error:
        return _refused(request, error)


@does("cluster.add")
@view_config(route_name="cluster.add", request_method="POST", renderer="cluster/view.jinja2",
             permission="admin")
def add(request):
    form = AddForm.from_request(request)
    if form.validate():
        try:
            return _follow(request, request.cluster_actions.add(form.address.data, form.setup_key.data))
        except Invalid as error:
            request.tm.doom()
            form.add_error(error)
    return {**_page(request), "add_form": form}


@does("cluster.make_master")
@view_config(route_name="cluster.make_master", request_method="POST", permission="admin",
             node_local=True)
def start_make_master(request):
    try:
        return _follow(request, request.cluster_actions.make_master(
            force=request.POST.get("confirm") == "take-over"))
    except Invalid as error:
        return _refused(request, error)


@does("cluster.resolve")
@view_config(route_name="cluster.resolve", request_method="POST", renderer="cluster/resolve.jinja2",
             permission="admin", node_local=True)
def resolve_split_brain(request):
    """Preview what the choices keep and lose; with confirm=yes, run it."""
    actions = request.cluster_actions
    verify_job = request.matchdict["job"]
    try:
        report = actions.verify_report(verify_job)
        plan = Plan.from_form(request.POST)
        if request.POST.get("confirm") == "yes":
            return _follow(request, actions.resolve(report, plan))
        chosen = actions.resolve_plan(report, plan)
    except Invalid as error:
        request.tm.doom()
        request.session.flash(error.message, "error")
        return HTTPSeeOther(request.route_url("jobs.view", id=verify_job))
    choices = [(k, v) for k, v in request.POST.items() if k != "csrf_token"]
    node, peer = actions.cluster.node(), actions.cluster.peer()
    there = peer.name or peer.address
    lost = [{"label": row_label(item["table"], item["lost"], None, item["id"]),
             "kept": f"{node.name}'s (this node)" if item["kept"] == "here" else f"{there}'s",
             "fields": [(k, shown_value(k, v)) for k, v in item["lost"].items() if k != "id"]}
            for item in chosen.lost]
    return {"job_id": verify_job, "lost": lost, "decided": chosen.decided, "choices": choices,
            "here": node.name, "there": there, "peer": peer}
