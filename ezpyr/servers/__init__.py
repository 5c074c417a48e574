def includeme(config):
    config.add_route("servers.list", "/servers")
    config.add_route("servers.new", "/servers/new")
    config.add_route("servers.export", "/servers/export.csv")
    config.add_route("servers.import", "/servers/import")
    config.add_route("servers.edit", "/servers/{id}/edit")
    config.add_route("servers.delete", "/servers/{id}/delete")

    config.add_route("server_groups.list", "/server-groups")
    config.add_route("server_groups.new", "/server-groups/new")
    config.add_route("server_groups.edit", "/server-groups/{id}/edit")
    config.add_route("server_groups.delete", "/server-groups/{id}/delete")
