"""Site settings kept in the database (site_settings), overriding the environment defaults.

Today: the default model. The worker reads it for every generation, so a change
applies to the next job without a restart.
"""
from __future__ import annotations

import dataclasses

from flask import current_app

from app.admin import audit
from app.admin.models import SiteSetting
from app.auth.models import User
from app.extensions import db
from app.llm import LLMSettings

DEFAULT_MODEL = "llm.default_model"


def get(key: str) -> str | None:
    row = db.session.get(SiteSetting, key)
    return row.value if row is not None else None


def put(key: str, value: str | None, actor: User | None) -> None:
    """Set (or, with None/empty, clear) a setting, audited, and commit."""
    row = db.session.get(SiteSetting, key)
    before = row.value if row is not None else None
    value = (value or "").strip() or None
    if value == before:
        return
    if value is None:
        db.session.delete(row)
    elif row is None:
        db.session.add(SiteSetting(key=key, value=value))
    else:
        row.value = value
    audit.record(actor, "settings.change", "setting", key, {"value": before}, {"value": value})
    db.session.commit()


def default_model() -> str:
    """The site's default model: the admin's choice, else OPENAI_MODEL."""
    return get(DEFAULT_MODEL) or current_app.config["OPENAI_MODEL"]


def llm_settings(model: str | None = None) -> LLMSettings:
    """LLM settings for one call: a template's own model, else the site default."""
    base = LLMSettings.from_config(current_app.config)
    return dataclasses.replace(base, model=model or default_model())


def effective_temperature(creativity: float, template_temperature: float | None) -> float:
    """The user's creativity (0.3 / 0.7 / 1.0) shifted so that 'balanced' is the template's temperature."""
    if template_temperature is None:
        return creativity
    return round(min(2.0, max(0.0, creativity + (template_temperature - 0.7))), 2)
