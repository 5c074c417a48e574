"""The panel's API tokens page: make one (its secret shown once), list
them, revoke one."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config
from sqlalchemy import select

from ezpyr.api.forms import TokenForm
from ezpyr.faces import does
from ezpyr.users.models import User
from ezpyr.validation import Invalid


@view_config(route_name="tokens.list", request_method="GET", renderer="api/tokens.jinja2", permission="admin")
def list_tokens(request):
    return {"tokens": request.services.tokens.all()}


@does("token.create")
@view_config(route_name="tokens.new", renderer="api/token_new.jinja2", permission="admin")
def new_token(request):
    form = TokenForm.from_request(request)
    users = list(request.dbsession.scalars(select(User).where(User.suspended.is_(False)).order_by(User.username)))
    form.owner.choices = [(u.id, u.username) for u in users]
    if request.method == "GET":
        form.owner.data = request.authenticated_user.id
    if request.method == "POST" and form.validate():
        owner = request.dbsession.get(User, form.owner.data)
        try:
            token, secret = request.services.tokens.create(
                form.name.data, owner, read_only=form.read_only.data, expires_days=form.expires_days.data)
        except Invalid as error:
            (getattr(form, error.field).errors if error.field and hasattr(form, error.field)
             else form.form_errors).append(error.message)
        else:
            return {"form": None, "token": token, "secret": secret}
    return {"form": form, "token": None, "secret": None}


@does("token.revoke")
@view_config(route_name="tokens.revoke", renderer="api/token_revoke.jinja2", permission="admin")
def revoke_token(request):
    service = request.services.tokens
    token = service.get(request.matchdict["id"])
    if token is None:
        raise HTTPNotFound()
    if request.method == "POST":
        name = token.name
        service.revoke(token)
        request.session.flash(f"Token {name} revoked: it no longer works, on either node.", "success")
        return HTTPSeeOther(request.route_url("tokens.list"))
    return {"token": token}
