"""Sign in (password, then a TOTP code for users who enrolled one), sign out,
and the user's own two-factor enrolment."""
from __future__ import annotations

import time
from urllib.parse import urlparse

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ezpyr.auth.forms import CodeForm, LoginForm
from ezpyr.auth.totp import TotpService
from ezpyr.cluster.readonly import master_address
from ezpyr.faces import does
from ezpyr.replication.capture import WRITABLE_ROLES
from ezpyr.secretbox import SecretUnreadable
from ezpyr.security import sign_in, sign_out
from ezpyr.users.models import User
from ezpyr.validation import Invalid

# The session of a sign-in whose password was right and whose code is awaited.
PENDING = "pending_sign_in"
PENDING_SECONDS = 300
# The secret being enrolled (encrypted), until the user proves their app has it.
ENROL_SECRET = "totp_enrol"


def safe_next(request, default: str) -> str:
    """Only a path on this site may be a redirect target after sign-in."""
    target = request.params.get("next", "")
    if (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target  # browsers read "/\host" as "//host"
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
        and not urlparse(target).netloc
    ):
        return target
    return default


def next_query(request) -> dict:
    target = safe_next(request, "")
    return {"next": target} if target else {}


def landing_url(request, user) -> str:
    return request.route_url("home")


def record_failure(request, known_name: str, reason: str) -> None:
    """A failed sign-in in the activity log: the account's name, or "an
    unknown name" (what was typed is often a password, and is not kept)."""
    request.activity.record("auth.login_failed", known_name or "(an unknown name)", reason,
                            username=known_name, user=None)


@view_config(route_name="auth.login", renderer="auth/login.jinja2",
             permission=NO_PERMISSION_REQUIRED)
def login(request):
    form = LoginForm.from_request(request)
    if request.method == "POST" and form.validate():
        result = request.services.auth.check_password(
            form.username.data, form.password.data, request.remote_addr or ""
        )
        if result.user is None:
            record_failure(request, result.known_name, result.reason)
            form.form_errors.append(result.reason)
        elif result.needs_code:
            return begin_second_factor(request, result.user)
        else:
            return complete_sign_in(request, result.user)
    return {"form": form}


def begin_second_factor(request, user):
    """The password was right: remember that (briefly) and ask for the code.
    The user is not signed in yet."""
    sign_out(request)
    request.session[PENDING] = {"uid": user.id, "stamp": user.auth_stamp, "at": int(time.time())}
    return HTTPSeeOther(request.route_url("auth.totp", _query=next_query(request)))


def pending_user(request) -> User | None:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    user = request.dbsession.get(User, pending.get("uid") or "")
    if user is None or user.auth_stamp != pending.get("stamp") or not user.totp_enabled:
        return None
    return user


@view_config(route_name="auth.totp", renderer="auth/totp.jinja2",
             permission=NO_PERMISSION_REQUIRED)
def second_factor(request):
    user = pending_user(request)
    if user is None:
        request.session.pop(PENDING, None)
        request.session.flash(
            "Sign in with your username and password first; "
            f"the code must follow within {PENDING_SECONDS // 60} minutes.", "warning")
        return HTTPSeeOther(request.route_url("auth.login", _query=next_query(request)))
    form = CodeForm.from_request(request)
    if request.method == "POST" and form.validate():
        result = request.services.auth.check_code(
            user, form.code.data, request.totp, request.remote_addr or ""
        )
        if result.user is not None:
            return complete_sign_in(request, result.user)
        record_failure(request, user.username, result.reason)
        if result.locked or user.suspended:
            request.session.pop(PENDING, None)
            request.session.flash(result.reason, "error")
            return HTTPSeeOther(request.route_url("auth.login", _query=next_query(request)))
        form.add_error(Invalid(result.reason, "code"))
    return {"form": form}


def complete_sign_in(request, user):
    """The password (and second factor, if any) checked: start the session."""
    sign_in(request, user)
    request.activity.record("auth.login", user.username, user=user)
    return HTTPSeeOther(safe_next(request, landing_url(request, user)))


@view_config(route_name="auth.logout", request_method="POST", permission=NO_PERMISSION_REQUIRED)
def logout(request):
    user = request.authenticated_user
    if user is not None:
        request.activity.record("auth.logout", user.username, user=user)
    sign_out(request)
    request.session.flash("You are signed out.", "info")
    return HTTPSeeOther(request.route_url("auth.login"))


# -- the user's own second factor ---------------------------------------------

def enrolment_secret(request) -> str:
    """The secret offered for enrolment: the same one until it is enrolled,
    kept encrypted in the session."""
    stored = request.session.get(ENROL_SECRET)
    if stored:
        try:
            return request.secret_box.decrypt(stored)
        except SecretUnreadable:
            pass
    secret = TotpService.new_secret()
    request.session[ENROL_SECRET] = request.secret_box.encrypt(secret)
    return secret


def totp_page(request, form, secret: str | None = None) -> dict:
    user = request.authenticated_user
    page = {"form": form, "user": user,
            "required": request.panel_settings.totp_required}
    if secret is not None:
        uri = TotpService.provisioning_uri(secret, user.username)
        page.update(secret=secret, uri=uri, qr=TotpService.qr_data_uri(uri))
    return page


@does("auth.totp_enable")
@view_config(route_name="profile.totp", renderer="auth/profile_totp.jinja2", permission="user")
def enrol(request):
    user = request.authenticated_user
    form = CodeForm.from_request(request)
    if user.totp_enabled:
        if request.method == "POST":
            return HTTPSeeOther(request.route_url("profile.totp"))
        return totp_page(request, form)
    node = request.this_node
    if node is not None and node.role not in WRITABLE_ROLES:
        # Enrolling is a change, and this node takes none: the user enrols
        # on the master and comes back; until then this page is all they see.
        return {**totp_page(request, form), "enrol_on_master": True,
                "master_address": master_address(request.dbsession)}
    secret = enrolment_secret(request)
    if request.method == "POST" and form.validate():
        try:
            request.totp.enrol(user, secret, form.code.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.pop(ENROL_SECRET, None)
            request.session.flash(
                "Two-factor sign-in is on. From now on you sign in with your password "
                "and a code from your app.", "success")
            return HTTPSeeOther(request.route_url("profile.totp"))
    return totp_page(request, form, secret)


@does("auth.totp_disable")
@view_config(route_name="profile.totp_disable", renderer="auth/profile_totp.jinja2",
             permission="user")
def disable(request):
    user = request.authenticated_user
    if request.method != "POST" or not user.totp_enabled:
        return HTTPSeeOther(request.route_url("profile.totp"))
    form = CodeForm.from_request(request)
    if form.validate():
        try:
            request.totp.disable(
                user, form.code.data,
                required=request.panel_settings.totp_required,
            )
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash("Two-factor sign-in is off.", "success")
            return HTTPSeeOther(request.route_url("profile.totp"))
    return totp_page(request, form)
