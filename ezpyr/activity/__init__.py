from ezpyr.activity.services import RequestActivity


def includeme(config):
    config.add_request_method(RequestActivity, "activity", reify=True)
    config.add_route("activity.list", "/activity")
    config.add_route("activity.export", "/activity.csv")
