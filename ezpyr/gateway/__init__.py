def includeme(config):
    config.add_route("gateway.key", "/gateway-key")
    config.add_route("gateway.key_download", "/gateway-key.pub")
    config.add_route("gateway.sessions", "/sessions")
    config.add_route("gateway.session_cast", "/sessions/{id}.cast")
    config.add_route("gateway.session", "/sessions/{id}")
    config.add_route("gateway.session_terminate", "/sessions/{id}/terminate")
    config.add_route("gateway.host_key_reset", "/servers/{id}/host-key/reset")
