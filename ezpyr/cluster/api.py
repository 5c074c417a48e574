"""The cluster API (node to node), under /cluster/api/.

Every request must come from a granted address and be signed with the
cluster secret (see signing.py); stale and replayed requests are refused.
These views need no panel session and no CSRF token: the signature is the
credential.
"""
from __future__ import annotations

import logging

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import exception_view_config, view_config
from sqlalchemy.exc import IntegrityError

from ezpyr.cluster import schemas
from ezpyr.cluster.resolve import Resync, backup_dir, resync_staging, write_backup
from ezpyr.cluster.roles import demote, handed_over, undemote
from ezpyr.cluster.secret import accepted_secrets, receive_rotation, rotation_status
from ezpyr.cluster.setup import SECONDARY, NotSealed, seal, unseal
from ezpyr.validation import Invalid
from ezpyr.cluster.signing import FRESHNESS_SECONDS, HEADER_NODE, NotGranted, Refused, check_signature
from ezpyr.replication.capture import wake_after_commit
from ezpyr.replication.outbox import ResendImpossible, provenance, resend_from
from ezpyr.replication.verify import checksum_page, row_hash_page, rows_by_id, split_checksums, tables_by_name

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


def socket_peer(request) -> str:
    """The address of the connection itself, which is what a grant names.

    Behind the production sample's reverse proxy, waitress's
    ``trusted_proxy`` rewrites ``REMOTE_ADDR`` from ``X-Forwarded-For``
    for connections from the proxy; the cluster API must not believe that
    header, so it reads the peer of the socket from waitress's channel.
    Under any other server (and WebTest) ``REMOTE_ADDR`` is the socket's."""
    channel = getattr(request.environ.get("waitress.client_disconnected"), "__self__", None)
    address = getattr(channel, "addr", None)
    if isinstance(address, tuple) and address and address[0]:
        return str(address[0])
    return request.environ.get("REMOTE_ADDR", "")


def remember_nonce(request, nonce: str) -> bool:
    """Record ``nonce`` in a transaction of its own, committed at once: a
    request refused later (or failing) must not give its nonce back for a
    replay. False when it was seen before (also when a concurrent request
    carrying it got there first)."""
    session = request.registry["dbsession_factory"]()
    try:
        fresh = request.services.on(session).cluster.remember_nonce(nonce, FRESHNESS_SECONDS)
        session.commit()
        return fresh
    except IntegrityError:
        session.rollback()
        return False
    finally:
        session.close()


def body(request, model: type[schemas.Body]) -> schemas.Body:
    """The request's body as ``model``, or a 400 that says what is wrong."""
    try:
        return schemas.parse(model, request.body)
    except schemas.BadBody as error:
        raise ApiError(400, f"bad request: {error}") from None


def authenticate(request):
    """The peer a request comes from; raises a 403 response otherwise."""
    service = request.services.cluster
    address = socket_peer(request)
    try:
        if not service.is_granted(address):
            raise NotGranted(f"address {address} is not granted (ezpyr-grant-host)")
        peer = service.peer()
        if peer is None:
            raise Refused("this node has no cluster configured")
        nonce = _check_any(accepted_secrets(peer, request.secret_box), request)
        if request.headers.get(HEADER_NODE) != peer.id:
            raise Refused("request from an unknown node")
        if not remember_nonce(request, nonce):
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
    return request.services.cluster.hello()


@api_view(route_name="cluster.api.status", request_method="GET")
def status(request):
    peer = authenticate(request)
    return {**request.services.cluster.hello(), **rotation_status(peer, request.secret_box)}


@api_view(route_name="cluster.api.resend", request_method="POST")
def resend(request):
    authenticate(request)
    asked = body(request, schemas.Resend)
    try:
        count = resend_from(request.dbsession.connection(), asked.origin, asked.epoch, asked.seq)
    except ResendImpossible as error:
        raise ApiError(409, str(error)) from None
    if count:
        wake_after_commit(request.dbsession, asked.origin)
    return {"requeued": count}


def _splits(page: schemas.SplitPage) -> list[str] | None:
    """The keys a page is cut at, if any: increasing, inside the range."""
    if page.splits is None:
        return None
    bounds = ([page.after] if page.after is not None else []) + list(page.splits) + (
        [page.upto] if page.upto is not None else [])
    if any(low >= high for low, high in zip(bounds, bounds[1:])):
        raise ApiError(400, "bad request: splits must be increasing keys between after and upto")
    return list(page.splits)


@api_view(route_name="cluster.api.checksums", request_method="POST")
def checksums(request):
    """Row count and checksum of at most ``limit`` rows of a key range, or
    of each part of it when ``splits`` cuts it."""
    authenticate(request)
    page = body(request, schemas.SplitPage)
    splits = _splits(page)
    table = tables_by_name()[page.table]
    connection = request.dbsession.connection()
    if splits is not None:
        return split_checksums(connection, table, page.after, page.upto, splits, page.limit)
    return checksum_page(connection, table, page.after, page.upto, page.limit)


@api_view(route_name="cluster.api.row_hashes", request_method="POST")
def row_hashes(request):
    """The hash of each of at most ``limit`` rows of a key range."""
    authenticate(request)
    page = body(request, schemas.Page)
    return row_hash_page(request.dbsession.connection(), tables_by_name()[page.table],
                         page.after, page.upto, page.limit)


@api_view(route_name="cluster.api.rows", request_method="POST")
def rows(request):
    authenticate(request)
    asked = body(request, schemas.RowIds)
    return rows_by_id(request.dbsession.connection(), tables_by_name()[asked.table], list(asked.ids))


# -- setting up a secondary (signed with its one-time setup key) -------------

def authenticate_setup(request, begin: bool = False) -> str:
    """For a secondary awaiting setup: the request must come from a granted
    address and be signed with the setup key, which has not expired (nor,
    for ``begin``, been used by an earlier Add). Returns the setup key."""
    service = request.services.cluster
    setup = request.services.cluster_setup
    address = socket_peer(request)
    try:
        if not service.is_granted(address):
            raise NotGranted(f"address {address} is not granted")
        if service.node().role != SECONDARY:
            raise Refused(f"this node is {service.node().role}, not a secondary awaiting setup")
        key = setup.usable_setup_key(begin=begin)
        nonce = check_signature(key, request.method, request.path_qs, request.body, request.headers)
        if not remember_nonce(request, nonce):
            raise Refused("replayed request")
    except Refused as refusal:
        log.warning("cluster setup request refused from %s: %s", address, refusal)
        raise ApiError(403, f"refused: {refusal}", refusal.code) from None
    except Invalid as refusal:
        log.warning("cluster setup request refused from %s: %s", address, refusal.message)
        raise ApiError(403, f"refused: {refusal.message}") from None
    return key


def _unsealed(request, key: str, model: type[schemas.Body]) -> schemas.Body:
    """A setup request's payload: sealed under the setup key (setup.seal),
    then checked against ``model`` once opened."""
    envelope = body(request, schemas.Sealed)
    try:
        payload = unseal(key, envelope.model_dump())
    except NotSealed as error:
        raise ApiError(400, f"bad request: {error}") from None
    try:
        return schemas.check(model, payload)
    except schemas.BadBody as error:
        raise ApiError(400, f"bad request: {error}") from None


def _setup_call(request, model, action, begin: bool = False):
    key = authenticate_setup(request, begin)
    asked = _unsealed(request, key, model)
    try:
        return seal(key, action(request.services.cluster_setup, asked, key))
    except Invalid as error:
        raise ApiError(409, error.message) from None
    except IntegrityError:
        raise ApiError(409, "the rows sent clash with each other or lack the rows they refer to") from None


@api_view(route_name="cluster.api.setup_hello", request_method="GET")
def setup_hello(request):
    authenticate_setup(request)
    return request.services.cluster_setup.hello()


@api_view(route_name="cluster.api.setup_begin", request_method="POST")
def setup_begin(request):
    def begin(service, asked, _key):
        service.begin(asked.primary.model_dump())
        settings = request.registry.settings
        return {"broker_url": settings.get("ezpyr.broker_public_url") or settings.get("ezpyr.broker_url", "")}
    return _setup_call(request, schemas.SetupBegin, begin, begin=True)


def check_chunk(chunk: schemas.Chunk) -> schemas.Chunk:
    try:
        schemas.check_rows(chunk)
    except schemas.BadBody as error:
        raise ApiError(400, f"bad request: {error}") from None
    return chunk


@api_view(route_name="cluster.api.setup_chunk", request_method="POST")
def setup_chunk(request):
    def load(service, chunk, _key):
        return {"loaded": service.load(chunk.table, check_chunk(chunk).rows)}
    return _setup_call(request, schemas.Chunk, load)


@api_view(route_name="cluster.api.setup_finish", request_method="POST")
def setup_finish(request):
    def finish(service, asked, key):
        new_key = service.finish(asked.model_dump(), key)
        if new_key is not None:
            service.adopt_key(new_key, request.tm.get())
        return {"role": "slave"}
    return _setup_call(request, schemas.SetupFinish, finish)


@api_view(route_name="cluster.api.setup_abort", request_method="POST")
def setup_abort(request):
    """Clears what an Add sent, and the setup key with it: a new Add needs a
    new key (ezpyr-init CONFIG --secondary PRIMARY prints one)."""
    return _setup_call(request, schemas.Empty,
                       lambda service, _asked, _key: service.abort() or {"aborted": True})


# -- switchover -------------------------------------------------------------

@api_view(route_name="cluster.api.demote", request_method="POST")
def api_demote(request):
    authenticate(request)
    body(request, schemas.Empty)
    try:
        return demote(request.dbsession.connection())
    except Invalid as error:
        raise ApiError(409, error.message) from None


@api_view(route_name="cluster.api.undemote", request_method="POST")
def api_undemote(request):
    authenticate(request)
    body(request, schemas.Empty)
    undemote(request.dbsession.connection())
    return {"role": request.services.cluster.node().role}


@api_view(route_name="cluster.api.handed_over", request_method="POST")
def api_handed_over(request):
    authenticate(request)
    asked = body(request, schemas.HandedOver)
    try:
        handed_over(request.dbsession.connection(), asked.master, asked.epoch)
    except Invalid as error:
        raise ApiError(409, error.message) from None
    return {"role": "slave"}


# -- split-brain resolution ----------------------------------------------------

@api_view(route_name="cluster.api.provenance", request_method="POST")
def api_provenance(request):
    authenticate(request)
    asked = body(request, schemas.RowIds)
    return provenance(request.dbsession.connection(), asked.table, list(asked.ids))


@api_view(route_name="cluster.api.backup", request_method="POST")
def api_backup(request):
    authenticate(request)
    body(request, schemas.Empty)
    settings = request.registry.settings
    path = write_backup(request.dbsession.connection(), backup_dir(settings),
                        settings.get("ezpyr.node_name", "node"))
    return {"path": path}


@api_view(route_name="cluster.api.resync_begin", request_method="POST")
def api_resync_begin(request):
    authenticate(request)
    body(request, schemas.Empty)
    Resync(request.dbsession, resync_staging(request.registry.settings)).begin()
    return {"begun": True}


@api_view(route_name="cluster.api.resync_chunk", request_method="POST")
def api_resync_chunk(request):
    authenticate(request)
    chunk = check_chunk(body(request, schemas.Chunk))
    resync = Resync(request.dbsession, resync_staging(request.registry.settings))
    try:
        return {"loaded": resync.load(chunk.table, chunk.rows)}
    except Invalid as error:
        raise ApiError(409, error.message) from None


@api_view(route_name="cluster.api.resync_finish", request_method="POST")
def api_resync_finish(request):
    authenticate(request)
    asked = body(request, schemas.ResyncFinish)
    try:
        Resync(request.dbsession, resync_staging(request.registry.settings)).finish(
            dict(asked.vector), dict(asked.counts))
    except Invalid as error:
        raise ApiError(409, error.message) from None
    except IntegrityError:
        raise ApiError(409, "the rows sent clash with each other or lack the rows they refer to") from None
    return {"split_brain": False}


@api_view(route_name="cluster.api.rotate_secret", request_method="POST")
def api_rotate_secret(request):
    """The other node rolls a new cluster secret (ezpyr-cluster rotate-secret)."""
    authenticate(request)
    try:
        receive_rotation(request.dbsession, request.secret_box, body(request, schemas.RotateSecret).model_dump())
    except Invalid as error:
        raise ApiError(409, error.message) from None
    return {"rotated": True}
