"""One page of a query's results."""
from __future__ import annotations

import math

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

PER_PAGE = 25


class Page:
    def __init__(self, dbsession: Session, stmt: Select, page: int = 1, per_page: int = PER_PAGE):
        self.per_page = per_page
        self.total = dbsession.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        self.pages = max(1, math.ceil(self.total / per_page))
        self.number = min(max(1, page), self.pages)
        offset = (self.number - 1) * per_page
        self.items = list(dbsession.scalars(stmt.limit(per_page).offset(offset)))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def counts_by(dbsession: Session, column, ids: list[str]) -> dict[str, int]:
    """How many rows have each of ``ids`` in ``column`` (e.g. the servers
    of each group on a page), in one query; 0 for those with none."""
    if not ids:
        return {}
    counts = dict.fromkeys(ids, 0)
    counts.update(dbsession.execute(
        select(column, func.count()).where(column.in_(ids)).group_by(column)).all())
    return counts


def page_number(request) -> int:
    try:
        return max(1, int(request.params.get("page", 1)))
    except ValueError:
        return 1


# Search boxes take at most this many characters: longer text is cut here
# (SQLite refuses a LIKE pattern past 50,000 bytes, and no name is this long).
MAX_SEARCH = 200


def cap_search(text: str | None) -> str:
    """Search text as every list searches it: trimmed, at most MAX_SEARCH characters."""
    return (text or "").strip()[:MAX_SEARCH].strip()


def search_text(request, name: str = "q") -> str:
    """The search box's text of a list page (see :func:`cap_search`)."""
    value = request.params.get(name, "")
    return cap_search(value if isinstance(value, str) else "")
