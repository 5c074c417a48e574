"""The API's activity log (read only): this node's entries, newest first,
as the activity page shows them."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_

from ezpyr.activity.models import ActivityEntry
from ezpyr.activity.schemas import ActivityOut, ActivityPage
from ezpyr.api.framework import PAGED, bad_cursor, cursor_of, endpoint, limit_of, one_page, query_text, route

ACTIVITY = route("api.activity", "/activity")

QUERY = {"limit": PAGED["limit"], "cursor": PAGED["cursor"],
         "username": ({"type": "string", "maxLength": 64}, "only this user's entries (exact)"),
         "action": ({"type": "string", "maxLength": 64}, "only this action (exact), e.g. server.create")}


def _after(request) -> tuple[dt.datetime, int] | None:
    after = cursor_of(request, 2)
    if after is None:
        return None
    try:
        at = dt.datetime.fromisoformat(after[0])
    except ValueError:
        at = None
    if at is None or not (after[1].isascii() and after[1].isdigit() and len(after[1]) <= 12):
        raise bad_cursor()
    return at, int(after[1])


@endpoint(ACTIVITY, "GET", "This node's activity log, newest first (paged)", response=ActivityPage, query=QUERY,
          tag="activity")
def list_activity(request):
    limit_of(request)  # a bad limit is refused before a bad cursor
    after = _after(request)
    stmt = request.services.activity.log.query(username=query_text(request, "username", 64),
                                               action=query_text(request, "action", 64))
    if after is not None:
        at, entry_id = after
        stmt = stmt.where(or_(ActivityEntry.at < at, and_(ActivityEntry.at == at, ActivityEntry.id < entry_id)))
    return one_page(request, stmt, lambda rows: [ActivityOut.of(e) for e in rows],
                    lambda last: [last.at.isoformat(), str(last.id)])
