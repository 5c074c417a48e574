"""Pages for users and their SSH keys (admins only)."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config
from wtforms.fields.choices import SelectChoice

from ezpyr.faces import does
from ezpyr.paging import Page, page_number, search_text
from ezpyr.users.forms import KeyForm, NewUserForm, ResetPasswordForm, UserForm
from ezpyr.users.services import UserService
from ezpyr.validation import Invalid


def _service(request) -> UserService:
    return request.services.users


def _user_or_404(request, service):
    user = service.get(request.matchdict["id"])
    if user is None:
        raise HTTPNotFound("No such user.")
    return user


def _group_choices(request) -> list[SelectChoice]:
    groups = request.services.user_groups.all()
    return [SelectChoice("", "— no group —")] + [SelectChoice(g.id, g.name) for g in groups]


def _back_to(request, user):
    return HTTPSeeOther(request.route_url("users.edit", id=user.id))


def _is_locked(request, user) -> bool:
    return request.services.auth.is_locked(user.username)


@view_config(route_name="users.list", renderer="users/list.jinja2", permission="admin")
def list_users(request):
    q = search_text(request)
    page = Page(request.dbsession, _service(request).search(q), page_number(request))
    auth = request.services.auth
    return {
        "page": page,
        "q": q,
        "key_counts": request.services.user_keys.counts(page.items),
        "locked": {u.id for u in page.items if auth.is_locked(u.username)},
        "accounts": request.services.account_tasks.states([u.username for u in page.items]),
    }


@does("user.create")
@view_config(route_name="users.new", renderer="users/form.jinja2", permission="admin")
def new_user(request):
    form = NewUserForm.from_request(request)
    form.group_id.choices = _group_choices(request)
    if request.method == "POST" and form.validate():
        try:
            user = _service(request).create(
                form.username.data, form.password.data, role=form.role.data,
                full_name=form.full_name.data, email=form.email.data,
                group_id=form.group_id.data or None,
            )
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"User {user.username} created.", "success")
            return HTTPSeeOther(request.route_url("users.list"))
    return {"form": form, "user": None}


@does("user.update")
@view_config(route_name="users.edit", renderer="users/form.jinja2", permission="admin")
def edit_user(request):
    service = _service(request)
    user = _user_or_404(request, service)
    form = UserForm.from_request(request, obj=user)
    form.group_id.choices = _group_choices(request)
    if request.method != "POST":
        form.group_id.data = user.group_id or ""
    if request.method == "POST" and form.validate():
        try:
            service.update(
                user, form.username.data, role=form.role.data, full_name=form.full_name.data,
                email=form.email.data, group_id=form.group_id.data or None,
                actor=request.authenticated_user,
            )
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"User {user.username} saved.", "success")
            return HTTPSeeOther(request.route_url("users.list"))
    return {"form": form, "user": user, "locked": _is_locked(request, user)}


def _action(request, act, done: str):
    """A POST button on the edit page: do ``act(service, user)``, say so."""
    service = _service(request)
    user = _user_or_404(request, service)
    if request.method != "POST":
        return _back_to(request, user)
    try:
        act(service, user)
    except Invalid as error:
        request.session.flash(error.message, "error")
    else:
        request.session.flash(done.format(name=user.username), "success")
    return _back_to(request, user)


@does("user.suspend")
@view_config(route_name="users.suspend", permission="admin")
def suspend_user(request):
    return _action(
        request, lambda service, user: service.suspend(user, actor=request.authenticated_user),
        "User {name} is suspended: they cannot sign in, and their sessions have ended.",
    )


@does("user.reinstate")
@view_config(route_name="users.reinstate", permission="admin")
def reinstate_user(request):
    return _action(request, lambda service, user: service.reinstate(user),
                   "User {name} is reinstated and may sign in again.")


@does("user.reset_2fa")
@view_config(route_name="users.reset_2fa", permission="admin")
def reset_totp(request):
    return _action(
        request, lambda service, user: service.reset_totp(user),
        "Two-factor sign-in is off for {name}; they sign in with their password and may "
        "set it up again.",
    )


@does("user.unlock")
@view_config(route_name="users.unlock", permission="admin")
def unlock_user(request):
    return _action(request, lambda service, user: request.services.auth.unlock_user(user),
                   "User {name} is unlocked on this node and may sign in again.")


@view_config(route_name="users.locked", renderer="users/locked.jinja2", permission="admin",
             request_method="GET")
def locked_list(request):
    """Who is being held back from signing in on this node, and why."""
    auth = request.services.auth
    return {"holds": auth.throttled(), "limits": auth.throttle().limits()}


@does("auth.release_address")
@view_config(route_name="users.release_address", permission="admin", request_method="POST")
def release_address(request):
    try:
        address = request.services.auth.release_address(request.POST.get("address") or "")
    except Invalid:
        request.session.flash("That address is not locked out on this node.", "warning")
    else:
        request.session.flash(f"Address {address} may sign in again on this node.", "success")
    return HTTPSeeOther(request.route_url("users.locked"))


@does("user.password_reset")
@view_config(route_name="users.password", renderer="users/password.jinja2", permission="admin")
def reset_password(request):
    service = _service(request)
    user = _user_or_404(request, service)
    form = ResetPasswordForm.from_request(request)
    if request.method == "POST" and form.validate():
        try:
            generated = service.reset_password(user, form.password.data or None)
        except Invalid as error:
            form.add_error(error)
        else:
            if generated:
                # Shown on this page only, once: never stored, never flashed
                # (the session cookie is signed, not encrypted).
                request.response.headers["Cache-Control"] = "no-store"
                return {"form": None, "user": user, "generated": generated}
            request.session.flash(
                f"The password of {user.username} is changed; their sessions have ended.",
                "success")
            return _back_to(request, user)
    return {"form": form, "user": user, "generated": None}


@does("user.delete")
@view_config(route_name="users.delete", renderer="users/delete.jinja2", permission="admin")
def delete_user(request):
    service = _service(request)
    user = _user_or_404(request, service)
    if request.method == "POST":
        name = user.username
        try:
            service.delete(user, actor=request.authenticated_user)
        except Invalid as error:
            request.session.flash(error.message, "error")
            return _back_to(request, user)
        request.session.flash(f"User {name} deleted, with their SSH keys and access rules.",
                              "success")
        return HTTPSeeOther(request.route_url("users.list"))
    refusal = None
    try:
        service.check_delete(user, actor=request.authenticated_user)
    except Invalid as error:
        refusal = error.message  # said before anyone clicks
    return {"user": user, "dependants": service.dependants(user), "refusal": refusal}


# -- SSH keys of a user ----------------------------------------------------------------

def _keys_page(request, user, form):
    return {"user": user, "keys": request.services.user_keys.keys_of(user), "form": form}


@view_config(route_name="users.keys", renderer="users/keys.jinja2", permission="admin")
def user_keys(request):
    user = _user_or_404(request, _service(request))
    return _keys_page(request, user, KeyForm())


@does("user.key_add")
@view_config(route_name="users.key_add", renderer="users/keys.jinja2", permission="admin")
def add_key(request):
    user = _user_or_404(request, _service(request))
    if request.method != "POST":
        return HTTPSeeOther(request.route_url("users.keys", id=user.id))
    form = KeyForm.from_request(request)
    if form.validate():
        try:
            key = request.services.user_keys.add(user, form.public_key.data, form.name.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"Key {key.name or key.fingerprint} added for {user.username}.",
                                  "success")
            return HTTPSeeOther(request.route_url("users.keys", id=user.id))
    return _keys_page(request, user, form)


@does("user.key_delete")
@view_config(route_name="users.key_delete", permission="admin")
def delete_key(request):
    user = _user_or_404(request, _service(request))
    service = request.services.user_keys
    key = service.get(user, request.matchdict["key_id"])
    if key is None:
        raise HTTPNotFound("No such key.")
    if request.method == "POST":
        label = key.name or key.fingerprint
        service.delete(key)
        request.session.flash(f"Key {label} of {user.username} deleted.", "success")
    return HTTPSeeOther(request.route_url("users.keys", id=user.id))
