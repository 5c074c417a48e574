"""The gateway public key page and its download, the Sessions page (this
node's gateway sessions: list, play, download, Terminate) and the reset of
a server's pinned host key (admins only). The private key never leaves the
database except to the gateway service."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.response import FileResponse, Response
from pyramid.view import view_config

from ezpyr.faces import does
from ezpyr.gateway.models import GatewaySession
from ezpyr.gateway.services import pinned_fingerprint
from ezpyr.gateway.sessions import recording_path
from ezpyr.paging import Page, page_number
from ezpyr.servers.models import Server
from ezpyr.validation import Invalid

MISSING = ("There is no gateway key yet. Run ezpyr-init with this node's configuration file "
           "(e.g. ezpyr-init development.ini): it creates the key pair and changes nothing else "
           "that already exists.")


def _current(request):
    return request.services.gateway_keys.current()


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


# -- sessions of the gateway shell (node-local) ---------------------------------------------

SESSIONS_PER_PAGE = 50
STATES = ("live", "ended")


def _session_or_404(request) -> GatewaySession:
    row = request.services.sessions.get(request.matchdict["id"])
    if row is None:
        raise HTTPNotFound("No such session on this node (sessions stay on the node they ran on).")
    return row


def _session_filters(request) -> dict:
    found = {}
    for name in ("username", "server", "state"):
        value = request.params.get(name, "").strip()
        if value and (name != "state" or value in STATES):
            found[name] = value
    return found


@view_config(route_name="gateway.sessions", renderer="gateway/sessions.jinja2", permission="admin")
def list_sessions(request):
    filters = _session_filters(request)
    page = Page(request.dbsession, request.services.sessions.search(**filters),
                page_number(request), per_page=SESSIONS_PER_PAGE)
    return {"page": page, "filters": filters, "states": STATES}


@view_config(route_name="gateway.session", renderer="gateway/session.jinja2", permission="admin")
def show_session(request):
    row = _session_or_404(request)
    # the player's terminal is WebAssembly, which the default policy forbids
    request.response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self' 'wasm-unsafe-eval'; frame-ancestors 'none'; form-action 'self'")
    return {"row": row, "has_recording": recording_path(request.registry.settings, row) is not None}


@view_config(route_name="gateway.session_cast", permission="admin")
def download_cast(request):
    row = _session_or_404(request)
    path = recording_path(request.registry.settings, row)
    if path is None:
        raise HTTPNotFound("The recording of this session is not on this node's disk.")
    response = FileResponse(str(path), request=request, content_type="application/x-asciicast")
    response.content_disposition = f'attachment; filename="{row.id}.cast"'
    return response


@does("gateway.session_terminate")
@view_config(route_name="gateway.session_terminate", request_method="POST", permission="admin",
             node_local=True)
def terminate_session(request):
    row = _session_or_404(request)
    try:
        request.services.sessions.terminate(row)
    except Invalid as error:
        request.session.flash(error.message, "error")
    else:
        request.session.flash(f"Session of {row.username} on {row.server_name} is being "
                              "terminated (within a second).", "success")
    return HTTPSeeOther(request.route_url("gateway.session", id=row.id))


# -- the servers' pinned host keys (replicated) ---------------------------------------------

@does("servers.host_key_reset")
@view_config(route_name="gateway.host_key_reset", renderer="gateway/host_key_reset.jinja2",
             permission="admin")
def reset_pinned_host_key(request):
    server = request.dbsession.get(Server, request.matchdict["id"])
    if server is None:
        raise HTTPNotFound("No such server.")
    if request.method == "POST":
        request.services.servers.reset_host_key(server)
        request.session.flash(f"The pinned host key of {server.name} is reset: the gateway pins "
                              "the key the server presents at its next connection.", "success")
        return HTTPSeeOther(request.route_url("servers.edit", id=server.id))
    return {"server": server, "fingerprint": pinned_fingerprint(server)}
