"""The generate form, built from a template version's field schema."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.bounds import WholeNumberField
from app.catalog.models import TemplateVersion
from app.generation.options import CREATIVITY, MAX_VARIANTS
from app.generation.services import LANGUAGES, TONES


class GenerateFormBase(FlaskForm):
    tone = SelectField("Tone of voice", choices=[SelectChoice(t) for t in TONES], default="Professional")
    language = SelectField("Output language", choices=[SelectChoice(lang) for lang in LANGUAGES], default="English")
    variant_count = WholeNumberField(
        "Variants", validators=[InputRequired(message="Choose how many variants (1 to 5)."),
                                NumberRange(1, MAX_VARIANTS, message=f"Choose from 1 to {MAX_VARIANTS} variants.")],
    )
    creativity = SelectField(
        "Creativity", choices=[SelectChoice(k, k.capitalize()) for k in CREATIVITY], default="balanced"
    )


def _field_for(spec: dict[str, Any]):
    label, help_text = spec["label"], spec.get("help", "")
    required = spec.get("required", False)
    checks: list = [DataRequired(message=f"{label} is required.")] if required else [Optional()]
    render_kw = {"placeholder": spec.get("placeholder", "")}
    if spec["type"] in ("text", "textarea"):
        max_length = spec.get("max_length", 200)
        checks.append(Length(max=max_length, message=f"{label} can be at most {max_length} characters."))
        render_kw["maxlength"] = max_length
        cls = StringField if spec["type"] == "text" else TextAreaField
        return cls(label, validators=checks, description=help_text, render_kw=render_kw,
                   filters=[lambda v: v.strip() if isinstance(v, str) else v])
    if spec["type"] == "select":
        choices = [SelectChoice(o) for o in spec["options"]]
        if not required:
            choices = [SelectChoice("", "—")] + choices
        return SelectField(label, choices=choices, validators=checks, description=help_text,
                           validate_choice=True)
    low, high = spec.get("min", 0), spec.get("max", 1000)
    checks = ([InputRequired(message=f"{label} must be a number.")] if required else [Optional()]) + [
        NumberRange(low, high, message=f"{label} must be a number from {low} to {high}.")
    ]
    return WholeNumberField(label, validators=checks, description=help_text, render_kw=render_kw)


def build_generate_form(version: TemplateVersion, brand_voices=(), knowledge=None, **kwargs) -> FlaskForm:
    """A form class with one input per template field, then the common settings.

    `knowledge`: (items, tags) of the workspace's knowledge base, or None for no knowledge fields."""
    attrs = {f"f_{spec['name']}": _field_for(spec) for spec in version.fields}
    if knowledge:
        from app.knowledge.forms import generate_fields
        attrs.update(generate_fields(*knowledge))
    attrs["brand_voice"] = SelectField(
        "Brand voice", coerce=int, validate_choice=True,
        choices=[SelectChoice(0, "None")] + [SelectChoice(v.id, v.name) for v in brand_voices], default=0,
    )
    form_class = type("GenerateForm", (GenerateFormBase,), attrs)
    form = form_class(**kwargs)
    if form.variant_count.data is None and not form.is_submitted():
        form.variant_count.data = version.default_variants
    return form


def template_fields(form: FlaskForm, version: TemplateVersion) -> list:
    return [form[f"f_{spec['name']}"] for spec in version.fields]


def values_from(form: FlaskForm, version: TemplateVersion) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in version.fields:
        value = form[f"f_{spec['name']}"].data
        values[spec["name"]] = "" if value is None else value
    return values
