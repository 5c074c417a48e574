from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from ezpyr.forms import Form


def grouped_choices(blank: str, groups: dict[str, list[tuple[str, str]]]) -> list[SelectChoice]:
    """A blank first option, then one <optgroup> per kind of row."""
    choices = [SelectChoice("", blank)]
    for label, options in groups.items():
        choices.extend(SelectChoice(value, text, optgroup=label) for value, text in options)
    return choices


class AccessRuleForm(Form):
    # The service checks the values (and says which row vanished), so a stale
    # choice gets its own message rather than WTForms' "Not a valid choice".
    subject = SelectField("Who", validate_choice=False)
    target = SelectField("May reach", validate_choice=False)
