"""The template data format (seed files, and later admin import/export), validated strictly."""
from __future__ import annotations

import re
from typing import Any

from app.bounds import DB_INT_MAX
from app.catalog.models import CATEGORIES
from app.catalog.rendering import PromptError, check_syntax, render_prompt

FIELD_TYPES = ("text", "textarea", "select", "number")
FORMATS = ("single", "list")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ICON_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_NAMES = {"tone", "language", "variant_count", "brand_voice", "creativity", "variants", "knowledge"}
TOP_KEYS = {"slug", "name", "category", "description", "icon", "fields", "output", "system_prompt", "user_prompt",
            "llm", "keywords", "example"}
MAX_KEYWORDS, KEYWORD_MAX = 20, 40
LLM_KEYS = {"model", "temperature", "max_tokens"}
MAX_TOKENS_LIMIT = 16_000
# What every prompt may use besides the fields (see generation.services.build_context).
CONTEXT_VARIABLES = {
    "tone": "the tone of voice picked on the form, e.g. Friendly",
    "language": "the output language, e.g. English",
    "brand_voice": "the chosen brand voice as text, or empty",
    "variant_count": "how many variants were asked for",
    "knowledge": "facts chosen from the knowledge base, or empty",
}
FIELD_KEYS = {"name", "label", "type", "required", "max_length", "placeholder", "help", "options", "min", "max"}
TEXT_MAX = {"text": 200, "textarea": 4000}


class TemplateDataError(ValueError):
    """A template file that does not follow the format; the message says where."""


def _fail(where: str, message: str) -> None:
    raise TemplateDataError(f"{where}: {message}")


def validate_field(field: Any, where: str) -> dict[str, Any]:
    if not isinstance(field, dict):
        _fail(where, "a field must be a mapping")
    unknown = set(field) - FIELD_KEYS
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}")
    name = field.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        _fail(where, "name must be a lowercase identifier (letters, digits, _)")
    if name in RESERVED_NAMES:
        _fail(where, f"name '{name}' is reserved")
    ftype = field.get("type")
    if ftype not in FIELD_TYPES:
        _fail(where, f"unknown field type {ftype!r} (expected one of {', '.join(FIELD_TYPES)})")
    label = field.get("label")
    if not isinstance(label, str) or not label.strip():
        _fail(where, "label is required")
    clean: dict[str, Any] = {
        "name": name,
        "label": label.strip(),
        "type": ftype,
        "required": bool(field.get("required", False)),
        "placeholder": str(field.get("placeholder") or ""),
        "help": str(field.get("help") or ""),
    }
    if ftype in TEXT_MAX:
        max_length = field.get("max_length", TEXT_MAX[ftype])
        if not isinstance(max_length, int) or not 1 <= max_length <= TEXT_MAX[ftype]:
            _fail(where, f"max_length must be an integer from 1 to {TEXT_MAX[ftype]}")
        clean["max_length"] = max_length
    if ftype == "select":
        options = field.get("options")
        if not isinstance(options, list) or not options or not all(isinstance(o, str) and o for o in options):
            _fail(where, "a select needs a non-empty list of text options")
        clean["options"] = options
    if ftype == "number":
        low, high = field.get("min", 0), field.get("max", 1000)
        if not all(isinstance(n, int) and not isinstance(n, bool) and abs(n) <= DB_INT_MAX for n in (low, high)) \
                or low > high:
            _fail(where, f"min and max must be integers from -{DB_INT_MAX} to {DB_INT_MAX} with min <= max")
        clean["min"], clean["max"] = low, high
    return clean


def validate_output(output: Any, where: str) -> dict[str, Any]:
    if not isinstance(output, dict):
        _fail(where, "output must be a mapping")
    unknown = set(output) - {"variants", "max_chars", "format"}
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}")
    variants = output.get("variants", 3)
    if not isinstance(variants, int) or not 1 <= variants <= 5:
        _fail(where, "variants must be an integer from 1 to 5")
    max_chars = output.get("max_chars")
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        _fail(where, "max_chars must be a positive integer or null")
    fmt = output.get("format", "single")
    if fmt not in FORMATS:
        _fail(where, f"format must be one of {', '.join(FORMATS)}")
    return {"variants": variants, "max_chars": max_chars, "format": fmt}


def validate_llm(llm: Any, where: str) -> dict[str, Any] | None:
    """Per-template model parameters; each may be left out to use the site default."""
    if llm is None:
        return None
    if not isinstance(llm, dict):
        _fail(where, "llm must be a mapping of model, temperature, max_tokens")
    unknown = set(llm) - LLM_KEYS
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}")
    clean: dict[str, Any] = {}
    model = llm.get("model")
    if model not in (None, ""):
        if not isinstance(model, str) or len(model) > 120 or not model.strip():
            _fail(where, "model must be a model name of at most 120 characters")
        clean["model"] = model.strip()
    temperature = llm.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            _fail(where, "temperature must be a number from 0 to 2")
        clean["temperature"] = float(temperature)
    max_tokens = llm.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            _fail(where, f"max_tokens must be an integer from 1 to {MAX_TOKENS_LIMIT}")
        clean["max_tokens"] = max_tokens
    return clean or None


def check_prompt(source: str, fields: list[dict[str, Any]], context: dict[str, Any] | None = None) -> str:
    """Parse, look for unknown variables, and render with sample values; PromptError if any fails."""
    check_syntax(source)
    return render_prompt(source, context if context is not None else sample_context(fields),
                         available={f["name"] for f in fields} | set(CONTEXT_VARIABLES))


def sample_context(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Plausible values for every field, used to prove that prompts render."""
    context: dict[str, Any] = {}
    for field in fields:
        if field["type"] == "number":
            context[field["name"]] = field.get("min", 1)
        elif field["type"] == "select":
            context[field["name"]] = field["options"][0]
        else:
            context[field["name"]] = f"sample {field['name']}"
    context.update(tone="Friendly", language="English", variant_count=3, brand_voice="")
    context["knowledge"] = ""
    return context


def validate_template_data(data: Any, where: str = "template") -> dict[str, Any]:
    """Check a template mapping and return its clean form, or raise TemplateDataError."""
    if not isinstance(data, dict):
        _fail(where, "a template must be a mapping")
    unknown = set(data) - TOP_KEYS
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}")
    missing = {"slug", "name", "category", "fields", "output", "system_prompt", "user_prompt"} - set(data)
    if missing:
        _fail(where, f"missing key(s) {sorted(missing)}")
    slug = data["slug"]
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > 80:
        _fail(where, "slug must be lowercase words joined by hyphens")
    if data["category"] not in CATEGORIES:
        _fail(where, f"category must be one of {', '.join(CATEGORIES)}")
    if not isinstance(data["name"], str) or not data["name"].strip():
        _fail(where, "name is required")
    if len(data["name"].strip()) > 120:
        _fail(where, "name can be at most 120 characters")
    if len(str(data.get("description") or "").strip()) > 300:
        _fail(where, "description can be at most 300 characters")
    if not ICON_RE.match(str(data.get("icon") or "sparkles")):
        _fail(where, "icon must be an icon name such as sparkles or megaphone")
    fields_raw = data["fields"]
    if not isinstance(fields_raw, list) or not fields_raw:
        _fail(where, "fields must be a non-empty list")
    fields = [validate_field(f, f"{where}: field {i + 1}") for i, f in enumerate(fields_raw)]
    names = [f["name"] for f in fields]
    if len(set(names)) != len(names):
        _fail(where, "field names must be unique")
    output = validate_output(data["output"], f"{where}: output")
    for key in ("system_prompt", "user_prompt"):
        if not isinstance(data[key], str) or not data[key].strip():
            _fail(where, f"{key} is required")
        try:
            check_prompt(data[key], fields)
        except PromptError as exc:
            _fail(f"{where}: {key}", str(exc))
    llm = validate_llm(data.get("llm"), f"{where}: llm")
    clean = {
        "slug": slug,
        "name": data["name"].strip(),
        "category": data["category"],
        "description": str(data.get("description") or "").strip(),
        "icon": str(data.get("icon") or "sparkles"),
        "fields": fields,
        "output": output,
        "system_prompt": data["system_prompt"],
        "user_prompt": data["user_prompt"],
    }
    if llm:  # only when set, so the content hash of seed files without it is unchanged
        clean["llm"] = llm
    validate_extras(data, fields, where)
    return clean


def validate_extras(data: dict[str, Any], fields: list[dict[str, Any]], where: str = "template") -> dict[str, Any]:
    """A seed file's catalogue metadata, not part of a version: search keywords and an example input.

    Kept out of the clean data (and so out of the content hash and the versions): changing a keyword
    must not publish a new version of the template. catalog.services.seed_extras reads them.
    """
    return {"keywords": validate_keywords(data.get("keywords"), f"{where}: keywords"),
            "example": validate_example(data.get("example"), fields, f"{where}: example")}


def validate_keywords(keywords: Any, where: str) -> list[str]:
    """Search synonyms ("tweet" for the X post): at most 20 short lowercase words or phrases."""
    if keywords is None:
        return []
    if not isinstance(keywords, list) or len(keywords) > MAX_KEYWORDS or not all(
            isinstance(k, str) and 0 < len(k.strip()) <= KEYWORD_MAX for k in keywords):
        _fail(where, f"keywords must be a list of at most {MAX_KEYWORDS} words of 1 to {KEYWORD_MAX} characters")
    return [k.strip().lower() for k in keywords]


def validate_example(example: Any, fields: list[dict[str, Any]], where: str) -> dict[str, str]:
    """A sample input per field name, valid for that field (a select's value is one of its options)."""
    if example is None:
        return {}
    by_name = {f["name"]: f for f in fields}
    if not isinstance(example, dict) or not set(example) <= set(by_name):
        _fail(where, f"example must map field names ({', '.join(by_name)}) to sample values")
    clean = {}
    for name, value in example.items():
        spec, text = by_name[name], str(value).strip()
        if spec["type"] == "select" and text not in spec["options"]:
            _fail(where, f"{name}: {text!r} is not one of the options")
        if len(text) > spec.get("max_length", 200):
            _fail(where, f"{name}: at most {spec.get('max_length')} characters")
        clean[name] = text
    missing = [f["name"] for f in fields if f["required"] and f["name"] not in clean]
    if missing:
        _fail(where, f"no example for required field(s) {', '.join(missing)}")
    return clean
