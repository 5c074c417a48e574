"""A slave's panel can be used to look, never to change.

Every view that handles an unsafe method (POST …) is refused on a node that
does not accept changes, before it runs, with a page naming the master —
unless it declares ``node_local=True`` (it changes only this node's own
data: the cluster page's own buttons) or needs no permission (signing in). Behind this, change
capture refuses any commit of replicated data on such a node
(``NodeIsReadOnly``), so even a view that got this wrong changes nothing.
"""
from __future__ import annotations

from pyramid.renderers import render_to_response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import exception_view_config
from sqlalchemy import select

from ezpyr.cluster.models import ClusterPeer
from ezpyr.node.models import NodeIdentity, Role
from ezpyr.replication.capture import WRITABLE_ROLES, NodeIsReadOnly

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def master_address(dbsession, peer: ClusterPeer | None = None) -> str:
    if peer is None:
        peer = dbsession.scalars(select(ClusterPeer)).first()
    if peer is not None and peer.role == Role.MASTER:
        return peer.address
    return ""


def this_node(request) -> NodeIdentity | None:
    """This node's identity, read once per request (every page asks)."""
    return request.dbsession.scalars(select(NodeIdentity)).first()


def refusal(request, role: str):
    address = master_address(request.dbsession)
    from ezpyr.api.framework import is_api, problem_response
    if is_api(request):
        return problem_response(409, f"This node is {role} and takes no changes: send them to the master"
                                     f"{' at ' + address if address else ''}. Nothing was changed.",
                                master=address or None)
    response = render_to_response(
        "cluster/readonly.jinja2",
        {"role": role, "master_address": address},
        request=request,
    )
    response.status = 409
    return response


def readonly_guard(view, info):
    if info.options.get("node_local") or info.options.get("permission") == NO_PERMISSION_REQUIRED:
        return view

    def guarded(context, request):
        if request.method in UNSAFE:
            node = request.this_node
            if node is not None and node.role not in WRITABLE_ROLES:
                return refusal(request, node.role)
        return view(context, request)

    return guarded


readonly_guard.options = ("node_local",)


@exception_view_config(NodeIsReadOnly)
def read_only_commit(exc, request):
    return refusal(request, exc.role)


def secondary_page(view, info):
    """A secondary awaiting setup serves no panel: every page says to set
    up the cluster from the primary (the cluster API and the operators'
    endpoints still answer)."""
    route = info.options.get("route_name") or ""
    if route.startswith(("cluster.api.", "ops.", "__")) or info.exception_only:
        return view

    def wrapper(context, request):
        from ezpyr.cluster.setup import SECONDARY

        node = request.this_node
        if node is not None and node.role == SECONDARY:
            # anyone can ask: the page names neither this node nor its primary
            response = render_to_response("cluster/secondary.jinja2", {}, request=request)
            response.status = 503
            return response
        return view(context, request)

    return wrapper


def node_banner(request) -> dict | None:
    """What every page says about this node: a split-brain, or that it does
    not take changes."""
    node = request.this_node
    if node is None:
        return None
    peer = request.dbsession.scalars(select(ClusterPeer)).first()
    split = bool(peer and peer.split_brain_since)
    if node.role in WRITABLE_ROLES and not split:
        return None
    return {"role": node.role, "master_address": master_address(request.dbsession, peer),
            "split_brain": split, "detail": peer.split_brain_detail if split else "",
            "here": node.name, "there": (peer.name or peer.address) if peer else "",
            "writable": node.role in WRITABLE_ROLES}


def worker_problem(request) -> str:
    """What every admin page says when this node's worker does not run
    (only once the node has another node: before that it has nothing to do)."""
    node = request.this_node
    if node is None or request.dbsession.scalars(select(ClusterPeer.id)).first() is None:
        return ""
    return request.cluster.worker().problem


def includeme(config):
    config.add_view_deriver(readonly_guard)
    config.add_view_deriver(secondary_page, under="readonly_guard")
    config.add_request_method(this_node, reify=True)
    config.add_request_method(node_banner, reify=True)
    config.add_request_method(worker_problem, reify=True)
