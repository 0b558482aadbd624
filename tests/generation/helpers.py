"""Shared helpers for generation tests."""
from __future__ import annotations

from sqlalchemy import select

from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation


def form_data(app, slug: str, variants: int = 3, **overrides) -> dict:
    """A valid generate form for the template: every field filled."""
    with app.app_context():
        template = db.session.scalars(select(Template).where(Template.slug == slug)).one()
        data = {}
        for spec in template.published_version.fields:
            if spec["type"] == "select":
                data[f"f_{spec['name']}"] = spec["options"][0]
            elif spec["type"] == "number":
                data[f"f_{spec['name']}"] = str(spec.get("min", 1))
            else:
                data[f"f_{spec['name']}"] = f"Copydeck {spec['name']}"[: spec.get("max_length", 200)]
    data.update(tone="Friendly", language="English", variant_count=str(variants), creativity="balanced")
    data.update(overrides)
    return data


def submit(client, app, slug: str = "x-post", variants: int = 3, **overrides) -> int:
    response = client.post(f"/write/{slug}", data=form_data(app, slug, variants, **overrides))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rsplit("/", 1)[-1])


def ledger(app) -> tuple[int, int]:
    """(used, reserved) of the only quota ledger."""
    from app.quota.models import QuotaLedger
    with app.app_context():
        row = db.session.scalars(select(QuotaLedger)).one()
        return row.used, row.reserved


def load(app, generation_id: int) -> Generation:
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        # Touch relationships while the session is open.
        _ = [v.text for v in generation.variants], generation.template_version.output
        db.session.expunge_all()
        return generation
