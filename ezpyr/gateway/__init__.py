def includeme(config):
    config.add_route("gateway.key", "/gateway-key")
    config.add_route("gateway.key_download", "/gateway-key.pub")
