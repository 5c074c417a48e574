def includeme(config):
    config.add_route("guard.list", "/command-guard")
    config.add_route("guard.new", "/command-guard/new")
    config.add_route("guard.test", "/command-guard/test")
    config.add_route("guard.edit", "/command-guard/{id}/edit")
    config.add_route("guard.delete", "/command-guard/{id}/delete")
