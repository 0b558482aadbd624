"""Admin console forms."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from app.bounds import WholeNumberField


class SizeWorkspaceForm(FlaskForm):
    plan = StringField("Plan", validators=[InputRequired(message="Name the plan, e.g. free or pro."),
                                           Length(max=40), Regexp(r"^[a-z0-9_-]+$", message="Use lowercase letters, digits, - or _.")])
    seats = WholeNumberField("Seats", validators=[InputRequired(message="Seats must be a whole number."),
                                              NumberRange(1, 10_000, message="From 1 to 10,000 seats.")])
    generations_per_seat = WholeNumberField(
        "Generations per seat per period",
        validators=[InputRequired(message="Generations must be a whole number."),
                    NumberRange(0, 1_000_000, message="From 0 to 1,000,000.")])
    force = BooleanField("Allow fewer seats than members and pending invitations")


class LLMSettingsForm(FlaskForm):
    default_model = StringField("Default model", validators=[Optional(), Length(max=120)],
                                description="Leave empty to use OPENAI_MODEL from the environment.")


class WorkspaceModelsForm(FlaskForm):
    models = TextAreaField(
        "Models workspace templates may use", validators=[Optional(), Length(max=10_000)], render_kw={"rows": 5},
        description="One a line: the model name and its max-tokens ceiling, e.g. 'gpt-4o-mini 1000'. "
                    "Empty: workspace templates use only the site default model, up to LLM_MAX_TOKENS.")


class ImportForm(FlaskForm):
    file = FileField("Template file", validators=[FileRequired(message="Choose a .yaml or .zip file.")])
    update_existing = BooleanField("Update existing templates (a file whose slug exists becomes its new version)")
    publish = BooleanField("Publish what is imported", default=True)
