"""What every /api/ path answers when no endpoint does: JSON refusals
(401, 403, 404) and errors (503, 500), never an HTML page."""
from __future__ import annotations

import logging

from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config
from sqlalchemy.exc import DBAPIError

from ezpyr.api.framework import problem_response

log = logging.getLogger("ezpyr.api")
API_PATH = r"^/api/"


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
