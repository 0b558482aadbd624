"""The endpoint form: URL, events, description, enabled. The URL's safety is checked by the service."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from app.webhooks.guard import MAX_URL_LENGTH
from app.webhooks.models import EVENT_TYPES
from app.webhooks.services import MAX_DESCRIPTION

EVENT_LABELS = {
    "generation.completed": "generation.completed — a generation finished with copy",
    "generation.failed": "generation.failed — a generation failed (quota refunded)",
    "bulk_run.completed": "bulk_run.completed — a bulk run finished",
    "quota.threshold_reached": "quota.threshold_reached — 80% of a quota used",
    "quota.exhausted": "quota.exhausted — a quota is used up",
}


class EndpointForm(FlaskForm):
    url = StringField("Endpoint URL", validators=[DataRequired("Enter the endpoint's URL."),
                                                  Length(max=MAX_URL_LENGTH)],
                      render_kw={"placeholder": "https://example.com/copydeck/webhook", "inputmode": "url"})
    description = StringField("Description", validators=[Length(max=MAX_DESCRIPTION)])
    events = SelectMultipleField(
        "Events to send", choices=[SelectChoice(e, EVENT_LABELS[e]) for e in EVENT_TYPES],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
        validators=[DataRequired("Choose at least one event to send.")])
    enabled = BooleanField("Enabled", default=True)
