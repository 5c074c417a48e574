"""The web activity log page and its CSV download (admins only)."""
from __future__ import annotations

import re

from pyramid.response import Response
from pyramid.view import view_config

from ezpyr.activity.services import ActivityLog
from ezpyr.meta import utcnow
from ezpyr.paging import Page, page_number

PER_PAGE = 50


def _log(request) -> ActivityLog:
    return request.services.activity.log


def _filters(request) -> dict:
    """The filters of the query string; blank ones are left out."""
    found = {}
    for name in ("username", "action"):
        value = request.params.get(name, "").strip()
        if value:
            found[name] = value
    return found


@view_config(route_name="activity.list", renderer="activity/list.jinja2", permission="admin")
def list_activity(request):
    log = _log(request)
    filters = _filters(request)
    page = Page(request.dbsession, log.query(**filters), page_number(request), per_page=PER_PAGE)
    return {
        "page": page,
        "filters": filters,
        "username": filters.get("username", ""),
        "action": filters.get("action", ""),
        "actions": log.actions(),
    }


@view_config(route_name="activity.export", permission="admin")
def export_activity(request):
    log = _log(request)
    text = log.export_csv(**_filters(request))
    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", log.node_name) or "node"
    response = Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8")
    response.content_disposition = (
        f'attachment; filename="activity-{node}-{utcnow():%Y%m%d-%H%M%S}.csv"'
    )
    return response
