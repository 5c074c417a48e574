def panel_settings(request):
    """``request.panel_settings``: the panel-wide settings, read once per request."""
    return request.services.panel_settings


def includeme(config):
    config.add_request_method(panel_settings, reify=True)
    config.add_route("settings.edit", "/settings")
