"""The template editor: builder, live preview, refusal of broken prompts, versions, publish and roll back."""
from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from app.admin.models import AuditEntry
from app.catalog.models import Template, TemplateVersion
from app.extensions import db
from tests.admin.conftest import editor_form, template_by_slug
from tests.catalog.test_rendering import SSTI_PAYLOADS


def _versions(app, template_id: int) -> list[TemplateVersion]:
    with app.app_context():
        rows = list(db.session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template_id)
                                       .order_by(TemplateVersion.number)))
        db.session.expunge_all()
        return rows


def test_new_template_page_lists_variables_and_previews(admin_client):
    page = admin_client.get("/admin/templates/new").get_data(as_text=True)
    assert 'hx-post="/admin/templates/preview"' in page
    for variable in ("topic", "tone", "language", "brand_voice", "variant_count"):
        assert f"<code>{variable}</code>" in page
    assert 'data-testid="preview-user_prompt">Write about Sample topic.' in page


def test_create_saves_version_one_unpublished_with_author_and_audit(app, admin_client):
    response = admin_client.post("/admin/templates/new", data=editor_form())
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    template = template_by_slug(app, "launch-tweet")
    assert template.source == "admin" and template.workspace_id is None
    assert template.published_version_id is None  # users do not see a draft
    [version] = _versions(app, template.id)
    assert version.number == 1 and version.message == "First draft" and version.author_id == admin_client.user_id
    assert [f["name"] for f in version.fields] == ["product", "audience"]
    assert version.fields[1]["options"] == ["Makers", "Coffee lovers"]
    assert version.output == {"variants": 2, "max_chars": 280, "format": "single"}
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action)).all()
    assert actions == ["template.create"]
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "not published" in page and "root@example.com" in page


def test_builder_adds_reorders_and_removes_fields_without_saving(app, admin_client):
    form = editor_form(op="add")
    page = admin_client.post("/admin/templates/new", data=form).get_data(as_text=True)
    assert 'name="fields-2-name" value="field_3"' in page
    form = editor_form(op="down-0")
    page = admin_client.post("/admin/templates/new", data=form).get_data(as_text=True)
    assert page.index('value="audience"') < page.index('value="product"')
    form = editor_form(op="remove-1")
    page = admin_client.post("/admin/templates/new", data=form).get_data(as_text=True)
    assert 'value="audience"' not in page and 'value="product"' in page
    assert template_by_slug(app, "launch-tweet") is None


def test_preview_renders_sample_inputs(admin_client):
    response = admin_client.post("/admin/templates/preview", data=editor_form(), headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "You write tweets in English with a Bold tone." in body
    assert "Announce Juniper mugs.\nFor Makers." in body
    assert 'id="variables" hx-swap-oob="true"' in body


@pytest.mark.parametrize("prompt, line, message", [
    ("Line one\nLine two {{ productt }}", 2, "unknown variable 'productt'"),
    ("One\nTwo\n{% if product %}unclosed", 3, "Unexpected end of template"),
    ("A\n{{ product.__class__ }}", 2, "not allowed in a template"),
    ("{{ product }}\n\n{{ 9 ** 999999 }}", 3, "exponent too large"),
])
def test_preview_shows_errors_inline_with_their_line(admin_client, prompt, line, message):
    body = admin_client.post("/admin/templates/preview", data=editor_form(user_prompt=prompt)).get_data(as_text=True)
    assert f"Line {line}: " in body and message in html.unescape(body), body


def test_an_unknown_variable_in_a_branch_that_does_not_run_is_still_an_error(admin_client):
    prompt = "{% if audience == 'nobody' %}{{ typo }}{% endif %}{{ product }}"
    body = admin_client.post("/admin/templates/preview", data=editor_form(user_prompt=prompt)).get_data(as_text=True)
    assert "unknown variable &#39;typo&#39;" in body


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_injection_payloads_neither_preview_nor_save(app, admin_client, payload):
    form = editor_form(system_prompt=payload)
    body = admin_client.post("/admin/templates/preview", data=form).get_data(as_text=True)
    assert 'data-testid="preview-system_prompt-error"' in body
    shown = body.split('data-testid="preview-system_prompt-error"', 1)[1][:600]
    for leak in ("&lt;class &#39;", "uid=", "test-secret", "xxxxxxxxxx", "popen"):
        assert leak not in shown, shown
    response = admin_client.post("/admin/templates/new", data=form)
    assert response.status_code == 422
    assert "Not saved." in response.get_data(as_text=True)
    assert template_by_slug(app, "launch-tweet") is None


def test_injection_payload_cannot_be_saved_into_an_existing_template(app, admin_client):
    admin_client.post("/admin/templates/new", data=editor_form())
    template = template_by_slug(app, "launch-tweet")
    for payload in SSTI_PAYLOADS[:6]:
        response = admin_client.post(f"/admin/templates/{template.id}/edit", data=editor_form(user_prompt=payload))
        assert response.status_code == 422
    assert len(_versions(app, template.id)) == 1


def test_a_template_that_does_not_render_is_refused_with_the_error(app, admin_client):
    response = admin_client.post("/admin/templates/new", data=editor_form(user_prompt="Hi {{ product "))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "User prompt: line 1:" in body
    assert 'data-testid="user_prompt-error"' in body
    assert 'value="Launch tweet"' in body  # what was typed comes back


def test_bad_fields_are_refused_with_a_clear_message(app, admin_client):
    body = admin_client.post("/admin/templates/new", data=editor_form(**{"fields-1-options": ""})).get_data(as_text=True)
    assert "Field 2: a select needs a non-empty list of text options" in body
    body = admin_client.post("/admin/templates/new", data=editor_form(**{"fields-0-name": "tone"})).get_data(as_text=True)
    assert "reserved" in body
    body = admin_client.post("/admin/templates/new", data=editor_form(slug="x-post")).get_data(as_text=True)
    assert "already used by another template" in body
    assert template_by_slug(app, "launch-tweet") is None


def test_every_save_is_a_version_publish_and_roll_back(app, admin_client, client, login):
    admin_client.post("/admin/templates/new", data=editor_form(publish="1"))
    template = template_by_slug(app, "launch-tweet")
    assert template.published_version.number == 1
    response = admin_client.post(f"/admin/templates/{template.id}/edit",
                                 data=editor_form(**{"fields-0-label": "Product name", "message": "Clearer label"}))
    assert response.status_code == 302
    assert [v.number for v in _versions(app, template.id)] == [1, 2]
    assert template_by_slug(app, "launch-tweet").published_version.number == 1  # saved, not published

    login("marketer@example.com")
    assert ">Product<" in client.get("/write/launch-tweet").get_data(as_text=True)

    assert admin_client.post(f"/admin/templates/{template.id}/versions/2/publish").status_code == 302
    assert "Product name" in client.get("/write/launch-tweet").get_data(as_text=True)

    response = admin_client.post(f"/admin/templates/{template.id}/versions/1/publish", follow_redirects=True)
    assert "Rolled back to version 1" in response.get_data(as_text=True)
    page = client.get("/write/launch-tweet").get_data(as_text=True)
    assert ">Product<" in page and "Product name" not in page
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["template.create", "template.publish", "template.save", "template.publish",
                       "template.rollback"]


def test_unpublished_templates_are_not_in_the_catalogue(app, admin_client, client, login):
    admin_client.post("/admin/templates/new", data=editor_form())
    login("marketer@example.com")
    assert "launch-tweet" not in client.get("/templates").get_data(as_text=True)
    assert client.get("/write/launch-tweet").status_code == 404
    template = template_by_slug(app, "launch-tweet")
    admin_client.post(f"/admin/templates/{template.id}/versions/1/publish")
    assert 'data-slug="launch-tweet"' in client.get("/templates").get_data(as_text=True)
    admin_client.post(f"/admin/templates/{template.id}/unpublish")
    assert client.get("/write/launch-tweet").status_code == 404


def test_compare_shows_a_side_by_side_diff_escaped(app, admin_client):
    admin_client.post("/admin/templates/new", data=editor_form())
    template = template_by_slug(app, "launch-tweet")
    admin_client.post(f"/admin/templates/{template.id}/edit",
                      data=editor_form(user_prompt="Announce {{ product }} <script>alert(1)</script>.",
                                       message="<b>bold</b> change"))
    body = admin_client.get(f"/admin/templates/{template.id}/compare?a=1&b=2").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;b&gt;bold&lt;/b&gt; change" in body
    assert 'data-section="User prompt" data-changed="true"' in body
    assert 'data-section="Fields" data-changed="false"' in body
    assert 'class="diff-replace"' in body
    assert admin_client.get(f"/admin/templates/{template.id}/compare?a=1&b=9").status_code == 404


def test_editing_a_seeded_template_protects_it_from_seeding(app, admin_client):
    from app.catalog.services import seed_templates
    with app.app_context():
        template = db.session.scalars(select(Template).where(Template.slug == "x-post")).one()
        template_id = template.id
    page = admin_client.get(f"/admin/templates/{template_id}/edit").get_data(as_text=True)
    assert "Starting from version" in page
    from app.catalog import editor_form as ef, versions
    with app.app_context():
        template = db.session.get(Template, template_id)
        data = versions.version_data(template, versions.latest_version(template))
    state = ef.from_data(data)
    form = {"name": data["name"], "category": data["category"], "description": "Edited by an admin",
            "icon": data["icon"], "system_prompt": state.system_prompt, "user_prompt": state.user_prompt,
            "output-variants": state.output["variants"], "output-max_chars": state.output["max_chars"],
            "output-format": state.output["format"], "message": "Admin edit", "publish": "1", "op": "save"}
    for i, row in enumerate(state.fields):
        form.update({f"fields-{i}-{k}": v for k, v in row.items()})
    assert admin_client.post(f"/admin/templates/{template_id}/edit", data=form).status_code == 302
    with app.app_context():
        template = db.session.get(Template, template_id)
        assert template.source == "admin" and template.description == "Edited by an admin"
        count = db.session.scalar(select(func.count(TemplateVersion.id)).where(TemplateVersion.template_id == template_id))
        template.seed_hash = "changed-upstream"  # as if the seed file changed
        db.session.commit()
        seed_templates()
        db.session.commit()
        template = db.session.get(Template, template_id)
        assert template.description == "Edited by an admin"
        assert db.session.scalar(select(func.count(TemplateVersion.id))
                                 .where(TemplateVersion.template_id == template_id)) == count


def test_export_one_version_as_yaml_in_the_seed_format(app, admin_client):
    import yaml
    from app.catalog.schema import validate_template_data
    admin_client.post("/admin/templates/new", data=editor_form(**{"llm-temperature": "0.4"}))
    template = template_by_slug(app, "launch-tweet")
    response = admin_client.get(f"/admin/templates/{template.id}/export")
    assert response.headers["Content-Disposition"] == 'attachment; filename="launch-tweet.yaml"'
    data = yaml.safe_load(response.get_data(as_text=True))
    assert validate_template_data(data)["llm"] == {"temperature": 0.4}
    assert "user_prompt: |" in response.get_data(as_text=True)
