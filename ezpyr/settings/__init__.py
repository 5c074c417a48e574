def includeme(config):
    config.add_route("settings.edit", "/settings")
