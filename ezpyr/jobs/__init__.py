def jobs(request):
    """``request.jobs``: the jobs of this node."""
    return request.services.jobs


def includeme(config):
    """Routes only: nothing is read or written at configuration time. A job
    whose process died is found by whoever looks at the jobs next
    (``JobService.reap``), so a second process building the app never fails
    the jobs another one runs."""
    config.add_request_method(jobs, property=True)
    config.add_route("jobs.status", "/jobs/{id}.json")
    config.add_route("jobs.view", "/jobs/{id}")
