"""Helpers for checks tests: the logged-in user's workspace, and its style guide set through the pages."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.generation.models import Variant
from app.workspaces.models import Membership


def workspace_of(app, user_id: int) -> int:
    with app.app_context():
        return db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()


def add_entry(client, kind: str, phrase: str, replacement: str = ""):
    return client.post("/workspace/style-guide/entries",
                       data={"e-kind": kind, "e-phrase": phrase, "e-replacement": replacement})


def save_settings(client, flag_action: str = "show", ai_tells: bool = True, claims: bool = True, max_grade: str = ""):
    data = {"s-flag_action": flag_action, "s-max_grade": max_grade}
    if ai_tells:
        data["s-ai_tells"] = "y"
    if claims:
        data["s-claims"] = "y"
    return client.post("/workspace/style-guide/settings", data=data)


def variant_of(app, generation_id: int) -> Variant:
    with app.app_context():
        variant = db.session.scalars(select(Variant).where(Variant.generation_id == generation_id)).one()
        db.session.expunge(variant)
        return variant
