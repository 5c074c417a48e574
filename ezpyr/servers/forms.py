from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ezpyr.forms import Form, strip
from ezpyr.servers.services import DESCRIPTION_MAX, GROUP_NAME_MAX


class ServerGroupForm(Form):
    name = StringField("Name", [DataRequired(), Length(max=GROUP_NAME_MAX)], filters=[strip])
    description = TextAreaField("Description", [Length(max=DESCRIPTION_MAX)], filters=[strip])


AUTH_CHOICES = [
    SelectChoice("key", "Gateway key"),
    SelectChoice("password", "Password (stored encrypted)"),
]


class ServerForm(Form):
    # ServerService checks every value; the form only asks for the required ones.
    name = StringField("Name", [DataRequired()], filters=[strip])
    host = StringField("Host", [DataRequired()], filters=[strip])
    port = StringField("Port", [DataRequired()], filters=[strip], default="22")
    remote_user = StringField("Remote user", [DataRequired()], filters=[strip], default="root")
    auth_method = SelectField("Authentication", choices=AUTH_CHOICES, default="key",
                              validate_choice=False)
    # Never rendered with its value (PasswordField), never stripped.
    password = PasswordField("Password")
    group_id = SelectField("Server group", validate_choice=False)
    description = TextAreaField("Description", [Length(max=DESCRIPTION_MAX)], filters=[strip])
