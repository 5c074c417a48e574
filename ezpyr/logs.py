"""Log lines as JSON, for log shippers: in an ini's logging section,

    [formatter_json]
    class = ezpyr.logs.JsonFormatter

and ``formatter = json`` on a handler. Each line carries the time, level,
logger, message, this node's name and, inside a panel request, the request
id, the signed-in user and the action (the route's name)."""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os

request_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ezpyr_request", default=None)
NODE_ENV = "EZPYR_NODE_NAME"


def set_node_name(name: str) -> None:
    """The node name lines carry outside requests (worker, CLIs, ezsh)."""
    if name:
        os.environ[NODE_ENV] = name


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": os.environ.get(NODE_ENV, ""),
            "process": record.process,
            "thread": record.threadName,
        }
        context = request_context.get()
        if context is not None:
            request = context.get("request")
            line["node"] = context.get("node") or line["node"]
            line["request_id"] = context.get("request_id")
            if request is not None:
                # only what is known already: logging never queries the database
                user = request.__dict__.get("authenticated_user")
                line["user"] = getattr(user, "username", None)
                route = getattr(request, "matched_route", None)
                line["action"] = route.name if route is not None else None
                line["method"] = request.method
                line["path"] = request.path
        if getattr(record, "activity", None):  # an activity log entry names its own action and user
            line["action"] = record.activity
            line["user"] = record.actor or line.get("user")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
