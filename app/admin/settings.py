"""Site settings kept in the database (site_settings), overriding the environment defaults.

Today: the default model. The worker reads it (through app/llm/settings.py) for every generation,
so a change applies to the next job without a restart.
"""
from __future__ import annotations

from flask import current_app

from app.admin import audit
from app.admin.models import SiteSetting
from app.auth.models import User
from app.extensions import db

DEFAULT_MODEL = "llm.default_model"


def get(key: str) -> str | None:
    row = db.session.get(SiteSetting, key)
    return row.value if row is not None else None


def put(key: str, value: str | None, actor: User | None) -> None:
    """Set (or, with None/empty, clear) a setting, audited; the caller commits."""
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


def default_model() -> str:
    """The site's default model: the admin's choice, else OPENAI_MODEL."""
    return get(DEFAULT_MODEL) or current_app.config["OPENAI_MODEL"]
