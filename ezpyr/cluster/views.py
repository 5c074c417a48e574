"""The cluster page (Settings → Cluster) and its buttons."""
from __future__ import annotations

import json

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ezpyr.cluster.add import add_secondary, check_address
from ezpyr.cluster.client import ClusterClient, PeerTls, RemotePeer, address_host
from ezpyr.cluster.forms import AddForm
from ezpyr.cluster.resolve import Plan, decide, losses, resolve, unique_clashes
from ezpyr.cluster.roles import TakeoverNeedsConfirmation, make_master
from ezpyr.cluster.services import ClusterService
from ezpyr.jobs.services import JobService, after_commit_start
from ezpyr.replication.verify import chunk_rows_setting, timeout_setting, verify
from ezpyr.validation import Invalid


@view_config(route_name="cluster.view", renderer="cluster/view.jinja2", permission="admin")
def cluster_view(request):
    service = ClusterService(request.dbsession)
    jobs = JobService(request.dbsession)
    last = jobs.latest("verify")
    in_sync = json.loads(last.result).get("in_sync") if last and last.result else None
    return {"state": service.state(), "granted": service.granted(),
            "last_verify": last, "last_verify_in_sync": in_sync, "add_form": AddForm()}


def _set_link(request, link: str, verb: str):
    try:
        peer = ClusterService(request.dbsession).set_link(link)
    except Invalid as error:
        request.session.flash(error.message, "error")
    else:
        request.activity.record(f"cluster.{verb}", peer.address)
        request.session.flash(
            "Disconnected: this node stops probing the other node and keeps its changes queued."
            if link == "disconnected" else
            "Connected: probing resumes and the backlog drains when the other node is up.",
            "success")
    return HTTPSeeOther(request.route_url("cluster.view"))


@view_config(route_name="cluster.disconnect", request_method="POST", permission="admin",
             node_local=True)
def disconnect(request):
    return _set_link(request, "disconnected", "disconnect")


@view_config(route_name="cluster.connect", request_method="POST", permission="admin",
             node_local=True)
def connect(request):
    return _set_link(request, "connected", "connect")


def verify_work(engine, client, settings, split_brain=False):
    """The job: compare every replicated table with the peer's (during a
    split-brain, with the change that made each differing row); progress
    counts this node's rows compared."""
    def work(progress):
        progress(0, 1, "comparing tables with the other node")
        with engine.connect() as conn:
            reports = verify(conn, RemotePeer(client, timeout_setting(settings)),
                             with_provenance=split_brain, progress=progress,
                             chunk_rows=chunk_rows_setting(settings))
        return {"in_sync": all(r.in_sync for r in reports),
                "tables": [r.as_dict() for r in reports]}
    return work


@view_config(route_name="cluster.verify", request_method="POST", permission="admin",
             node_local=True)
def start_verify(request):
    service = ClusterService(request.dbsession)
    peer = service.peer()
    if peer is None:
        request.session.flash("No other node is configured: there is nothing to verify against.", "error")
        return HTTPSeeOther(request.route_url("cluster.view"))
    jobs = JobService(request.dbsession)
    job = jobs.running("verify")
    if job is None:
        client = ClusterClient(peer.address, service.node().id,
                               request.secret_box.decrypt(peer.secret_encrypted),
                               tls=PeerTls.from_settings(request.registry.settings))
        job = jobs.create("verify", request.authenticated_user.username,
                          f"verify against {peer.address}")
        after_commit_start(request, job.id, verify_work(request.registry["db_engine"], client,
                                                        request.registry.settings,
                                                        bool(peer.split_brain_since)))
        request.activity.record("cluster.verify", peer.address)
    return HTTPSeeOther(request.route_url("jobs.view", id=job.id))


def add_work(engine, secret_box, settings, address, setup_key):
    def work(progress):
        return add_secondary(engine, secret_box, settings, address, setup_key, progress)
    return work


@view_config(route_name="cluster.add", request_method="POST", renderer="cluster/view.jinja2",
             permission="admin")
def add(request):
    form = AddForm.from_request(request)
    service = ClusterService(request.dbsession)
    if form.validate():
        try:
            address = check_address(form.address.data)
            jobs = JobService(request.dbsession)
            if jobs.running("add"):
                raise Invalid("An Add is already running.")
            if service.peer() is not None:
                raise Invalid("This node already has another node; a cluster has two.")
            host = address_host(address)
            if not service.is_granted(host):
                raise Invalid(f"{host} is not granted: run ezpyr-grant-host CONFIG {host} on this "
                              "node first.", "address")
        except Invalid as error:
            form.add_error(error)
        else:
            job = jobs.create("add", request.authenticated_user.username,
                              f"add the secondary at {address}")
            after_commit_start(request, job.id, add_work(
                request.registry["db_engine"], request.secret_box, request.registry.settings,
                address, form.setup_key.data))
            request.activity.record("cluster.add", address)
            return HTTPSeeOther(request.route_url("jobs.view", id=job.id))
    return {"state": service.state(), "granted": service.granted(), "last_verify": None,
            "last_verify_in_sync": None, "add_form": form}


def make_master_work(engine, secret_box, force, tls=None):
    def work(progress):
        try:
            return make_master(engine, secret_box, force=force, progress=progress, tls=tls)
        except TakeoverNeedsConfirmation as warning:
            return {"needs_confirmation": True, "warning": warning.message, "reason": warning.reason}
    return work


@view_config(route_name="cluster.make_master", request_method="POST", permission="admin",
             node_local=True)
def start_make_master(request):
    service = ClusterService(request.dbsession)
    node, peer = service.node(), service.peer()
    if peer is None or node.role != "slave":
        request.session.flash(f"This node is {node.role}; Make master is for the slave.", "error")
        return HTTPSeeOther(request.route_url("cluster.view"))
    force = request.POST.get("confirm") == "take-over"
    jobs = JobService(request.dbsession)
    job = jobs.running("make-master") or jobs.create(
        "make-master", request.authenticated_user.username,
        "forced takeover" if force else f"switch over from the master at {peer.address}")
    if job.state == "queued" and not job.done:
        after_commit_start(request, job.id, make_master_work(
            request.registry["db_engine"], request.secret_box, force,
            PeerTls.from_settings(request.registry.settings)))
        request.activity.record("cluster.make_master", peer.address, "forced" if force else "graceful")
    return HTTPSeeOther(request.route_url("jobs.view", id=job.id))


def _verify_report(request):
    job = JobService(request.dbsession).get(request.matchdict["job"])
    if job is None or job.kind != "verify" or job.state != "done":
        raise HTTPNotFound("No such verify result.")
    return job, json.loads(job.result)


@view_config(route_name="cluster.resolve", request_method="POST", renderer="cluster/resolve.jinja2",
             permission="admin", node_local=True)
def resolve_split_brain(request):
    """Preview what the choices keep and lose; with confirm=yes, run it."""
    job, report = _verify_report(request)
    service = ClusterService(request.dbsession)
    try:
        plan = Plan.from_form(request.POST)
        decisions = decide(report, plan)
        clashes = unique_clashes(request.dbsession.connection(), decisions)
        if clashes:
            raise Invalid("These choices would leave two rows with one name: " + "; ".join(clashes))
    except Invalid as error:
        request.session.flash(error.message, "error")
        return HTTPSeeOther(request.route_url("jobs.view", id=job.id))
    if request.POST.get("confirm") != "yes":
        choices = [(k, v) for k, v in request.POST.items() if k != "csrf_token"]
        return {"job": job, "lost": losses(decisions), "decided": len(decisions), "choices": choices,
                "peer": service.peer()}
    resolve_job = JobService(request.dbsession).create(
        "resolve", request.authenticated_user.username, "resolve the split-brain")
    engine, box, settings = request.registry["db_engine"], request.secret_box, request.registry.settings
    actor = request.authenticated_user.username
    after_commit_start(request, resolve_job.id,
                       lambda progress: resolve(engine, box, settings, report, plan, actor, progress))
    request.activity.record("cluster.resolve", service.peer().address,
                            f"{len(decisions)} rows decided, {len(losses(decisions))} versions dropped")
    return HTTPSeeOther(request.route_url("jobs.view", id=resolve_job.id))
