"""The signed-in user's own profile: details, password and SSH keys."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config

from ezpyr.faces import does
from ezpyr.security import sign_in
from ezpyr.users.forms import ChangePasswordForm, KeyForm
from ezpyr.validation import Invalid


def _profile_page(request, key_form):
    user = request.authenticated_user
    return {"user": user, "keys": request.services.user_keys.keys_of(user),
            "form": key_form}


@view_config(route_name="profile.view", renderer="profile/view.jinja2", permission="user")
def view_profile(request):
    return _profile_page(request, KeyForm())


@does("profile.password")
@view_config(route_name="profile.password", renderer="profile/password.jinja2",
             permission="user")
def change_password(request):
    user = request.authenticated_user
    form = ChangePasswordForm.from_request(request)
    if request.method == "POST" and form.validate():
        try:
            # counted like a sign-in: a stolen session cannot guess the password
            request.services.auth.check_current_password(
                user, form.current_password.data, request.remote_addr or "")
            request.services.users.change_own_password(
                user, form.current_password.data, form.new_password.data
            )
        except Invalid as error:
            form.add_error(error)
        else:
            # The password change ended every session of the user, this one
            # too: start a fresh one here so that only the others end.
            sign_in(request, user)
            request.session.flash("Your password is changed. Sessions elsewhere have ended.",
                                  "success")
            return HTTPSeeOther(request.route_url("profile.view"))
    return {"form": form}


@does("profile.key_add")
@view_config(route_name="profile.key_add", renderer="profile/view.jinja2", permission="user")
def add_own_key(request):
    if request.method != "POST":
        return HTTPSeeOther(request.route_url("profile.view"))
    user = request.authenticated_user
    form = KeyForm.from_request(request)
    if form.validate():
        try:
            key = request.services.user_keys.add_own(user, form.public_key.data, form.name.data)
        except Invalid as error:
            form.add_error(error)
        else:
            request.session.flash(f"Key {key.name or key.fingerprint} added.", "success")
            return HTTPSeeOther(request.route_url("profile.view"))
    return _profile_page(request, form)


@does("profile.key_delete")
@view_config(route_name="profile.key_delete", permission="user")
def delete_own_key(request):
    user = request.authenticated_user
    service = request.services.user_keys
    key = service.get(user, request.matchdict["key_id"])  # only the user's own keys
    if key is None:
        raise HTTPNotFound("No such key.")
    if request.method == "POST":
        label = key.name or key.fingerprint
        service.delete_own(key)
        request.session.flash(f"Key {label} deleted.", "success")
    return HTTPSeeOther(request.route_url("profile.view"))
