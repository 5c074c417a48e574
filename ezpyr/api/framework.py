"""How every API endpoint behaves: JSON in and out, bearer tokens, per-token
rate limits, the slave's 409, 422 with per-field messages, 404 for unknown
ids, ETag/If-Match, keyset paging, and an activity entry for every call.

Endpoints are declared with :func:`endpoint`, which registers the view and
records what the OpenAPI document says of it (``ezpyr.api.openapi``), so the
document is made from the same declarations that serve the requests."""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError
from pyramid.response import Response
from sqlalchemy import and_, or_

from ezpyr.faces import API, offer
from ezpyr.validation import Invalid

API_PREFIX = "/api/v1"
MAX_LIMIT = 500
DEFAULT_LIMIT = 100


class ApiProblem(Exception):
    """An answer other than success; ``fields`` maps a field to its message."""

    def __init__(self, status: int, message: str, fields: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


def problem_response(status: int, message: str, fields: dict | None = None, headers: dict | None = None,
                     **extra) -> Response:
    body = {"error": message, **({"fields": fields} if fields else {}), **extra}
    response = Response(json.dumps(body), status=status, content_type="application/json", charset="utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_api(request) -> bool:
    # the raw path: a path that is not UTF-8 must not fail here
    path = request.environ.get("PATH_INFO", "")
    return path.startswith(API_PREFIX + "/") or path == API_PREFIX


@dataclass
class Endpoint:
    route: str
    pattern: str
    method: str
    summary: str
    permission: str = "admin"
    body: type[BaseModel] | str | None = None  # a str: the media type of a raw body
    response: type[BaseModel] | str | None = None  # a str: the media type of a raw answer
    status: int = 200
    write: bool = False
    query: dict = field(default_factory=dict)  # name -> (schema, description)
    etag: bool = False
    tag: str = ""
    does: str | tuple[str, ...] | None = None  # the activity action(s) it offers (ezpyr.faces)
    # changes only this node's own data (a job, a session, the link): allowed
    # on a slave, as the panel's node_local views (ezpyr.cluster.readonly)
    node_local: bool = False
    headers: dict = field(default_factory=dict)  # name -> description, of the answer's headers
    view: object = None


ENDPOINTS: list[Endpoint] = []
ROUTES: dict[str, str] = {}


def route(name: str, pattern: str) -> str:
    ROUTES[name] = API_PREFIX + pattern
    return name


# -- per-token rate limit --------------------------------------------------------

class RateLimiter:
    """A token bucket per token: ``per_minute`` calls, refilled evenly."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed; else the seconds until the next call may come."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                return 0.0
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


# -- bodies, ETags, paging ----------------------------------------------------------

def body_of(request, model: type[BaseModel]) -> BaseModel:
    try:
        raw = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "The body is not JSON.") from None
    if not isinstance(raw, dict):
        raise ApiProblem(422, "The body must be a JSON object.")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        fields = {}
        for item in error.errors():
            name = ".".join(str(part) for part in item["loc"]) or "body"
            fields.setdefault(name, item["msg"])
        raise ApiProblem(422, "Some fields are not valid.", fields) from None


# the panel's form fields that the API names otherwise
FIELD_NAMES = {"group_id": "group", "user_group_id": "user_group"}


def refused_input(error: Invalid) -> ApiProblem:
    """A service's refusal as 422, per field where the service named one."""
    fields = {}
    for each in getattr(error, "errors", None) or [error]:
        name = FIELD_NAMES.get(each.field, each.field) or "body"
        fields.setdefault(name, each.message)
    return ApiProblem(422, error.message, fields)


def etag_of(data: dict) -> str:
    return '"' + hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32] + '"'


def check_if_match(request, data: dict) -> None:
    wanted = request.headers.get("If-Match")
    if wanted is None or wanted.strip() == "*":
        return
    if etag_of(data) not in [tag.strip() for tag in wanted.split(",")]:
        raise ApiProblem(412, "The object changed since you read it (its ETag differs): read it again "
                              "and reapply your change.")


def limit_of(request) -> int:
    text = request.params.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiProblem(422, "Not a valid limit.", {"limit": f"a whole number from 1 to {MAX_LIMIT}"})
    return int(text)


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def bad_cursor() -> ApiProblem:
    return ApiProblem(422, "Not a valid cursor.", {"cursor": "use next_cursor from the previous page"})


def cursor_of(request, size: int) -> list | None:
    text = request.params.get("cursor")
    if not text:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, UnicodeDecodeError, TypeError):
        values = None
    if not isinstance(values, list) or len(values) != size or not all(isinstance(v, str) for v in values):
        raise bad_cursor()
    return values


def query_text(request, name: str = "q", limit: int = 200) -> str:
    text = request.params.get(name, "").strip()
    if len(text) > limit or any(ord(c) < 32 for c in text):
        raise ApiProblem(422, "Not a valid search.", {name: f"at most {limit} characters, no control characters"})
    return text


def one_page(request, stmt, out, key, *, as_rows: bool = False) -> dict:
    """The page of ``stmt`` (ordered, and starting after the request's
    cursor) that the request's ``limit`` asks for: each row as ``out(rows)``,
    and the next page's cursor made from ``key(last row)``. ``as_rows``: the
    statement selects columns, not one entity (``out`` gets the rows)."""
    limit = limit_of(request)
    result = request.dbsession.execute(stmt.limit(limit + 1))
    rows = list(result if as_rows else result.scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": out(rows), "next_cursor": encode_cursor(key(rows[-1])) if more else None}


def page_of(request, stmt, columns, out, *, as_rows: bool = False) -> dict:
    """One page of ``stmt`` in the order of two string ``columns`` (a name
    and the id), from the request's cursor on; each row as ``out(rows)``
    (``as_rows``: see :func:`one_page`)."""
    limit_of(request)  # a bad limit is refused before a bad cursor
    after = cursor_of(request, 2)
    first, second = columns
    stmt = stmt.order_by(None).order_by(first, second)
    if after is not None:
        stmt = stmt.where(or_(first > after[0], and_(first == after[0], second > after[1])))
    return one_page(request, stmt, out, lambda last: [getattr(last, first.key), getattr(last, second.key)],
                    as_rows=as_rows)


# the query of a paged list
PAGED = {"limit": ({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, f"items per page (default {DEFAULT_LIMIT})"),
         "cursor": ({"type": "string"}, "next_cursor of the previous page"),
         "q": ({"type": "string", "maxLength": 200}, "search in names, hosts and descriptions")}


# -- the decorator ---------------------------------------------------------------------

def endpoint(route_name: str, method: str, summary: str, **options):
    """Declares an API endpoint (recorded for the OpenAPI document) and
    registers its view; the view returns a dict (the JSON body) or a
    Response, and raises ApiProblem or Invalid for refusals. The view is
    added to the configuration by ``ezpyr.api.includeme``."""
    spec = Endpoint(route_name, ROUTES[route_name], method, summary, **options)
    ENDPOINTS.append(spec)
    offer(API, spec.does)

    def decorate(function):
        def view(request):
            token = request.environ.get("ezpyr.api_token")
            try:
                if spec.write and token is not None and token.read_only:
                    raise ApiProblem(403, f"The token {token.name!r} is read-only.")
                wait = request.registry["ezpyr.api.limiter"].take(token.id if token else "")
                if wait:
                    raise ApiProblem(429, "Too many requests for this token: slow down.",
                                     headers={"Retry-After": str(max(1, int(wait + 0.999)))})
                result = function(request)
            except Invalid as error:
                request.tm.doom()
                return _problem(refused_input(error))
            except ApiProblem as error:
                request.tm.doom()
                return _problem(error)
            if not spec.write:  # writes record their own entry, with what they changed
                request.activity.record(f"api.{route_name}", request.environ.get("PATH_INFO", "")[:255])
            if isinstance(result, Response):
                return result
            response = Response(json.dumps(result, default=str), status=spec.status,
                                content_type="application/json", charset="utf-8")
            if spec.etag and isinstance(result, dict):
                response.headers["ETag"] = etag_of(result)
            return response

        view.__name__ = function.__name__
        view.__doc__ = function.__doc__
        spec.view = view  # registered by ezpyr.api's includeme
        return view

    return decorate


def _problem(error: ApiProblem) -> Response:
    return problem_response(error.status, error.message, error.fields, error.headers)
