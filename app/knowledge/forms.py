"""Knowledge forms: an item typed in, an upload, and the knowledge fields of the generate form."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.knowledge.models import KINDS
from app.knowledge.services import MAX_BODY_CHARS, MAX_TITLE, Choice

KIND_CHOICES = [SelectChoice(key, label) for key, label in KINDS.items()]
TAGS_HELP = "Comma-separated, e.g. bottles, summer launch. Pick tags on the generate form to use these items."


class ItemForm(FlaskForm):
    kind = SelectField("Kind", choices=KIND_CHOICES, default="product", validate_choice=True)
    title = StringField("Title", validators=[DataRequired(message="Give the item a title."),
                                             Length(max=MAX_TITLE, message=f"At most {MAX_TITLE} characters.")])
    body = TextAreaField("Text", validators=[
        DataRequired(message="Write the facts: what the copy may say."),
        Length(max=MAX_BODY_CHARS, message=f"At most {MAX_BODY_CHARS:,} characters; split it into several items.")],
        description="Markdown headings (# Specs) and blank lines split it into passages.",
        render_kw={"rows": 12})
    tags = StringField("Tags", validators=[Length(max=500)], description=TAGS_HELP)


class UploadForm(FlaskForm):
    kind = SelectField("Kind", choices=KIND_CHOICES, default="product", validate_choice=True)
    file = FileField("File", validators=[FileRequired(message="Choose a file to upload.")],
                     description="Markdown (.md), plain text (.txt), PDF (.pdf) or Word (.docx).",
                     render_kw={"accept": ".md,.markdown,.txt,.pdf,.docx"})
    title = StringField("Title", validators=[Optional(), Length(max=MAX_TITLE)],
                        description="Leave empty to use the file's name.")
    tags = StringField("Tags", validators=[Length(max=500)], description=TAGS_HELP)


MODES = [SelectChoice("auto", "Let Copydeck choose the relevant facts"),
         SelectChoice("pick", "Use the items or tags I pick"),
         SelectChoice("none", "No facts")]


def generate_fields(items: list, tags: list[str]) -> dict[str, Any]:
    """The generate form's knowledge fields (added to its class), for the workspace's active items."""
    def validate_knowledge_mode(form, field):
        if field.data == "pick" and not (form.knowledge_items.data or form.knowledge_tags.data):
            raise ValidationError("Pick at least one item or tag, or let Copydeck choose.")

    return {
        "knowledge_mode": RadioField("Facts from your knowledge base", choices=MODES, default="auto",
                                     validate_choice=True),
        "knowledge_items": SelectMultipleField(
            "Items", coerce=int, choices=[SelectChoice(i.id, f"{i.title} ({i.kind_label})") for i in items],
            widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(), validate_choice=True),
        "knowledge_tags": SelectMultipleField(
            "Tags", choices=[SelectChoice(t, t) for t in tags],
            widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(), validate_choice=True),
        "validate_knowledge_mode": validate_knowledge_mode,
    }


def choice_from(form) -> Choice | None:
    """What the generate form asked for, or None when it had no knowledge fields."""
    if not hasattr(form, "knowledge_mode"):
        return None
    mode = form.knowledge_mode.data or "auto"
    if mode == "pick":
        return Choice(mode="pick", item_ids=tuple(form.knowledge_items.data or ()),
                      tags=tuple(form.knowledge_tags.data or ()))
    return Choice(mode=mode)
