"""Who is asking, and what they may do.

Permissions:

* ``user``  — any signed-in, active user (own profile, own keys, own servers);
* ``admin`` — users with the admin role (everything else);
* views that anonymous users must reach declare ``NO_PERMISSION_REQUIRED``.

Every view declares its permission; ``admin`` is also the default so that a
view that forgot to declare one is closed, not open.
"""
from __future__ import annotations

import secrets
import datetime as dt
import time

from pyramid.security import Allowed, Denied
from pyramid.csrf import SessionCSRFStoragePolicy, get_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPForbidden, HTTPSeeOther
from pyramid.session import JSONSerializer, SignedCookieSessionFactory
from pyramid.view import forbidden_view_config
from sqlalchemy import delete

from ezpyr.replication.capture import WRITABLE_ROLES
from ezpyr.secretbox import session_secret_from_settings
from ezpyr.settings.services import LIMITS
from ezpyr.users.models import User

SESSION_USER = "uid"
SESSION_STAMP = "stamp"
SESSION_SEEN = "seen"
SESSION_ID = "sid"

# A page shows at most this many messages of one kind; older ones are
# dropped. Messages wait in the session cookie until a page shows them, so a
# client that never follows its redirects would otherwise grow the cookie
# past what a browser (and WebOb) accepts, and a committed change would be
# answered with an error.
FLASH_KEEP = 5

# No session outlives this, whatever the timeout setting: an ended session
# need not be remembered for longer.
LONGEST_SESSION = LIMITS["session_timeout_minutes"][1] * 60


class EndedSessions:
    """Ids of sessions that were signed out on this node (node-local table).

    The session lives in a signed cookie, so signing out must also make the
    old cookie worthless: its id is remembered until it would have expired
    anyway."""

    def __init__(self, dbsession):
        self.dbsession = dbsession

    def end(self, sid: str, now: float) -> None:
        from ezpyr.auth.models import EndedSession

        moment = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(tzinfo=None)
        self.dbsession.execute(delete(EndedSession).where(EndedSession.until < moment))
        self.dbsession.merge(EndedSession(sid=sid, until=moment + dt.timedelta(seconds=LONGEST_SESSION)))
        self.dbsession.flush()

    def ended(self, sid: str) -> bool:
        from ezpyr.auth.models import EndedSession

        return self.dbsession.get(EndedSession, sid) is not None


def sign_in(request, user: User) -> None:
    """Start an authenticated session for ``user`` (a fresh session id, so a
    session fixed before login is worthless afterwards)."""
    sign_out(request)
    request.session[SESSION_ID] = secrets.token_urlsafe(24)
    request.session[SESSION_USER] = user.id
    request.session[SESSION_STAMP] = user.auth_stamp
    request.session[SESSION_SEEN] = int(time.time())
    new_csrf_token(request)


def sign_out(request) -> None:
    """End the session; its cookie no longer signs anyone in."""
    sid = request.session.get(SESSION_ID)
    if sid:
        EndedSessions(request.dbsession).end(sid, time.time())
    request.session.invalidate()


class EzpyrSecurityPolicy:
    def identity(self, request) -> User | None:
        # cached per request by the request method below
        return request.authenticated_user

    def authenticated_userid(self, request):
        user = request.authenticated_user
        return user.id if user is not None else None

    def permits(self, request, context, permission):
        user = request.authenticated_user
        if user is None:
            return Denied("not signed in")
        if permission == "user":
            return Allowed("signed in")
        if permission == "admin" and user.is_admin:
            return Allowed("admin")
        return Denied(f"{user.username} lacks permission {permission!r}")

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def authenticated_user(request) -> User | None:
    """The user behind this request's session, or None. A session ends when
    the user signs out, is suspended or deleted, the password changes, or it
    was idle longer than the session timeout setting. On the API (/api/…)
    only a bearer token counts, never the session cookie."""
    from ezpyr.api import bearer_user
    from ezpyr.api.framework import is_api
    if is_api(request):
        return bearer_user(request)
    uid = request.session.get(SESSION_USER)
    if not uid:
        return None
    user = request.dbsession.get(User, uid)
    now = int(time.time())
    timeout = request.panel_settings.session_timeout_minutes * 60
    seen = request.session.get(SESSION_SEEN, 0)
    sid = request.session.get(SESSION_ID)
    if (
        not sid
        or EndedSessions(request.dbsession).ended(sid)
        or user is None
        or user.suspended
        or user.auth_stamp != request.session.get(SESSION_STAMP)
        or now - seen > timeout
    ):
        request.session.invalidate()
        request.environ["ezpyr.session_ended"] = True
        return None
    if now - seen > 15:  # refresh the idle clock without rewriting the cookie on every hit
        request.session[SESSION_SEEN] = now
    return user


@forbidden_view_config(renderer="errors/forbidden.jinja2")
def forbidden(request):
    if request.authenticated_user is None:
        if request.environ.get("ezpyr.session_ended"):
            request.session.flash("Your session has ended; please sign in again.", "warning")
        next_url = request.path_qs if request.method == "GET" else ""
        query = {"next": next_url} if next_url else {}
        return HTTPSeeOther(request.route_url("auth.login", _query=query))
    request.response.status = 403
    return {"message": "You do not have permission to see this page."}


# Pages a signed-in user without a second factor may still reach while the
# totp_required setting is on (static files have internal route names "__…").
ENROLMENT_ROUTES = {"profile.totp", "auth.logout", "auth.login", "auth.totp"}


def second_factor_required(view, info):
    """While the totp_required setting is on, a signed-in user who has not
    enrolled a second factor is sent to enrolment from every other page.
    Error pages are left alone: they answer for a request that failed."""
    if info.exception_only:
        return view

    def wrapper(context, request):
        route = request.matched_route
        if (
            route is not None
            and route.name not in ENROLMENT_ROUTES
            and not route.name.startswith("api.")  # a token is its own second factor
            and not route.name.startswith("__")
            and request.authenticated_user is not None
            and not request.authenticated_user.totp_enabled
            and request.panel_settings.totp_required
        ):
            node = request.this_node
            where = "here" if node is None or node.role in WRITABLE_ROLES else "on the master"
            request.session.flash(
                f"This panel requires two-factor sign-in. Set it up {where} before you go on.",
                "warning",
            )
            return HTTPSeeOther(request.route_url("profile.totp"))
        return view(context, request)

    return wrapper


def security_headers_tween_factory(handler, registry):
    settings = registry.settings
    hsts = settings.get("ezpyr.session.secure", "false").lower() == "true"

    def tween(request):
        response = handler(request)
        headers = response.headers
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        # the raw path: request.path would fail on one that is not UTF-8
        if not request.environ.get("PATH_INFO", "").startswith("/static/"):
            headers.setdefault("Cache-Control", "no-store")
        if hsts:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return tween


def capped_flash(session_factory):
    """The session class of ``session_factory``, with each flash queue
    keeping only its newest ``FLASH_KEEP`` messages."""

    class Session(session_factory):
        def flash(self, msg, queue="", allow_duplicate=True):
            super().flash(msg, queue, allow_duplicate)
            waiting = self["_f_" + queue]
            if len(waiting) > FLASH_KEEP:
                del waiting[:-FLASH_KEEP]
                self.changed()

    return Session


def includeme(config):
    settings = config.get_settings()
    secure = settings.get("ezpyr.session.secure", "false").lower() == "true"
    config.set_session_factory(capped_flash(
        SignedCookieSessionFactory(
            session_secret_from_settings(settings),
            cookie_name="ezpyr_session",
            secure=secure,
            httponly=True,
            samesite="Lax",
            timeout=None,  # idle expiry follows the session timeout setting instead
            reissue_time=None,
            serializer=JSONSerializer(),
        )
    ))
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
    config.add_request_method(authenticated_user, reify=True)
    config.add_request_method(get_csrf_token, "csrf_token", reify=True)
    config.set_security_policy(EzpyrSecurityPolicy())
    config.set_default_permission("admin")
    config.add_tween("ezpyr.security.security_headers_tween_factory")
    config.add_view_deriver(second_factor_required)
