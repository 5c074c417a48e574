"""Writing and reading the web activity log (node-local)."""
from __future__ import annotations

import csv
import io
import logging

from sqlalchemy import Select, select

from ezpyr.activity.models import ActivityEntry
from ezpyr.meta import utcnow

log = logging.getLogger(__name__)
ENTRIES = ActivityEntry.__table__


class NoActivity:
    """Records nothing: the activity of a service made outside a unit of
    work (a test arranging data, first-run setup). The faces always pass
    ``Services.activity``."""

    def record(self, action: str, target: str = "", details: str = "", **_who) -> None:
        return None


class ActivityLog:
    def __init__(self, dbsession, node_name: str):
        self.dbsession = dbsession
        self.node_name = node_name

    def record(self, action: str, target: str = "", details: str = "", *,
               user=None, username: str | None = None, remote_addr: str = "", user_id: str | None = None) -> None:
        """Writes the entry in the session's transaction: it commits (or
        rolls back) with the work it records, and is durable when that is.
        ``user_id`` names the user without their row at hand (a job)."""
        username = username if username is not None else (user.username if user else "")
        values = {
            "at": utcnow(),
            "action": action,
            "target": target[:255],
            "details": details,
            "user_id": user.id if user is not None else user_id,
            "username": username,
            "remote_addr": remote_addr or "",
            "node_name": self.node_name,
        }
        # a plain INSERT now, not an object for the session to flush: every
        # API call (reads too) writes one, and the flush cost more than the
        # rest of a small read
        self.dbsession.connection().execute(ENTRIES.insert(), values)
        # the activity as a log line too (JSON logs carry user and action as fields)
        log.info("%s %s by %s", action, values["target"], username or "-",
                 extra={"activity": action, "actor": username})

    def query(self, username: str = "", action: str = "") -> Select:
        stmt = select(ActivityEntry).order_by(ActivityEntry.at.desc(), ActivityEntry.id.desc())
        if username:
            stmt = stmt.where(ActivityEntry.username == username)
        if action:
            stmt = stmt.where(ActivityEntry.action == action)
        return stmt

    def actions(self) -> list[str]:
        return list(self.dbsession.scalars(
            select(ActivityEntry.action).distinct().order_by(ActivityEntry.action)
        ))

    def export_csv(self, username: str = "", action: str = "") -> str:
        """The (filtered) log as CSV text, newest first, safe to open in a
        spreadsheet (see :func:`csv_cell`)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        rows = self.dbsession.execute(self.query(username, action).execution_options(yield_per=1000))
        for entry in rows.scalars():
            writer.writerow([csv_cell(value) for value in (
                entry.at.strftime("%Y-%m-%d %H:%M:%S"), entry.username, entry.action,
                entry.target, entry.details, entry.remote_addr, entry.node_name,
            )])
        return out.getvalue()


CSV_COLUMNS = ("when (UTC)", "who", "action", "target", "details", "from address", "node")

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A value as a CSV cell that a spreadsheet shows as text: a leading
    formula character gets a ``'`` in front (usernames, targets and details
    can hold what a visitor typed, e.g. a failed login's username)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text

