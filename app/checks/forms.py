"""Style-guide forms; the services hold the rules (empty, duplicated, too long)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from app.bounds import WholeNumberField
from app.checks.services import MAX_GRADE, MAX_PHRASE, MIN_GRADE


class EntryForm(FlaskForm):
    kind = SelectField("Kind", choices=[SelectChoice("banned", "Banned word or phrase"),
                                        SelectChoice("spelling", "Required spelling"),
                                        SelectChoice("ai_tell", "AI tell")])
    # No Length validator: the service refuses over-long entries with the reason (maxlength is a hint).
    phrase = StringField("Word, phrase or name", render_kw={"maxlength": MAX_PHRASE})
    replacement = StringField("Suggested replacement (optional)", render_kw={"maxlength": MAX_PHRASE})


class SettingsForm(FlaskForm):
    ai_tells = BooleanField("Check for AI tells")
    claims = BooleanField("Check claims against inputs, brand voice and knowledge")
    flag_action = SelectField("When a variant is flagged", choices=[
        SelectChoice("show", "Show the flags"),
        SelectChoice("hold", "Hold it: copy and export stay off until someone marks it checked")])
    max_grade = WholeNumberField("Target reading level (grade, English copy)",
                             validators=[Optional(), NumberRange(MIN_GRADE, MAX_GRADE)])


class VoiceGradeForm(FlaskForm):
    max_grade = WholeNumberField("Target grade", validators=[Optional(), NumberRange(MIN_GRADE, MAX_GRADE)])
