"""Workspace templates: private to their workspace, made with the same editor by owners and admins."""
from __future__ import annotations

from sqlalchemy import select

from app.catalog.models import Template
from app.extensions import db
from tests.admin.conftest import editor_form, template_by_slug
from tests.generation.helpers import submit


def test_a_team_admin_creates_a_private_template_its_members_use(app, team, run_worker):
    team.add("admin@example.com", "admin")
    team.add("writer@example.com", "member")
    admin = team.client("admin@example.com")
    response = admin.post("/workspace/templates/new", data=editor_form("team-tweet", publish="1"))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    template = template_by_slug(app, "team-tweet")
    assert template.workspace_id == team.workspace_id and template.source == "workspace"

    writer = team.client("writer@example.com")
    catalogue = writer.get("/templates").get_data(as_text=True)
    assert 'data-slug="team-tweet"' in catalogue and 'data-slug="x-post"' in catalogue
    assert 'data-testid="private-template"' in catalogue
    generation_id = submit(writer, app, "team-tweet", 1)
    run_worker()
    with app.app_context():
        from app.generation.models import Generation
        generation = db.session.get(Generation, generation_id)
        assert generation.status == "succeeded" and generation.template_id == template.id
    assert writer.get("/workspace/templates").status_code == 403  # members use, managers edit

    # Site admins do not see it in the site console either: it is not a site template.
    assert template.id not in [t.id for t in _site_templates(app)]


def _site_templates(app):
    with app.app_context():
        return list(db.session.scalars(select(Template).where(Template.workspace_id.is_(None))))


def test_another_workspace_cannot_see_or_use_it(app, team, login, client):
    owner = team.client("owner@example.com")
    owner.post("/workspace/templates/new", data=editor_form("team-tweet", publish="1"))
    template = template_by_slug(app, "team-tweet")
    login("outsider@example.com")
    assert 'data-slug="team-tweet"' not in client.get("/templates").get_data(as_text=True)
    assert client.get("/templates?q=launch").get_data(as_text=True).count("team-tweet") == 0
    assert client.get("/write/team-tweet").status_code == 404
    assert client.post("/write/team-tweet", data={"variant_count": "1"}).status_code == 404
    for url in (f"/workspace/templates/{template.id}/edit", f"/workspace/templates/{template.id}/versions",
                f"/workspace/templates/{template.id}/export"):
        assert client.get(url).status_code == 404


def test_a_site_template_is_not_editable_as_a_workspace_template(app, team):
    owner = team.client("owner@example.com")
    with app.app_context():
        x_post = db.session.scalars(select(Template.id).where(Template.slug == "x-post")).one()
    assert owner.get(f"/workspace/templates/{x_post}/edit").status_code == 404
    assert owner.post(f"/workspace/templates/{x_post}/versions/1/publish").status_code == 404
    assert owner.get(f"/admin/templates/{x_post}/edit").status_code == 403


def test_a_taken_slug_gets_a_suffix_for_a_workspace_template(app, team):
    owner = team.client("owner@example.com")
    response = owner.post("/workspace/templates/new", data=editor_form("x-post"))
    assert response.status_code == 302
    template = template_by_slug(app, "x-post-2")
    assert template is not None and template.workspace_id == team.workspace_id


def test_workspace_template_versions_publish_and_roll_back(app, team):
    owner = team.client("owner@example.com")
    owner.post("/workspace/templates/new", data=editor_form("team-tweet", publish="1"))
    template = template_by_slug(app, "team-tweet")
    owner.post(f"/workspace/templates/{template.id}/edit", data=editor_form("team-tweet", publish="1", **{
        "fields-0-label": "Product name"}))
    assert template_by_slug(app, "team-tweet").published_version.number == 2
    owner.post(f"/workspace/templates/{template.id}/versions/1/publish")
    assert template_by_slug(app, "team-tweet").published_version.number == 1
    assert ">Product<" in owner.get("/write/team-tweet").get_data(as_text=True)
