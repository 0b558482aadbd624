"""The built-in catalogue: data files, validated strictly, seeded idempotently."""

import pytest
import yaml
from sqlalchemy import func, select

from app.catalog.models import CATEGORIES, Template, TemplateVersion
from app.catalog.schema import TemplateDataError, validate_template_data
from app.catalog.services import SEED_DIR, load_seed_files, seed_templates
from app.extensions import db

REQUIRED = {
    "facebook-ad-primary-text": None, "google-ads-headlines": 30, "google-ads-descriptions": 90,
    "linkedin-ad": None, "instagram-caption": None, "x-post": 280, "press-release": None,
    "media-pitch-email": None, "product-launch-announcement": None, "landing-page-hero": None,
    "product-description": None, "meta-description": 155, "value-proposition": None,
    "taglines-slogans": None, "email-subject-lines": 60, "cold-email": None, "aida": None,
    "pas": None, "bab": None, "change-tone": None, "shorten-text": None, "expand-text": None,
}


def test_catalogue_covers_the_required_templates_and_categories():
    templates = {t["slug"]: t for t in load_seed_files()}
    assert len(templates) >= 20
    assert set(REQUIRED) <= set(templates)
    for slug, limit in REQUIRED.items():
        if limit is not None:
            assert templates[slug]["output"]["max_chars"] == limit, slug
    assert {t["category"] for t in templates.values()} == set(CATEGORIES)
    assert templates["google-ads-headlines"]["output"]["format"] == "list"
    assert templates["x-post"]["output"]["format"] == "single"


def test_seeding_is_idempotent(app_ctx):
    before = db.session.scalar(select(func.count(TemplateVersion.id)))
    counts = seed_templates()
    db.session.commit()
    assert counts["created"] == 0 and counts["updated"] == 0
    assert db.session.scalar(select(func.count(TemplateVersion.id))) == before


def test_a_changed_seed_file_adds_and_publishes_a_new_version(app_ctx, tmp_path):
    source = yaml.safe_load((SEED_DIR / "x-post.yaml").read_text())
    source["description"] = "Changed in a test"
    source["user_prompt"] += "\nKeep it crisp."
    (tmp_path / "x-post.yaml").write_text(yaml.safe_dump(source))
    template = db.session.scalars(select(Template).where(Template.slug == "x-post")).one()
    old_version_id = template.published_version_id
    try:
        assert seed_templates(tmp_path)["updated"] == 1
        db.session.commit()
        db.session.refresh(template)
        assert template.published_version_id != old_version_id
        assert template.published_version.user_prompt.endswith("Keep it crisp.")
        assert db.session.get(TemplateVersion, old_version_id) is not None  # history kept
    finally:
        # The real file differs again, so this publishes its content as a newer version.
        seed_templates()
        db.session.commit()


def _valid():
    return yaml.safe_load((SEED_DIR / "x-post.yaml").read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["fields"][0].update(type="colour"), "unknown field type"),
    (lambda d: d.update(user_prompt="{{ broken "), "user_prompt"),
    (lambda d: d.update(user_prompt="{{ not_a_field }}"), "not_a_field"),
    (lambda d: d.update(category="Misc"), "category"),
    (lambda d: d.update(slug="Bad Slug"), "slug"),
    (lambda d: d["output"].update(variants=9), "variants"),
    (lambda d: d.update(extra="x"), "unknown key"),
    (lambda d: d.update(system_prompt="{{ ''.__class__.__mro__ }}"), "system_prompt"),
])
def test_bad_template_data_is_refused_with_a_clear_message(mutate, message):
    data = _valid()
    mutate(data)
    with pytest.raises(TemplateDataError, match=message):
        validate_template_data(data, "x-post.yaml")


def test_a_slug_clash_refuses_the_whole_load(tmp_path):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(_valid()))
    with pytest.raises(TemplateDataError, match="used twice"):
        load_seed_files(tmp_path)
