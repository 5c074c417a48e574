from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from ezpyr.forms import Form, strip


class LoginForm(Form):
    username = StringField("Username", [DataRequired(), Length(max=64)], filters=[strip])
    password = PasswordField("Password", [InputRequired(), Length(max=1024)])


class CodeForm(Form):
    """A 6-digit code from the user's authenticator app."""

    code = StringField(
        "Code from your authenticator app",
        [DataRequired("Type the 6-digit code your authenticator app shows."), Length(max=20)],
        filters=[strip],
    )
