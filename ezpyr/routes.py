"""Routes the whole app shares; each domain adds its own in its includeme."""


def includeme(config):
    config.add_static_view("static", "ezpyr:static", cache_max_age=3600)
    config.add_route("home", "/")
