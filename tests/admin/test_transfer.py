"""Import and export in the seed format: all checked first, nothing written on any error."""
from __future__ import annotations

import io
import zipfile

import pytest
import yaml
from sqlalchemy import func, select

from app.admin.models import AuditEntry
from app.catalog.models import Template, TemplateVersion
from app.catalog.schema import validate_template_data
from app.catalog.services import SEED_DIR
from app.extensions import db
from tests.admin.conftest import template_by_slug


def _seed(source: str = "x-post", **changes) -> dict:
    data = yaml.safe_load((SEED_DIR / f"{source}.yaml").read_text())
    data.update(changes)
    return data


def _zip(files: dict[str, dict | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content if isinstance(content, str) else yaml.safe_dump(content))
    return buffer.getvalue()


def _upload(client, name: str, content: bytes, **flags):
    data = {"file": (io.BytesIO(content), name), **{k: "y" for k, v in flags.items() if v}}
    return client.post("/admin/templates/import", data=data, content_type="multipart/form-data")


def _counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count(Template.id))),
                db.session.scalar(select(func.count(TemplateVersion.id))),
                db.session.scalar(select(func.count(AuditEntry.id))))


def test_export_all_then_import_on_another_instance_round_trips(app, admin_client):
    response = admin_client.get("/admin/templates/export.zip")
    assert response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = archive.namelist()
    assert "x-post.yaml" in names and len(names) >= 33
    exported = yaml.safe_load(archive.read("x-post.yaml"))
    assert exported == validate_template_data(_seed())  # the seed file's content, in the clean format
    # Re-importing the same content as updates changes nothing.
    response = _upload(admin_client, "catalogue.zip", response.data, update_existing=True, publish=True)
    assert response.status_code == 302
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"0 created, 0 updated, {len(names)} unchanged" in page


def test_import_creates_and_publishes_new_templates(app, admin_client, client, login):
    files = {"a.yaml": _seed(slug="import-a", name="Imported A"), "b.yaml": _seed(slug="import-b", name="Imported B")}
    response = _upload(admin_client, "two.zip", _zip(files), publish=True)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    template = template_by_slug(app, "import-a")
    assert template.source == "admin" and template.published_version.message == "Imported from two.zip"
    login("marketer@example.com")
    assert 'data-slug="import-b"' in client.get("/templates").get_data(as_text=True)


@pytest.mark.parametrize("bad, message", [
    ({"fields": [{"name": "when", "label": "When", "type": "date"}]}, "unknown field type &#39;date&#39;"),
    ({"user_prompt": "Write {{ product "}, "user_prompt: line 1"),
    ({"user_prompt": "Write {{ productt }}"}, "unknown variable &#39;productt&#39;"),
    ({"system_prompt": "{{ cycler.__init__.__globals__ }}"}, "not allowed in a template"),
    ({"user_prompt": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"}, "more than 50 deep (the limit)"),
    ({"system_prompt": "{{ 'x'|center(2000000000) }}"}, "MB of memory (the limit)"),
    ({"slug": "x-post"}, "a template with slug &#39;x-post&#39; already exists"),
])
def test_a_bad_file_imports_nothing(app, admin_client, bad, message):
    before = _counts(app)
    files = {"good.yaml": _seed(slug="import-good"), "bad.yaml": _seed(**{"slug": "import-bad", **bad})}
    response = _upload(admin_client, "mixed.zip", _zip(files), publish=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported." in body and message in body, body[body.find("import-problems"):][:800]
    assert "bad.yaml" in body
    assert _counts(app) == before
    assert template_by_slug(app, "import-good") is None


def test_every_problem_is_listed_at_once(admin_client):
    files = {"a.yaml": _seed(slug="dup"), "b.yaml": _seed(slug="dup"), "c.yaml": "slug: [unclosed",
             "d.yaml": _seed(slug="cat", category="Misc")}
    body = _upload(admin_client, "many.zip", _zip(files)).get_data(as_text=True)
    assert "b.yaml: slug &#39;dup&#39; is also used by a.yaml" in body
    assert "c.yaml: not valid YAML" in body
    assert "d.yaml: category must be one of" in body


def test_an_explicit_update_adds_a_version_to_an_existing_template(app, admin_client):
    content = yaml.safe_dump(_seed(description="Updated by import")).encode()
    assert _upload(admin_client, "x-post.yaml", content).status_code == 422  # a clash without the flag
    response = _upload(admin_client, "x-post.yaml", content, update_existing=True, publish=False)
    assert response.status_code == 302
    with app.app_context():
        template = db.session.scalars(select(Template).where(Template.slug == "x-post")).one()
        latest = db.session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template.id)
                                    .order_by(TemplateVersion.number.desc())).first()
        assert latest.description == "Updated by import" and latest.id != template.published_version_id
        assert template.source == "admin"  # seeding leaves it alone from now on


def test_a_workspace_templates_slug_cannot_be_updated_by_import(app, admin_client, team):
    from tests.admin.conftest import editor_form
    team.client("owner@example.com").post("/workspace/templates/new", data=editor_form("team-only"))
    content = yaml.safe_dump(_seed(slug="team-only")).encode()
    body = _upload(admin_client, "t.yaml", content, update_existing=True).get_data(as_text=True)
    assert "taken by a workspace&#39;s private template" in body


def test_only_yaml_or_zip_uploads(admin_client):
    body = _upload(admin_client, "notes.txt", b"hello").get_data(as_text=True)
    assert "upload a .yaml file or a .zip of .yaml files" in body
    body = _upload(admin_client, "broken.zip", b"not a zip").get_data(as_text=True)
    assert "not a valid zip file" in body
