from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config



@view_config(route_name="home", permission="user", renderer="home/admin.jinja2")
def home(request):
    """Admins get the overview; users go to their servers (which says how to
    reach the gateway)."""
    if not request.authenticated_user.is_admin:
        return HTTPSeeOther(request.route_url("profile.servers"))
    return {"overview": request.services.home.overview(request.this_node is not None)}
