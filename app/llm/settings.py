"""The model settings service: what every model call uses, in one place.

Generation jobs, template test runs and the admin's connection check ask here. It combines the
environment (LLMSettings.from_config), the site's default model (app/admin/settings.py, editable
without a restart) and the allow-list and ceilings for workspace templates (app/admin/model_policy.py).
"""
from __future__ import annotations

import dataclasses

from flask import current_app

from app.admin.model_policy import ModelNotAllowed, ceiling, not_allowed_message
from app.admin.settings import default_model
from app.generation.options import BALANCED
from app.llm import LLMSettings


def llm_settings(model: str | None = None) -> LLMSettings:
    """LLM settings for one call: a template's own model, else the site default."""
    base = LLMSettings.from_config(current_app.config)
    return dataclasses.replace(base, model=model or default_model())


def for_template(workspace_id: int | None, model: str | None, max_tokens: int | None,
                 *, check_model: bool = True) -> LLMSettings:
    """The LLM settings one call of a template uses, with its max tokens applied.

    Site templates (workspace_id None) use what they name. Workspace templates are
    refused (ModelNotAllowed) when their model is off the list, unless check_model is
    False (the worker: the submit already checked), and are clamped to the ceiling.
    """
    base = llm_settings(model)
    wanted = max_tokens or base.max_tokens
    if workspace_id is None:
        return dataclasses.replace(base, max_tokens=wanted)
    limit = ceiling(model)
    if limit is None:
        if check_model:
            raise ModelNotAllowed(not_allowed_message(model))
        limit = int(current_app.config["LLM_MAX_TOKENS"])
    return dataclasses.replace(base, max_tokens=min(wanted, limit))


def effective_temperature(creativity: float, template_temperature: float | None) -> float:
    """The user's creativity (low / balanced / high) shifted so that 'balanced' is the template's temperature."""
    if template_temperature is None:
        return creativity
    return round(min(2.0, max(0.0, creativity + (template_temperature - BALANCED))), 2)
