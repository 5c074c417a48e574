from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ezpyr.forms import Form, strip


class CommandRuleForm(Form):
    # The service checks the group (and says when it vanished meanwhile).
    user_group_id = SelectField("User group", validate_choice=False)
    # Not stripped: a space can be part of the pattern ("^rm " is not "^rm").
    pattern = StringField("Pattern", [DataRequired("A pattern is required.")])
    description = TextAreaField("Description", [Length(max=2000)], filters=[strip])


class CommandTestForm(Form):
    """The test box (a GET form: it changes nothing)."""

    user_group_id = SelectField("User group", validate_choice=False)
    username = StringField("or a user", filters=[strip])
    command = StringField("Command")
