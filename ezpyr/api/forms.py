from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ezpyr.forms import Form, strip


class TokenForm(Form):
    name = StringField("Name", [DataRequired(), Length(max=100)], filters=[strip])
    owner = SelectField("Owner", [DataRequired()], choices=[])
    read_only = BooleanField("Read-only (can read, changes nothing)", default=True)
    expires_days = StringField("Expires after (days)", [Optional(), Length(max=4)], filters=[strip])
