"""Brand voice form."""
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

LONG = [Length(max=2000, message="At most 2,000 characters.")]


class BrandVoiceForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the voice a name."), Length(max=80)])
    description = TextAreaField("About the brand", validators=LONG)
    tone_rules = TextAreaField("Tone rules", validators=LONG, description="e.g. Confident, never smug. Short sentences.")
    words_to_use = TextAreaField("Words to use", validators=LONG)
    words_to_avoid = TextAreaField("Words to avoid", validators=LONG)
    audience = TextAreaField("Audience", validators=LONG)
    key_facts = TextAreaField("Key product facts", validators=LONG,
                              description="Facts the copy may state: prices, features, proof points.")
