"""Error pages: a missing page, an expired form; and what every error page
may read.

An error page runs after the request's transaction failed or is about to be
rolled back: a refused commit (a switchover demoted this node while the
request was in flight), a database error in the view. That transaction must
not be touched again (``TransactionFailedError``, a 500 in place of the real
answer), so every exception view reads through a session of its own, outside
the request's transaction, and never writes.
"""
from pyramid.exceptions import BadCSRFToken, URLDecodeError
from pyramid.renderers import render_to_response
from pyramid.view import exception_view_config, notfound_view_config
from sqlalchemy.exc import DBAPIError

# MySQL/MariaDB client errors that mean "no server to talk to": cannot
# connect, server has gone away, connection lost during a query.
MYSQL_UNREACHABLE = {2002, 2003, 2005, 2006, 2013}
SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error")


def outside_session(request):
    """A session that is not joined to the request's transaction; rolled
    back and closed when the request ends."""
    session = request.registry["dbsession_factory"]()
    request.add_finished_callback(lambda _request: (session.rollback(), session.close()))
    return session


def own_session_for_error_pages(view, info):
    """Exception views read through a session of their own (see above)."""
    if not info.exception_only:
        return view

    def wrapper(context, request):
        request.dbsession = outside_session(request)
        if "services" in request.__dict__:  # made on the failed session: make them anew
            request.services = request.services.on(request.dbsession)
        return view(context, request)

    return wrapper


def database_unreachable(error: DBAPIError) -> bool:
    """Whether ``error`` says the database cannot be reached at all (as
    opposed to a refused statement, a deadlock or a lock timeout)."""
    if error.connection_invalidated:
        return True
    original = error.orig
    code = original.args[0] if getattr(original, "args", None) else None
    if isinstance(code, int):
        return code in MYSQL_UNREACHABLE
    return str(original).lower().startswith(SQLITE_UNREACHABLE)


@exception_view_config(DBAPIError)
def database_down(exc, request):
    """A plain page (it reads nothing from the database) with 503 when the
    node's database cannot be reached; any other database error is left to
    propagate as before."""
    if not database_unreachable(exc):
        raise exc
    response = render_to_response(
        "errors/database_unreachable.jinja2",
        {"node_name": request.registry.settings.get("ezpyr.node_name", "")},
        request=request)
    response.status = 503
    response.headers["Retry-After"] = "30"
    return response


@notfound_view_config(renderer="errors/notfound.jinja2")
def notfound(exc, request):
    request.response.status = 404
    detail = getattr(exc, "detail", None)
    return {"message": detail if isinstance(detail, str) and detail else "There is no such page."}


@exception_view_config(BadCSRFToken, renderer="errors/bad_request.jinja2")
def bad_csrf(exc, request):
    request.response.status = 400
    return {"message": "This form has expired or was not sent from this panel. "
                       "Go back, reload the page and try again. Nothing was changed."}


@exception_view_config(URLDecodeError, renderer="errors/bad_request.jinja2")
@exception_view_config(UnicodeDecodeError, renderer="errors/bad_request.jinja2")
def undecodable(exc, request):
    """A path, query or form that is not UTF-8: nobody's browser sends one."""
    request.response.status = 400
    return {"message": "This address or form is not valid UTF-8 text. Nothing was changed."}


def includeme(config):
    config.add_view_deriver(own_session_for_error_pages)
