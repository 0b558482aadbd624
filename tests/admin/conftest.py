"""Admin fixtures: a logged-in site admin, and an editor form in the shape the browser posts."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.models import User
from app.catalog.models import Template
from app.extensions import db


@pytest.fixture
def admin_client(app, make_user):
    """A test client logged in as a site admin (root@example.com)."""
    user_id = make_user("root@example.com")
    with app.app_context():
        db.session.get(User, user_id).is_site_admin = True
        db.session.commit()
    client = app.test_client()
    response = client.post("/login", data={"email": "root@example.com", "password": "correct-horse-battery"})
    assert response.status_code == 302
    client.user_id = user_id
    return client


def editor_form(slug: str = "launch-tweet", **overrides) -> dict:
    """The editor's POST body for a two-field template, as the page would send it."""
    form = {
        "name": "Launch tweet", "slug": slug, "category": "Social", "description": "A tweet for a launch",
        "icon": "rocket",
        "fields-0-name": "product", "fields-0-label": "Product", "fields-0-type": "text",
        "fields-0-required": "1", "fields-0-max_length": "100", "fields-0-sample": "Juniper mugs",
        "fields-1-name": "audience", "fields-1-label": "Audience", "fields-1-type": "select",
        "fields-1-options": "Makers\nCoffee lovers", "fields-1-sample": "Makers",
        "system_prompt": "You write tweets in {{ language }} with a {{ tone }} tone.",
        "user_prompt": "Announce {{ product }}.\n{% if audience %}For {{ audience }}.{% endif %}",
        "output-variants": "2", "output-max_chars": "280", "output-format": "single",
        "llm-model": "", "llm-temperature": "", "llm-max_tokens": "",
        "sample-tone": "Bold", "sample-language": "English", "sample-variant_count": "2", "sample-brand_voice": "",
        "message": "First draft", "op": "save",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def template_by_slug(app, slug: str) -> Template | None:
    with app.app_context():
        template = db.session.scalars(select(Template).where(Template.slug == slug)).first()
        if template is not None:
            _ = template.published_version
            db.session.expunge_all()
        return template
