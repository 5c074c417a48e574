"""The API's gateway sessions (node-local: each node has the sessions that
ran on it): the same service as the Sessions page and ``ezpyr-admin
sessions``. Terminate is allowed on a slave, as on the panel."""
from __future__ import annotations

import datetime as dt

from pyramid.response import FileResponse
from sqlalchemy import and_, or_

from ezpyr.api.framework import (
    PAGED, ApiProblem, bad_cursor, cursor_of, endpoint, limit_of, one_page, query_text, route,
)
from ezpyr.gateway.models import GatewaySession
from ezpyr.gateway.schemas import SessionOut, SessionPage, TerminatedOut
from ezpyr.gateway.sessions import recording_path

SESSIONS = route("api.sessions", "/sessions")
SESSION = route("api.session", "/sessions/{id}")
RECORDING = route("api.session_recording", "/sessions/{id}/recording")
TERMINATE = route("api.session_terminate", "/sessions/{id}/terminate")

STATES = ("live", "ended")
QUERY = {"limit": PAGED["limit"], "cursor": PAGED["cursor"],
         "username": ({"type": "string", "maxLength": 64}, "username contains"),
         "server": ({"type": "string", "maxLength": 100}, "server name contains"),
         "state": ({"type": "string", "enum": list(STATES)}, "live or ended (default: both)")}


def _session(request) -> GatewaySession:
    row = request.services.sessions.get(request.matchdict["id"])
    if row is None:
        raise ApiProblem(404, "There is no session with that id on this node (sessions stay on the node they "
                              "ran on).")
    return row


def _state(request) -> str:
    state = request.params.get("state", "")
    if state not in ("", *STATES):
        raise ApiProblem(422, "Not a valid state.", {"state": "live or ended"})
    return state


def _after(request) -> tuple[dt.datetime, str] | None:
    after = cursor_of(request, 2)
    if after is None:
        return None
    try:
        return dt.datetime.fromisoformat(after[0]), after[1]
    except ValueError:
        raise bad_cursor() from None


@endpoint(SESSIONS, "GET", "This node's gateway sessions, newest first (paged)", response=SessionPage,
          query=QUERY, tag="sessions")
def list_sessions(request):
    limit_of(request)  # a bad limit is refused before a bad cursor
    after = _after(request)
    stmt = request.services.sessions.search(username=query_text(request, "username", 64),
                                            server=query_text(request, "server", 100), state=_state(request))
    if after is not None:
        started, row_id = after
        stmt = stmt.where(or_(GatewaySession.started_at < started,
                              and_(GatewaySession.started_at == started, GatewaySession.id > row_id)))
    return one_page(request, stmt, lambda rows: [SessionOut.of(r) for r in rows],
                    lambda last: [last.started_at.isoformat(), last.id])


@endpoint(SESSION, "GET", "One session", response=SessionOut, etag=True, tag="sessions")
def get_session(request):
    return SessionOut.of(_session(request))


@endpoint(RECORDING, "GET", "The session's recording (asciicast v2, as asciinema plays it)",
          response="application/x-asciicast", tag="sessions")
def get_recording(request):
    row = _session(request)
    path = recording_path(request.registry.settings, row)
    if path is None:
        raise ApiProblem(404, "The recording of this session is not on this node's disk.")
    response = FileResponse(str(path), request=request, content_type="application/x-asciicast")
    response.content_disposition = f'attachment; filename="{row.id}.cast"'
    return response


@endpoint(TERMINATE, "POST", "End a live session (the gateway service ends it within a second)",
          response=TerminatedOut, write=True, node_local=True, does="gateway.session_terminate", tag="sessions")
def terminate_session(request):
    row = _session(request)
    request.services.sessions.terminate(row)
    return {"session": SessionOut.of(row),
            "message": f"The session of {row.username} on {row.server_name} is being terminated (within a second)."}
