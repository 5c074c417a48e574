"""``ezpyr-admin CONFIG activity list``: this node's activity log on the command line (read only)."""
from __future__ import annotations

from ezpyr.activity.schemas import ActivityOut
from ezpyr.cli import Admin, Done, table
from ezpyr.validation import Invalid

# --json writes the API's shape
entry_data = ActivityOut.of


def activity_list(a: Admin, args) -> Done:
    if args.limit < 1:
        raise Invalid("--limit: a whole number from 1 up.")
    stmt = a.services.activity.log.query(username=(args.user or "").strip(), action=(args.action or "").strip())
    entries = [entry_data(e) for e in a.dbsession.scalars(stmt.limit(args.limit))]
    text = table(["when (utc)", "who", "action", "target", "details", "from"],
                 [[e["at"][:19].replace("T", " "), e["username"] or "-", e["action"], e["target"], e["details"],
                   e["remote_addr"]] for e in entries], "no activity on this node")
    return Done(text, {"entries": entries, "node": a.env.settings.get("ezpyr.node_name", "")})


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    activity = cli.area("activity", "this node's activity log (who did what; read only)")
    p = cli.action(activity, "list", activity_list, "entries, newest first")
    p.add_argument("--user", help="only this user's entries (exact username; cli for ezpyr-admin)")
    p.add_argument("--action", help="only this action, e.g. server.create")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
