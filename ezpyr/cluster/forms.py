from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ezpyr.forms import Form, strip


class AddForm(Form):
    address = StringField("Secondary's address", [DataRequired(), Length(max=255)], filters=[strip])
    setup_key = PasswordField("Setup key", [DataRequired(), Length(max=200)], filters=[strip])
