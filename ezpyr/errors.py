"""Error pages: a missing page, an expired form."""
from pyramid.exceptions import BadCSRFToken
from pyramid.view import exception_view_config, notfound_view_config


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
