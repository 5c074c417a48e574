"""``ezpyr-admin CONFIG sessions …``: the gateway's sessions on the command line."""
from __future__ import annotations

from pathlib import Path

from ezpyr.cli import Admin, Done, table
from ezpyr.gateway.schemas import SessionOut
from ezpyr.gateway.sessions import log_dir
from ezpyr.validation import Invalid


# -- gateway sessions (node-local) ---------------------------------------------------------

# --json writes the API's shape
session_data = SessionOut.of


def a_session(a: Admin, session_id: str):
    row = a.services.sessions.get(session_id)
    if row is None:
        raise Invalid(f"No session {session_id!r} on this node (sessions stay on the node they "
                      "ran on; see sessions list).")
    return row


def sessions_list(a: Admin, args) -> Done:
    stmt = a.services.sessions.search(username=(args.user or "").strip(),
                                      server=(args.server or "").strip(), state=args.state or "")
    rows = [session_data(r) for r in a.dbsession.scalars(stmt.limit(args.limit))]
    text = table(["id", "started (utc)", "user", "server", "state", "exit", "refusals", "command"],
                 [[r["id"], r["started_at"][:19], r["username"], r["server"], r["state"],
                   r["exit_status"], r["guard_refusals"], r["command"] or "(interactive)"]
                  for r in rows], "no sessions on this node")
    return Done(text, {"sessions": rows, "node": a.env.settings.get("ezpyr.node_name", "")})


def sessions_show(a: Admin, args) -> Done:
    data = session_data(a_session(a, args.session_id))
    return Done([f"{k}: {'' if v is None else v}" for k, v in data.items()], {"session": data})


def sessions_terminate(a: Admin, args) -> Done:
    row = a_session(a, args.session_id)
    a.services.sessions.terminate(row)
    message = (f"session {row.id} of {row.username} on {row.server_name} is being terminated "
               "(the gateway service ends it within a second)")
    return Done(message, {"message": message, "session": row.id})


def sessions_export(a: Admin, args) -> Done:
    row = a_session(a, args.session_id)
    path = log_dir(a.env.settings) / row.recording
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise Invalid(f"cannot read the recording {path}: {error.strerror}.") from None
    if args.output is None:
        return Done(text, {"cast": text}, raw=True)
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise Invalid(f"--output: cannot write {args.output}: {error.strerror}.") from None
    message = f"wrote the recording of session {row.id} to {args.output}"
    return Done(message, {"message": message, "output": args.output})


def register(cli) -> None:
    """Adds this area's subcommands to ezpyr-admin's parser."""
    sessions = cli.area("sessions", "the gateway's sessions on this node (logs stay on the node "
                        "where the session ran)")
    p = cli.action(sessions, "list", sessions_list, "sessions, newest first")
    p.add_argument("--user", help="username contains")
    p.add_argument("--server", help="server name contains")
    p.add_argument("--state", choices=("live", "ended"))
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p = cli.action(sessions, "show", sessions_show, "one session's details")
    p.add_argument("session_id")
    p = cli.action(sessions, "terminate", sessions_terminate, "end a live session",
                   does="gateway.session_terminate")
    p.add_argument("session_id")
    p = cli.action(sessions, "export", sessions_export, "a session's recording (asciicast v2)")
    p.add_argument("session_id")
    p.add_argument("--output", metavar="FILE", help="write to FILE (default: standard output)")
