def activity(request):
    """``request.activity``: the activity log on behalf of the request's user
    (or API token) and address; the same as ``request.services.activity``."""
    return request.services.activity


def includeme(config):
    config.add_request_method(activity, property=True)
    config.add_route("activity.list", "/activity")
    config.add_route("activity.export", "/activity.csv")
