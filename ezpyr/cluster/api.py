"""The cluster API (node to node), under /cluster/api/.

Every request must come from a granted address and be signed with the
cluster secret (see signing.py); stale and replayed requests are refused.
These views need no panel session and no CSRF token: the signature is the
credential.
"""
from __future__ import annotations

import json
import logging

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import exception_view_config, view_config

from ezpyr.cluster.services import ClusterService
from ezpyr.cluster.resolve import Resync, backup_dir, resync_staging, write_backup
from ezpyr.cluster.roles import demote, handed_over, undemote
from ezpyr.cluster.secret import accepted_secrets, receive_rotation, rotation_status
from ezpyr.cluster.setup import SECONDARY, NotSealed, SetupService, seal, unseal
from ezpyr.validation import Invalid
from ezpyr.cluster.signing import FRESHNESS_SECONDS, HEADER_NODE, NotGranted, Refused, check_signature
from ezpyr.replication.capture import wake_after_commit
from ezpyr.replication.outbox import ResendImpossible, provenance, resend_from
from ezpyr.replication.verify import (
    DEFAULT_CHUNK_ROWS, MAX_PAGE_ROWS, MAX_SPLITS, checksum_page, row_hash_page, rows_by_id,
    split_checksums, tables_by_name,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Answered as JSON ``{"error": message, "code": code}`` with the given
    HTTP status: the message for people, the code for the calling node."""

    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@exception_view_config(ApiError, renderer="json")
def api_error(exc, request):
    request.response.status = exc.status
    return {"error": exc.message, "code": exc.code} if exc.code else {"error": exc.message}


def authenticate(request):
    """The peer a request comes from; raises a 403 response otherwise."""
    service = ClusterService(request.dbsession)
    address = request.remote_addr or ""
    try:
        if not service.is_granted(address):
            raise NotGranted(f"address {address} is not granted (ezpyr-grant-host)")
        peer = service.peer()
        if peer is None:
            raise Refused("this node has no cluster configured")
        nonce = _check_any(accepted_secrets(peer, request.secret_box), request)
        if request.headers.get(HEADER_NODE) != peer.id:
            raise Refused("request from an unknown node")
        if not service.remember_nonce(nonce, FRESHNESS_SECONDS):
            raise Refused("replayed request")
    except Refused as refusal:
        log.warning("cluster API request refused from %s: %s", address, refusal)
        raise ApiError(403, f"refused: {refusal}", refusal.code) from None
    return peer


def _check_any(secrets: list[str], request) -> str:
    """check_signature with each secret accepted (more than one while the
    cluster secret rotates); returns the nonce."""
    refusal = Refused("this node has no cluster secret")
    for secret in secrets:
        try:
            return check_signature(secret, request.method, request.path_qs, request.body, request.headers)
        except Refused as error:
            refusal = error
    raise refusal


def api_view(**settings):
    """view_config for a cluster API route: JSON out, no session, no CSRF."""
    return view_config(renderer="json", permission=NO_PERMISSION_REQUIRED,
                       require_csrf=False, **settings)


@api_view(route_name="cluster.api.hello", request_method="GET")
def hello(request):
    authenticate(request)
    return ClusterService(request.dbsession).hello()


@api_view(route_name="cluster.api.status", request_method="GET")
def status(request):
    peer = authenticate(request)
    return {**ClusterService(request.dbsession).hello(), **rotation_status(peer, request.secret_box)}


@api_view(route_name="cluster.api.resend", request_method="POST")
def resend(request):
    authenticate(request)
    try:
        body = json.loads(request.body or b"{}")
        origin, epoch, seq = str(body["origin"]), int(body["epoch"]), int(body["seq"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "expected JSON with origin, epoch and seq") from None
    try:
        count = resend_from(request.dbsession.connection(), origin, epoch, seq)
    except ResendImpossible as error:
        raise ApiError(409, str(error)) from None
    if count:
        wake_after_commit(request.dbsession, origin)
    return {"requeued": count}


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _table(name):
    table = tables_by_name().get(name) if isinstance(name, str) else None
    if table is None:
        raise ApiError(400, f"{name!r} is not a replicated table")
    return table


def _key_bound(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not (isinstance(value, str) and len(value) <= 64):
        raise ApiError(400, f"{name} must be a row key (a string) or null")
    return value


def _page(body: dict):
    """(table, after, upto, limit) of a verify page request."""
    table = _table(body.get("table"))
    limit = body.get("limit", DEFAULT_CHUNK_ROWS)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_ROWS:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_PAGE_ROWS}")
    return table, _key_bound(body, "after"), _key_bound(body, "upto"), limit


def _ids(body: dict, most: int = 5000) -> list[str]:
    ids = body.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, "ids must be a list of row keys (strings)")
    if len(ids) > most:
        raise ApiError(400, f"at most {most} ids per request")
    return ids


def _splits(body: dict, after: str | None, upto: str | None) -> list[str] | None:
    """The keys a page is cut at, if any: increasing, inside the range."""
    splits = body.get("splits")
    if splits is None:
        return None
    if not isinstance(splits, list) or len(splits) > MAX_SPLITS or not all(
            isinstance(key, str) and len(key) <= 64 for key in splits):
        raise ApiError(400, f"splits must be a list of at most {MAX_SPLITS} row keys (strings)")
    bounds = ([after] if after is not None else []) + splits + ([upto] if upto is not None else [])
    if any(low >= high for low, high in zip(bounds, bounds[1:])):
        raise ApiError(400, "splits must be increasing keys between after and upto")
    return splits


@api_view(route_name="cluster.api.checksums", request_method="POST")
def checksums(request):
    """Row count and checksum of at most ``limit`` rows of a key range, or
    of each part of it when ``splits`` cuts it."""
    authenticate(request)
    body = _json_body(request)
    table, after, upto, limit = _page(body)
    splits = _splits(body, after, upto)
    connection = request.dbsession.connection()
    if splits is not None:
        return split_checksums(connection, table, after, upto, splits, limit)
    return checksum_page(connection, table, after, upto, limit)


@api_view(route_name="cluster.api.row_hashes", request_method="POST")
def row_hashes(request):
    """The hash of each of at most ``limit`` rows of a key range."""
    authenticate(request)
    table, after, upto, limit = _page(_json_body(request))
    return row_hash_page(request.dbsession.connection(), table, after, upto, limit)


@api_view(route_name="cluster.api.rows", request_method="POST")
def rows(request):
    authenticate(request)
    body = _json_body(request)
    table = _table(body.get("table"))
    return rows_by_id(request.dbsession.connection(), table, _ids(body))


# -- setting up a secondary (signed with its one-time setup key) -------------

def authenticate_setup(request) -> str:
    """For a secondary awaiting setup: the request must come from a granted
    address and be signed with the setup key. Returns the setup key."""
    service = ClusterService(request.dbsession)
    setup = SetupService(request.dbsession, request.secret_box)
    address = request.remote_addr or ""
    try:
        if not service.is_granted(address):
            raise NotGranted(f"address {address} is not granted")
        if service.node().role != SECONDARY:
            raise Refused(f"this node is {service.node().role}, not a secondary awaiting setup")
        key = setup.setup_key()
        if key is None:
            raise Refused("this node has no setup key")
        nonce = check_signature(key, request.method, request.path_qs, request.body, request.headers)
        if not service.remember_nonce(nonce, FRESHNESS_SECONDS):
            raise Refused("replayed request")
    except Refused as refusal:
        log.warning("cluster setup request refused from %s: %s", address, refusal)
        raise ApiError(403, f"refused: {refusal}", refusal.code) from None
    return key


def _sealed_body(request, key: str) -> dict:
    try:
        return unseal(key, _json_body(request))
    except NotSealed as error:
        raise ApiError(400, str(error)) from None


def _setup_call(request, action):
    key = authenticate_setup(request)
    body = _sealed_body(request, key)
    try:
        return seal(key, action(SetupService(request.dbsession, request.secret_box), body))
    except Invalid as error:
        raise ApiError(409, error.message) from None


@api_view(route_name="cluster.api.setup_hello", request_method="GET")
def setup_hello(request):
    authenticate_setup(request)
    return SetupService(request.dbsession, request.secret_box).hello()


@api_view(route_name="cluster.api.setup_begin", request_method="POST")
def setup_begin(request):
    def begin(service, body):
        service.begin(body.get("primary") or {})
        settings = request.registry.settings
        return {"broker_url": settings.get("ezpyr.broker_public_url") or settings.get("ezpyr.broker_url", "")}
    return _setup_call(request, begin)


@api_view(route_name="cluster.api.setup_chunk", request_method="POST")
def setup_chunk(request):
    return _setup_call(request, lambda service, body: {
        "loaded": service.load(str(body.get("table")), list(body.get("rows") or []))})


@api_view(route_name="cluster.api.setup_finish", request_method="POST")
def setup_finish(request):
    key = authenticate_setup(request)
    service = SetupService(request.dbsession, request.secret_box)
    try:
        new_key = service.finish(_sealed_body(request, key), key)
    except Invalid as error:
        raise ApiError(409, error.message) from None
    if new_key is not None:
        service.adopt_key(new_key, request.tm.get())
    return seal(key, {"role": "slave"})


@api_view(route_name="cluster.api.setup_abort", request_method="POST")
def setup_abort(request):
    return _setup_call(request, lambda service, body: service.abort() or {"aborted": True})


# -- switchover -------------------------------------------------------------

@api_view(route_name="cluster.api.demote", request_method="POST")
def api_demote(request):
    authenticate(request)
    try:
        return demote(request.dbsession.connection())
    except Invalid as error:
        raise ApiError(409, error.message) from None


@api_view(route_name="cluster.api.undemote", request_method="POST")
def api_undemote(request):
    authenticate(request)
    undemote(request.dbsession.connection())
    return {"role": ClusterService(request.dbsession).node().role}


@api_view(route_name="cluster.api.handed_over", request_method="POST")
def api_handed_over(request):
    authenticate(request)
    body = _json_body(request)
    try:
        handed_over(request.dbsession.connection(), str(body.get("master")), int(body.get("epoch", 0)))
    except (Invalid, ValueError) as error:
        raise ApiError(409, getattr(error, "message", str(error))) from None
    return {"role": "slave"}


# -- split-brain resolution ----------------------------------------------------

@api_view(route_name="cluster.api.provenance", request_method="POST")
def api_provenance(request):
    authenticate(request)
    body = _json_body(request)
    table = _table(body.get("table"))
    return provenance(request.dbsession.connection(), table.name, _ids(body))


@api_view(route_name="cluster.api.backup", request_method="POST")
def api_backup(request):
    authenticate(request)
    settings = request.registry.settings
    path = write_backup(request.dbsession.connection(), backup_dir(settings),
                        settings.get("ezpyr.node_name", "node"))
    return {"path": path}


@api_view(route_name="cluster.api.resync_begin", request_method="POST")
def api_resync_begin(request):
    authenticate(request)
    Resync(request.dbsession, resync_staging(request.registry.settings)).begin()
    return {"begun": True}


@api_view(route_name="cluster.api.resync_chunk", request_method="POST")
def api_resync_chunk(request):
    authenticate(request)
    body = _json_body(request)
    resync = Resync(request.dbsession, resync_staging(request.registry.settings))
    try:
        return {"loaded": resync.load(_table(body.get("table")).name, list(body.get("rows") or []))}
    except Invalid as error:
        raise ApiError(409, error.message) from None


@api_view(route_name="cluster.api.resync_finish", request_method="POST")
def api_resync_finish(request):
    authenticate(request)
    body = _json_body(request)
    try:
        Resync(request.dbsession, resync_staging(request.registry.settings)).finish(
            dict(body.get("vector") or {}), dict(body.get("counts") or {}))
    except Invalid as error:
        raise ApiError(409, error.message) from None
    return {"split_brain": False}


@api_view(route_name="cluster.api.rotate_secret", request_method="POST")
def api_rotate_secret(request):
    """The other node rolls a new cluster secret (ezpyr-cluster rotate-secret)."""
    authenticate(request)
    try:
        receive_rotation(request.dbsession, request.secret_box, _json_body(request))
    except Invalid as error:
        raise ApiError(409, error.message) from None
    return {"rotated": True}
