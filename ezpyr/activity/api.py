"""The API's activity log (read only): this node's entries, newest first,
as the activity page shows them."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_

from ezpyr.activity.models import ActivityEntry
from ezpyr.activity.schemas import ActivityOut, ActivityPage
from ezpyr.api.framework import PAGED, ApiProblem, cursor_of, encode_cursor, endpoint, limit_of, query_text, route

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
        raise ApiProblem(422, "Not a valid cursor.", {"cursor": "use next_cursor from the previous page"})
    return at, int(after[1])


@endpoint(ACTIVITY, "GET", "This node's activity log, newest first (paged)", response=ActivityPage, query=QUERY,
          tag="activity")
def list_activity(request):
    limit = limit_of(request)
    after = _after(request)
    stmt = request.services.activity.log.query(username=query_text(request, "username", 64),
                                               action=query_text(request, "action", 64))
    if after is not None:
        at, entry_id = after
        stmt = stmt.where(or_(ActivityEntry.at < at, and_(ActivityEntry.at == at, ActivityEntry.id < entry_id)))
    rows = list(request.dbsession.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [ActivityOut.of(e) for e in rows],
            "next_cursor": encode_cursor([rows[-1].at.isoformat(), str(rows[-1].id)]) if more else None}
