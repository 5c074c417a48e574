"""The panel-wide settings page (admins only)."""
from __future__ import annotations

from dataclasses import asdict

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ezpyr.faces import does
from ezpyr.settings.forms import SettingsForm
from ezpyr.settings.services import LIMITS
from ezpyr.validation import Invalid


@does("settings.update")
@view_config(route_name="settings.edit", renderer="settings/edit.jinja2", permission="admin")
def edit_settings(request):
    service = request.services.settings_service
    form = SettingsForm.from_request(request, data=asdict(service.current()))
    if request.method == "POST" and form.validate():
        try:
            changed = service.change(**form.data)
        except Invalid as error:
            form.add_error(error)
        else:
            if changed:
                request.session.flash("Settings saved.", "success")
            else:
                request.session.flash("Nothing changed.", "info")
            return HTTPSeeOther(request.route_url("settings.edit"))
    return {"form": form, "limits": LIMITS}
