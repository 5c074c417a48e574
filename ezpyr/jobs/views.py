"""A job's page: a progress bar while it runs (the page reloads itself, no
JavaScript needed), then its outcome."""
from __future__ import annotations

import json

from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config



@view_config(route_name="jobs.view", renderer="jobs/view.jinja2", permission="admin")
def job_view(request):
    job = request.jobs.get(request.matchdict["id"])
    if job is None:
        raise HTTPNotFound("No such job.")
    result = json.loads(job.result) if job.result else None
    differences = None
    if job.kind == "verify" and result and not result.get("in_sync"):
        differences = differences_page(request, result)
    return {"job": job, "result": result, "differences": differences}


def differences_page(request, result: dict):
    """The differing rows of a Verify, named, filtered (?table=, ?q=) and
    paged (?page=)."""
    from ezpyr.cluster.reconcile import reconciliation

    cluster = request.cluster
    node, peer = cluster.node(), cluster.peer()
    there = (peer.name or peer.address) if peer else "the other node"
    names = {node.id: node.name, **({peer.id: there} if peer else {})}
    try:
        page = int(request.GET.get("page", 1))
    except ValueError:
        page = 1
    return reconciliation(result, here=node.name, there=there, node_names=names,
                          table=request.GET.get("table", "")[:64], text=request.GET.get("q", "")[:200],
                          page=page)


@view_config(route_name="jobs.status", renderer="json", permission="admin")
def job_json(request):
    job = request.jobs.get(request.matchdict["id"])
    if job is None:
        raise HTTPNotFound("No such job.")
    return {"id": job.id, "kind": job.kind, "state": job.state, "done": job.done,
            "total": job.total, "percent": job.percent, "message": job.message,
            "seconds_left": job.seconds_left(), "refused": job.refused,
            "error": job.error, "result": json.loads(job.result) if job.result else None}
