from ezpyr.auth.totp import TotpService, UsedSteps


def totp(request) -> TotpService:
    return TotpService(request.dbsession, request.secret_box, UsedSteps(request.dbsession))


def includeme(config):
    config.add_route("auth.login", "/login")
    config.add_route("auth.totp", "/login/2fa")
    config.add_route("auth.logout", "/logout")
    config.add_route("profile.totp", "/profile/2fa")
    config.add_route("profile.totp_disable", "/profile/2fa/disable")

    config.add_request_method(totp, "totp", reify=True)
