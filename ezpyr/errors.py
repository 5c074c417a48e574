"""Error pages: a missing page, an expired form; and what every error page
may read.

An error page runs after the request's transaction failed or is about to be
rolled back: a refused commit (a switchover demoted this node while the
request was in flight), a database error in the view. That transaction must
not be touched again (``TransactionFailedError``, a 500 in place of the real
answer), so every exception view reads through a session of its own, outside
the request's transaction, and never writes.
"""
from pyramid.exceptions import BadCSRFToken
from pyramid.view import exception_view_config, notfound_view_config


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
        return view(context, request)

    return wrapper


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


def includeme(config):
    config.add_view_deriver(own_session_for_error_pages)
