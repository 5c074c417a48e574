def request_totp(request):
    """``request.totp``: the same as ``request.services.totp``."""
    return request.services.totp


def includeme(config):
    config.add_route("auth.login", "/login")
    config.add_route("auth.totp", "/login/2fa")
    config.add_route("auth.logout", "/logout")
    config.add_route("profile.totp", "/profile/2fa")
    config.add_route("profile.totp_disable", "/profile/2fa/disable")

    config.add_request_method(request_totp, "totp", property=True)
