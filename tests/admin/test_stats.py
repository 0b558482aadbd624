"""Per-template figures for a period, from SQL aggregates."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation, Variant


def _generation(template: Template, workspace_id: int, *, status="succeeded", tokens=(100, 50), created=None,
                variants=()) -> None:
    generation = Generation(
        workspace_id=workspace_id, template_id=template.id, template_version_id=template.published_version_id,
        inputs={}, tone="Bold", language="English", variant_count=max(len(variants), 1), creativity=0.7,
        system_prompt="s", user_prompt="u", status=status, prompt_tokens=tokens[0], completion_tokens=tokens[1],
        created_at=created or datetime.utcnow().replace(microsecond=0),
    )
    db.session.add(generation)
    db.session.flush()
    for position, (favourite, rating, repaired, over) in enumerate(variants):
        db.session.add(Variant(generation_id=generation.id, position=position, text="copy", is_favourite=favourite,
                               rating=rating, repaired=repaired, over_limit=over))


def test_figures_per_template_for_a_period(app, admin_client, make_user):
    owner = make_user("ada@example.com")
    with app.app_context():
        from app.workspaces.models import Membership
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == owner)).one()
        x_post = db.session.scalars(select(Template).where(Template.slug == "x-post")).one()
        _generation(x_post, workspace_id, tokens=(100, 50), variants=[(True, 1, False, False), (False, -1, True, False)])
        _generation(x_post, workspace_id, tokens=(200, 150), variants=[(False, 1, False, True), (False, 0, False, False)])
        _generation(x_post, workspace_id, status="failed", tokens=(0, 0))
        _generation(x_post, workspace_id, created=datetime.utcnow() - timedelta(days=60),
                    variants=[(True, 1, False, False)])  # outside the period
        db.session.commit()
    body = admin_client.get("/admin/templates/stats?days=30").get_data(as_text=True)
    row = re.search(r'<tr data-slug="x-post">(.*?)</tr>', body, re.S).group(1)
    cells = dict(re.findall(r'class="num ([a-z-]+)">([^<]*)<', row))
    assert cells["uses"] == "3"
    assert cells["favourite-rate"] == "25%"   # 1 of 4 variants
    assert cells["up"] == "2" and cells["down"] == "1"
    assert cells["failure-rate"] == "33%"     # 1 of 3 generations
    assert cells["repair-rate"] == "50%"      # one repaired, one still over: 2 of 4
    assert cells["avg-tokens"] == "250"       # (150 + 350) / 2 succeeded generations
    aida = re.search(r'<tr data-slug="aida">(.*?)</tr>', body, re.S).group(1)
    assert 'class="num uses">0<' in aida and "—" in aida

    body = admin_client.get("/admin/templates/stats?days=90").get_data(as_text=True)
    row = re.search(r'<tr data-slug="x-post">(.*?)</tr>', body, re.S).group(1)
    assert 'class="num uses">4<' in row
    start = (datetime.utcnow() - timedelta(days=61)).date().isoformat()
    end = (datetime.utcnow() - timedelta(days=59)).date().isoformat()
    body = admin_client.get(f"/admin/templates/stats?from={start}&to={end}").get_data(as_text=True)
    assert 'class="num uses">1<' in re.search(r'<tr data-slug="x-post">(.*?)</tr>', body, re.S).group(1)
