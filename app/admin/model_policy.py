"""Which models workspace templates may use, and how many tokens they may ask for.

Workspace templates are written by any workspace owner or admin (a Free user
included), and a generation runs with the template's model and max tokens on the
operator's account. So a workspace template may only name a model from the
operator's allow-list (site admin console, stored in site_settings), each with a
max-tokens ceiling; leaving the model empty means the site default model, whose
ceiling is its list entry or else LLM_MAX_TOKENS. Site templates are written by
site admins and may use any model.

Enforced three times: a workspace template version naming anything else is
refused at save (and publish); a submit with a template saved before the list
changed is refused with a message when its model left the list; and at run time
max tokens are clamped to the ceiling (a ceiling lowered after the save applies
at once, and a job queued before a model was removed still cannot exceed it).
"""
from __future__ import annotations

import json
import re

from flask import current_app

from app.admin import settings
from app.auth.models import User

WORKSPACE_MODELS = "llm.workspace_models"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,119}$")
MAX_CEILING = 16_000  # the editor's own upper bound for max tokens (schema.MAX_TOKENS_LIMIT)


class ModelNotAllowed(Exception):
    """A workspace template names a model, or asks for more tokens, than the operator allows."""


def allowed_models() -> dict[str, int]:
    """The allow-list: model name -> max-tokens ceiling, in the order the operator wrote it."""
    raw = settings.get(WORKSPACE_MODELS)
    return {name: int(ceiling) for name, ceiling in json.loads(raw)} if raw else {}


def parse(text: str) -> dict[str, int]:
    """One model a line, `name max_tokens`; raises ValueError listing every bad line."""
    models: dict[str, int] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not MODEL_NAME.match(parts[0]) or not parts[1].isascii() or not parts[1].isdigit():
            problems.append(f"line {number}: write a model name and its max tokens, e.g. 'gpt-4o-mini 1000'")
        elif not 1 <= int(parts[1]) <= MAX_CEILING:
            problems.append(f"line {number}: max tokens must be from 1 to {MAX_CEILING:,}")
        elif parts[0] in models:
            problems.append(f"line {number}: {parts[0]} is listed twice")
        else:
            models[parts[0]] = int(parts[1])
    if problems:
        raise ValueError("; ".join(problems))
    return models


def as_text(models: dict[str, int]) -> str:
    return "\n".join(f"{name} {ceiling}" for name, ceiling in models.items())


def save(models: dict[str, int], actor: User | None) -> None:
    """Store the allow-list (audited; the caller commits); an empty list leaves only the site default."""
    settings.put(WORKSPACE_MODELS, json.dumps(list(models.items())) if models else None, actor)


def ceiling(model: str | None) -> int | None:
    """The max-tokens ceiling for a workspace template naming `model` (None: the site default),
    or None when workspace templates may not use it."""
    allowed = allowed_models()
    name = model or settings.default_model()
    if name in allowed:
        return allowed[name]
    if name == settings.default_model():
        return int(current_app.config["LLM_MAX_TOKENS"])
    return None


def not_allowed_message(model: str | None) -> str:
    names = ", ".join([*allowed_models()]) or "none besides the site default"
    return (f"The model '{model}' is not available to workspace templates. Leave the model empty for the site "
            f"default, or choose one the site allows ({names}).")


def check_workspace_llm(llm: dict | None) -> None:
    """Refuse a workspace template's model parameters that the allow-list does not cover."""
    llm = llm or {}
    model = llm.get("model")
    limit = ceiling(model)
    if limit is None:
        raise ModelNotAllowed(not_allowed_message(model))
    max_tokens = llm.get("max_tokens")
    if max_tokens is not None and max_tokens > limit:
        raise ModelNotAllowed(f"Max tokens can be at most {limit:,} with {model or 'the site default model'} "
                              "in a workspace template.")
