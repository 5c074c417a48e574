def jobs(request):
    """``request.jobs``: the jobs of this node."""
    from ezpyr.jobs.services import JobService

    return JobService(request.dbsession)


def includeme(config):
    """Routes only: nothing is read or written at configuration time. A job
    whose process died is found by whoever looks at the jobs next
    (``JobService.reap``), so a second process building the app never fails
    the jobs another one runs."""
    config.add_request_method(jobs, reify=True)
    config.add_route("jobs.status", "/jobs/{id}.json")
    config.add_route("jobs.view", "/jobs/{id}")
