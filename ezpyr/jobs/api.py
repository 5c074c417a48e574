"""The API's jobs: an action that runs long (Verify, Add, Make master,
Resolve, Reconcile) answers 202 with its job, which ``GET /jobs/{id}``
reads until it ends, as the panel's job page polls it."""
from __future__ import annotations

import json

from pyramid.response import Response

from ezpyr.api.framework import ROUTES, ApiProblem, endpoint, route
from ezpyr.jobs.schemas import JobOut

JOB = route("api.job", "/jobs/{id}")

# what an endpoint that starts a job declares of its answer's headers
LOCATION = {"Location": "the job's API path: GET it until its state is done or failed"}


def started(request, launch) -> Response:
    """202 with the job (``launch.job``), started once this request's
    transaction has committed."""
    launch.start_after_commit(request.dbsession)
    location = ROUTES[JOB].replace("{id}", launch.job.id)
    body = {"job": JobOut.of(launch.job), "location": location}
    response = Response(json.dumps(body), status=202, content_type="application/json", charset="utf-8")
    response.headers["Location"] = location
    return response


@endpoint(JOB, "GET", "One job: its state, progress and, once done, its result", response=JobOut, tag="jobs")
def get_job(request):
    job = request.services.jobs.get(request.matchdict["id"])
    if job is None:
        raise ApiProblem(404, "There is no job with that id on this node (jobs stay on the node that ran them).")
    return JobOut.of(job)
