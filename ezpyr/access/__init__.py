def includeme(config):
    config.add_route("access.list", "/access")
    config.add_route("access.new", "/access/new")
    config.add_route("access.effective", "/access/effective")
    config.add_route("access.delete", "/access/{id}/delete")
