"""The gateway shell's sessions on this node: their rows and recordings.

Sessions are node-local, like every log: the Sessions page and
``ezpyr-admin CONFIG sessions …`` show the sessions that ran on this node.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ezpyr.activity.services import NoActivity
from ezpyr.gateway.models import GatewaySession
from ezpyr.meta import utcnow
from ezpyr.validation import Invalid

DEFAULT_LOG_DIR = "/var/log/ezpyr/sessions"


def log_dir(settings: dict) -> Path:
    """Where this node's gateway service writes its recordings."""
    return Path(settings.get("ezpyr.gateway.log_dir") or DEFAULT_LOG_DIR)


def recording_path(settings: dict, row: GatewaySession) -> Path | None:
    """The session's recording on this node's disk; None when it has none
    (there, or any more)."""
    if not row.recording:
        return None
    path = log_dir(settings) / row.recording
    return path if path.is_file() else None


class SessionLog:
    def __init__(self, dbsession: Session, activity=None):
        self.dbsession = dbsession
        self.activity = activity or NoActivity()  # the faces' (Services.sessions): who terminated

    def get(self, session_id: str) -> GatewaySession | None:
        return self.dbsession.get(GatewaySession, (session_id or "").strip())

    def search(self, *, username: str = "", server: str = "", state: str = "") -> Select:
        """Newest first. ``state`` is "live", "ended" or "" (both)."""
        stmt = select(GatewaySession).order_by(GatewaySession.started_at.desc(),
                                               GatewaySession.id)
        if username:
            stmt = stmt.where(GatewaySession.username.contains(username, autoescape=True))
        if server:
            stmt = stmt.where(GatewaySession.server_name.contains(server, autoescape=True))
        if state == "live":
            stmt = stmt.where(GatewaySession.ended_at.is_(None))
        elif state == "ended":
            stmt = stmt.where(GatewaySession.ended_at.is_not(None))
        return stmt

    def start(self, **fields) -> GatewaySession:
        row = GatewaySession(**fields)
        self.dbsession.add(row)
        self.dbsession.flush()
        row.recording = f"{row.id}.cast"
        return row

    def finish(self, session_id: str, *, exit_status: int | None, bytes_in: int, bytes_out: int,
               guard_refusals: int, reason: str, ended_at: dt.datetime | None = None) -> None:
        row = self.get(session_id)
        if row is None:
            return
        row.ended_at = ended_at or utcnow()
        row.exit_status = exit_status
        row.bytes_in, row.bytes_out = bytes_in, bytes_out
        row.guard_refusals = guard_refusals
        row.end_reason = reason[:255]

    def terminate(self, row: GatewaySession) -> None:
        """Ask the gateway service to end a live session (it notices within
        a second and records who ended it)."""
        if not row.live:
            raise Invalid("This session has already ended.")
        row.terminate_requested = True
        self.activity.record("gateway.session_terminate", row.id, f"{row.username} on {row.server_name}")

    def terminate_requested(self, session_ids) -> set[str]:
        """Which of these sessions an admin asked to end."""
        return set(self.dbsession.scalars(select(GatewaySession.id).where(
            GatewaySession.id.in_(list(session_ids)), GatewaySession.terminate_requested)))

    def end_stale(self) -> int:
        """Sessions a stopped gateway service left marked live: ended now."""
        rows = list(self.dbsession.scalars(
            select(GatewaySession).where(GatewaySession.ended_at.is_(None))))
        for row in rows:
            row.ended_at = utcnow()
            row.end_reason = "the gateway service stopped"
        return len(rows)
