"""The REST API under /api/v1: JSON in and out, bearer tokens, the same
services as the panel and ezpyr-admin. Every answer of an /api/ path is
JSON, refusals and errors included."""
from __future__ import annotations

import logging

from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config
from sqlalchemy.exc import DBAPIError

from ezpyr.api.framework import API_PREFIX, ENDPOINTS, ROUTES, RateLimiter, is_api, problem_response

log = logging.getLogger(__name__)
API_PATH = r"^/api/"


def includeme(config):
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


@forbidden_view_config(path_info=API_PATH)
def api_forbidden(request):
    if request.authenticated_user is None:
        return problem_response(401, f"Not authenticated: {request.environ.get('ezpyr.api_refusal', 'no token')}.",
                                headers={"WWW-Authenticate": 'Bearer realm="ezpyr"'})
    return problem_response(403, f"{request.authenticated_user.username} may not do this.")


@notfound_view_config(path_info=API_PATH)
def api_not_found(request):
    return problem_response(404, "No such API path (see /api/v1/openapi.json).")


@exception_view_config(DBAPIError, path_info=API_PATH)
def api_database(exc, request):
    from ezpyr.errors import database_unreachable
    if database_unreachable(exc):
        return problem_response(503, "This node's database is unreachable; nothing was changed.",
                                headers={"Retry-After": "30"})
    log.exception("API request failed: %s %s", request.method, request.path_info)
    return problem_response(500, "Internal error; nothing was changed. The node's log has the details.")


@exception_view_config(Exception, path_info=API_PATH)
def api_error(exc, request):
    from pyramid.httpexceptions import HTTPException
    if isinstance(exc, HTTPException):
        return problem_response(exc.code, exc.title)
    log.exception("API request failed: %s %s", request.method, request.path_info)
    return problem_response(500, "Internal error; nothing was changed. The node's log has the details.")


__all__ = ["bearer_user", "is_api"]
