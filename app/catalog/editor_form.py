"""The template editor's form: request data <-> the template data format.

The field-schema builder posts a variable number of fields (fields-<i>-<key>),
so this is parsed by hand rather than with a WTForms class; CSRF is still
checked on every POST by the global CSRFProtect. What the admin typed is kept
as typed (strings) so a refused form comes back exactly as it was sent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from app.bounds import whole_number
from app.catalog.models import CATEGORIES
from app.catalog.rendering import PromptError
from app.catalog.schema import (CONTEXT_VARIABLES, FIELD_TYPES, FORMATS, TEXT_MAX, TemplateDataError,
                                check_prompt, validate_field)

MAX_FIELDS = 30
FIELD_KEYS = ("name", "label", "type", "required", "max_length", "placeholder", "help", "options", "min", "max")
ROW_KEYS = FIELD_KEYS + ("sample",)  # the sample value feeds the preview and the test run
SAMPLE_SETTINGS = {"tone": "Friendly", "language": "English", "brand_voice": "", "variant_count": "3"}


@dataclass
class EditorState:
    meta: dict[str, str] = field(default_factory=lambda: {
        "slug": "", "name": "", "category": CATEGORIES[0], "description": "", "icon": "sparkles"})
    fields: list[dict[str, str]] = field(default_factory=list)
    system_prompt: str = ""
    user_prompt: str = ""
    output: dict[str, str] = field(default_factory=lambda: {"variants": "3", "max_chars": "", "format": "single"})
    llm: dict[str, str] = field(default_factory=lambda: {"model": "", "temperature": "", "max_tokens": ""})
    samples: dict[str, str] = field(default_factory=lambda: dict(SAMPLE_SETTINGS))
    message: str = ""
    publish: bool = False

    def variables(self) -> list[tuple[str, str]]:
        """What the prompts may use: the fields, then the generate form's settings."""
        named = [(f["name"], f["label"] or f["type"]) for f in self.fields if f.get("name")]
        return named + list(CONTEXT_VARIABLES.items())


def blank_field(n: int) -> dict[str, str]:
    return {"name": f"field_{n}", "label": "", "type": "text", "required": "", "max_length": "",
            "placeholder": "", "help": "", "options": "", "min": "", "max": "", "sample": ""}


def default_sample(spec: dict[str, Any]) -> str:
    if spec.get("type") == "select":
        return (spec.get("options") or [""])[0]
    if spec.get("type") == "number":
        return str(spec.get("min", 1))
    return f"Sample {str(spec.get('label') or spec.get('name')).lower()}"


def from_data(data: dict[str, Any]) -> EditorState:
    """An editor state showing a saved version (data format)."""
    state = EditorState()
    state.meta = {k: str(data.get(k) or "") for k in ("slug", "name", "category", "description", "icon")}
    for spec in data["fields"]:
        row = blank_field(0)
        for key in FIELD_KEYS:
            value = spec.get(key)
            if key == "options":
                row[key] = "\n".join(value or [])
            elif key == "required":
                row[key] = "1" if value else ""
            else:
                row[key] = "" if value is None else str(value)
        row["sample"] = default_sample(spec)
        state.fields.append(row)
    state.system_prompt, state.user_prompt = data["system_prompt"], data["user_prompt"]
    output = data["output"]
    state.output = {"variants": str(output.get("variants", 3)), "format": output.get("format", "single"),
                    "max_chars": "" if output.get("max_chars") is None else str(output["max_chars"])}
    llm = data.get("llm") or {}
    state.llm = {k: "" if llm.get(k) is None else str(llm[k]) for k in ("model", "temperature", "max_tokens")}
    return state


def from_form(form: Mapping[str, str]) -> EditorState:
    state = EditorState()
    for key in state.meta:
        state.meta[key] = form.get(key, state.meta[key] if key != "slug" else "").strip()
    indices = sorted({int(m.group(1)) for key in form if (m := re.match(r"^fields-([0-9]{1,4})-name$", key))})
    for i in indices[:MAX_FIELDS]:
        row = {key: (form.get(f"fields-{i}-{key}") or "") for key in ROW_KEYS}
        row = {k: v if k in ("options", "help", "placeholder", "label", "sample") else v.strip()
               for k, v in row.items()}
        row["required"] = "1" if row["required"] else ""
        state.fields.append(row)
    state.system_prompt = form.get("system_prompt", "").replace("\r\n", "\n")
    state.user_prompt = form.get("user_prompt", "").replace("\r\n", "\n")
    for key in state.output:
        state.output[key] = form.get(f"output-{key}", state.output[key]).strip()
    for key in state.llm:
        state.llm[key] = form.get(f"llm-{key}", "").strip()
    for key, default in SAMPLE_SETTINGS.items():
        state.samples[key] = form.get(f"sample-{key}", default)
    state.message = form.get("message", "").strip()
    state.publish = bool(form.get("publish"))
    return state


def apply_op(state: EditorState, op: str) -> bool:
    """The builder's buttons: add, remove, move up/down. True if one was applied."""
    if op == "add":
        if len(state.fields) < MAX_FIELDS:
            state.fields.append(blank_field(len(state.fields) + 1))
        return True
    match = re.match(r"^(remove|up|down)-([0-9]{1,4})$", op or "")
    if not match:
        return False
    verb, i = match.group(1), int(match.group(2))
    if not 0 <= i < len(state.fields):
        return True
    if verb == "remove":
        state.fields.pop(i)
    elif verb == "up" and i > 0:
        state.fields[i - 1], state.fields[i] = state.fields[i], state.fields[i - 1]
    elif verb == "down" and i < len(state.fields) - 1:
        state.fields[i + 1], state.fields[i] = state.fields[i], state.fields[i + 1]
    return True


def _int(value: str, what: str, errors: list[str]) -> int | None:
    if value == "":
        return None
    try:
        return whole_number(value)
    except ValueError:
        errors.append(f"{what} must be a whole number written with the digits 0-9.")
        return None


def _float(value: str, what: str, errors: list[str]) -> float | None:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        errors.append(f"{what} must be a number.")
        return None


def field_spec(row: dict[str, str], n: int, errors: list[str]) -> dict[str, Any]:
    """One builder row in the data format (only the keys that apply to its type)."""
    spec: dict[str, Any] = {"name": row["name"], "label": row["label"], "type": row["type"],
                            "required": row["required"] == "1"}
    if row["placeholder"]:
        spec["placeholder"] = row["placeholder"]
    if row["help"]:
        spec["help"] = row["help"]
    if row["type"] in TEXT_MAX:
        max_length = _int(row["max_length"], f"Field {n}: max length", errors)
        spec["max_length"] = TEXT_MAX[row["type"]] if max_length is None else max_length
    elif row["type"] == "select":
        spec["options"] = [line.strip() for line in row["options"].splitlines() if line.strip()]
    elif row["type"] == "number":
        for key in ("min", "max"):
            value = _int(row[key], f"Field {n}: {key}", errors)
            if value is not None:
                spec[key] = value
    return spec


def to_data(state: EditorState, errors: list[str]) -> dict[str, Any]:
    """The data format for validate_template_data; conversion problems go to errors."""
    fields = [field_spec(row, n + 1, errors) for n, row in enumerate(state.fields)]
    output: dict[str, Any] = {"format": state.output["format"]}
    variants = _int(state.output["variants"], "Default variant count", errors)
    output["variants"] = 3 if variants is None else variants
    output["max_chars"] = _int(state.output["max_chars"], "Character limit", errors)
    llm: dict[str, Any] = {}
    if state.llm["model"]:
        llm["model"] = state.llm["model"]
    temperature = _float(state.llm["temperature"], "Temperature", errors)
    if temperature is not None:
        llm["temperature"] = temperature
    max_tokens = _int(state.llm["max_tokens"], "Max tokens", errors)
    if max_tokens is not None:
        llm["max_tokens"] = max_tokens
    data: dict[str, Any] = {**state.meta, "fields": fields, "output": output,
                            "system_prompt": state.system_prompt, "user_prompt": state.user_prompt}
    if llm:
        data["llm"] = llm
    return data


@dataclass
class Preview:
    system: str | None = None
    user: str | None = None
    errors: dict[str, PromptError] = field(default_factory=dict)
    field_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.field_errors


def sample_values(state: EditorState, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The sample inputs the admin typed, in the types the generate form would give."""
    context: dict[str, Any] = {}
    typed = {row["name"]: row.get("sample", "") for row in state.fields}
    for spec in fields:
        value: Any = typed.get(spec["name"], "")
        if spec["type"] == "number":
            try:
                value = whole_number(value) if str(value).strip() else ""
            except ValueError:
                value = ""
        context[spec["name"]] = value
    variant_count = state.samples.get("variant_count", "3")
    context.update(tone=state.samples.get("tone") or "Friendly", language=state.samples.get("language") or "English",
                   brand_voice=state.samples.get("brand_voice", ""),
                   variant_count=_sample_variant_count(variant_count))
    context["knowledge"] = ""  # test runs do not retrieve knowledge
    return context


def _sample_variant_count(value: Any) -> int:
    try:
        return whole_number(value)
    except ValueError:
        return 3


def preview(state: EditorState) -> tuple[Preview, list[dict[str, Any]]]:
    """Render both prompts with the sample inputs; errors keep their line numbers."""
    result = Preview()
    fields: list[dict[str, Any]] = []
    for n, row in enumerate(state.fields):
        errors: list[str] = []
        spec = field_spec(row, n + 1, errors)
        try:
            fields.append(validate_field(spec, f"Field {n + 1}"))
        except TemplateDataError as exc:
            errors.append(str(exc))
        result.field_errors.extend(errors)
    context = sample_values(state, fields)
    for key in ("system_prompt", "user_prompt"):
        source = getattr(state, key)
        if not source.strip():
            result.errors[key] = PromptError("the prompt is empty")
            continue
        try:
            text = check_prompt(source, fields, context)
        except PromptError as exc:
            result.errors[key] = exc
        else:
            setattr(result, "system" if key == "system_prompt" else "user", text)
    return result, fields


def choices() -> dict[str, Any]:
    return {"categories": CATEGORIES, "field_types": FIELD_TYPES, "formats": FORMATS}
