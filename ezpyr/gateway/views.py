"""The gateway public key page and its download (admins only). The private
key never leaves the database except to the gateway shell."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response
from pyramid.view import view_config

from ezpyr.gateway.services import GatewayKeyService

MISSING = ("There is no gateway key yet. Run ezpyr-init with this node's configuration file "
           "(e.g. ezpyr-init development.ini): it creates the key pair and changes nothing else "
           "that already exists.")


def _current(request):
    return GatewayKeyService(request.dbsession, request.secret_box).current()


@view_config(route_name="gateway.key", renderer="gateway/key.jinja2", permission="admin")
def gateway_key(request):
    return {"key": _current(request), "missing": MISSING}


@view_config(route_name="gateway.key_download", permission="admin")
def download_key(request):
    key = _current(request)
    if key is None:
        raise HTTPNotFound(MISSING)
    response = Response(body=(key.public_key.strip() + "\n").encode("ascii"),
                        content_type="text/plain", charset="us-ascii")
    response.content_disposition = 'attachment; filename="ezpyr-gateway.pub"'
    return response
