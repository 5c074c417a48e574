"""A job's page: a progress bar while it runs (the page reloads itself, no
JavaScript needed), then its outcome."""
from __future__ import annotations

import json

from pyramid.httpexceptions import HTTPNotFound
from pyramid.view import view_config

from ezpyr.jobs.services import JobService


@view_config(route_name="jobs.view", renderer="jobs/view.jinja2", permission="admin")
def job_view(request):
    job = JobService(request.dbsession).get(request.matchdict["id"])
    if job is None:
        raise HTTPNotFound("No such job.")
    result = json.loads(job.result) if job.result else None
    return {"job": job, "result": result}


@view_config(route_name="jobs.status", renderer="json", permission="admin")
def job_json(request):
    job = JobService(request.dbsession).get(request.matchdict["id"])
    if job is None:
        raise HTTPNotFound("No such job.")
    return {"id": job.id, "kind": job.kind, "state": job.state, "done": job.done,
            "total": job.total, "percent": job.percent, "message": job.message,
            "seconds_left": job.seconds_left(), "refused": job.refused,
            "error": job.error, "result": json.loads(job.result) if job.result else None}
