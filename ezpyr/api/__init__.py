"""The REST API under /api/v1: JSON in and out, bearer tokens, the same
services as the panel and ezpyr-admin. Every answer of an /api/ path is
JSON, refusals and errors included."""
from __future__ import annotations


def includeme(config):
    """Routes and views of every endpoint (the JSON error views are in
    ``ezpyr.api.errors``, found by the app's scan). Imported here, not at
    the top: the command line imports the areas' schemas, which live in
    this package, and should not pay for the web parts."""
    from ezpyr.api.framework import API_PREFIX, ENDPOINTS, ROUTES, RateLimiter

    # each area's module declares its endpoints (and their routes)
    import ezpyr.accounts.api  # noqa: F401
    import ezpyr.activity.api  # noqa: F401
    import ezpyr.api.views  # noqa: F401
    import ezpyr.cluster.rest  # noqa: F401
    import ezpyr.gateway.api  # noqa: F401
    import ezpyr.jobs.api  # noqa: F401
    import ezpyr.servers.api  # noqa: F401
    import ezpyr.access.api  # noqa: F401
    import ezpyr.guard.api  # noqa: F401
    import ezpyr.users.api  # noqa: F401
    import ezpyr.settings.api  # noqa: F401

    settings = config.get_settings()
    config.registry["ezpyr.api.limiter"] = RateLimiter(int(settings.get("ezpyr.api.rate_limit", 1200)))
    config.add_route("api.openapi", API_PREFIX + "/openapi.json")
    config.add_route("api.docs", API_PREFIX + "/docs")
    for name, pattern in ROUTES.items():
        config.add_route(name, pattern)
    for spec in ENDPOINTS:
        # a read sent as POST (it has a body: "test a command") changes
        # nothing, so a slave answers it as it answers a GET
        config.add_view(spec.view, route_name=spec.route, request_method=spec.method,
                        permission=spec.permission, require_csrf=False,
                        node_local=spec.node_local or not spec.write)
    config.add_route("tokens.list", "/api-tokens")
    config.add_route("tokens.new", "/api-tokens/new")
    config.add_route("tokens.revoke", "/api-tokens/{id}/revoke")


def bearer_user(request):
    """The owner of the request's bearer token (None: no valid token; the
    reason is kept for the 401 answer)."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        request.environ["ezpyr.api_refusal"] = "send Authorization: Bearer <token>"
        return None
    token, why = request.services.tokens.authenticate(secret.strip())
    if token is None:
        request.environ["ezpyr.api_refusal"] = why
        return None
    request.environ["ezpyr.api_token"] = token
    return token.owner


__all__ = ["bearer_user"]
