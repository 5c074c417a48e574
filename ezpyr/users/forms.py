from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from ezpyr.forms import Form, strip


class UserGroupForm(Form):
    name = StringField("Name", [DataRequired(), Length(max=100)], filters=[strip])
    description = TextAreaField("Description", [Length(max=2000)], filters=[strip])


# -- users (admins) -------------------------------------------------------------

ROLE_CHOICES = [SelectChoice("user", "user: own profile, keys and servers"),
                SelectChoice("admin", "admin: everything")]
SAME_PASSWORD = "The two passwords differ; type the same password in both boxes."


class UserForm(Form):
    username = StringField("Username", [DataRequired()], filters=[strip])
    full_name = StringField("Full name", [Length(max=200)], filters=[strip])
    email = StringField("E-mail", [Length(max=254)], filters=[strip])
    # The service checks role and group (a stale group gets its own message).
    role = SelectField("Role", choices=ROLE_CHOICES, default="user", validate_choice=False)
    group_id = SelectField("User group", validate_choice=False)


class NewUserForm(UserForm):
    password = PasswordField("Initial password", [DataRequired()])
    confirm = PasswordField("Initial password again",
                            [DataRequired(), EqualTo("password", message=SAME_PASSWORD)])


class ResetPasswordForm(Form):
    password = PasswordField("New password", [Optional()])
    confirm = PasswordField("New password again", [EqualTo("password", message=SAME_PASSWORD)])


# -- SSH keys and the user's own password --------------------------------------------

class KeyForm(Form):
    name = StringField("Name", [Length(max=100)], filters=[strip])
    public_key = TextAreaField("Public key", [DataRequired()], filters=[strip])


class ChangePasswordForm(Form):
    current_password = PasswordField("Current password", [DataRequired()])
    new_password = PasswordField("New password", [DataRequired()])
    confirm = PasswordField("New password again",
                            [DataRequired(), EqualTo("new_password", message=SAME_PASSWORD)])
