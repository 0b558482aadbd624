"""The Team → API keys form."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.api.models import SCOPES

SCOPE_HELP = {"generate": "write copy, favourite, rate and edit variants", "read": "templates, generations, usage",
              "bulk": "bulk runs", "webhooks": "webhook endpoints"}


class ApiKeyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the key a name."), Length(max=80)],
                       render_kw={"maxlength": 80, "placeholder": "e.g. Shop backend"})
    scopes = SelectMultipleField("Scopes", choices=[SelectChoice(s, f"{s} — {SCOPE_HELP[s]}") for s in SCOPES],
                                 default=["generate", "read"], option_widget=CheckboxInput(),
                                 widget=ListWidget(prefix_label=False))
    charge_user_id = SelectField("Charges", coerce=int, validate_choice=True)
    expires_on = DateField("Expires on (optional)", validators=[Optional()])
