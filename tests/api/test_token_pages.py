"""The panel's API tokens page and its CLI twin: the secret is shown once
and never stored; bad input is refused with a message and changes nothing;
revoking ends the token."""
from __future__ import annotations

import re

from sqlalchemy import select

from ezpyr.api.models import ApiToken
from ezpyr.api.tokens import digest
from tests.factories import csrf_from, post


def test_make_list_and_revoke_a_token_in_the_panel(admin_app, admin, dbsession, this_node):
    page = post(admin_app, "/api-tokens/new", {"name": "inventory sync", "owner": admin.id, "read_only": "y",
                                                "expires_days": "30"})
    secret = re.search(r'data-field="secret">(ezp_[^<]+)<', page.text).group(1)
    token = dbsession.scalars(select(ApiToken)).one()
    assert token.secret_hash == digest(secret) and secret not in repr(token.__dict__)
    assert token.read_only and token.expires_at is not None
    assert admin_app.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json["token"] == \
        "inventory sync"
    listing = admin_app.get("/api-tokens")
    assert "inventory sync" in listing.text and secret not in listing.text and f"ezp_{token.prefix}_" in listing.text
    page = admin_app.get(f"/api-tokens/{token.id}/revoke")
    admin_app.post(f"/api-tokens/{token.id}/revoke", {"csrf_token": csrf_from(page)}, status=303)
    assert dbsession.scalars(select(ApiToken)).first() is None
    admin_app.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, status=401)


def test_bad_token_input_is_refused_and_changes_nothing(admin_app, admin, dbsession, this_node):
    for fields, message in (({"name": "", "owner": admin.id}, "This field is required"),
                            ({"name": "x", "owner": admin.id, "expires_days": "0"}, "number of days"),
                            ({"name": "x", "owner": admin.id, "expires_days": "abc"}, "number of days"),
                            ({"name": "x\x07y", "owner": admin.id}, "control characters"),
                            ({"name": "x", "owner": "not-a-user"}, "Not a valid choice")):
        page = post(admin_app, "/api-tokens/new", fields)
        assert message in page.text, (fields, page.text[:2000])
    assert dbsession.scalars(select(ApiToken)).first() is None
