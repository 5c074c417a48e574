"""The API's own endpoints (who am I, the OpenAPI document);
each area declares its endpoints in ``ezpyr/<area>/api.py``."""
from __future__ import annotations

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ezpyr.api.framework import endpoint, route
from ezpyr.api.schemas import MeOut

ME = route("api.me", "/me")


# -- who am I ---------------------------------------------------------------------------------

@endpoint(ME, "GET", "The token's owner and the token", permission="user", response=MeOut, tag="tokens")
def me(request):
    token = request.environ["ezpyr.api_token"]
    user = request.authenticated_user
    return {"username": user.username, "admin": user.is_admin, "token": token.name,
            "read_only": token.read_only, "expires_at": token.expires_at}


@view_config(route_name="api.openapi", request_method="GET", permission=NO_PERMISSION_REQUIRED,
             renderer="json", require_csrf=False)
def openapi(request):
    """The OpenAPI document, made from the endpoints' declarations."""
    from ezpyr.api.openapi import document
    return document(request)


@view_config(route_name="api.docs", request_method="GET", permission=NO_PERMISSION_REQUIRED,
             renderer="api/docs.jinja2")
def docs(request):
    from ezpyr.api.openapi import document
    return {"spec": document(request)}
