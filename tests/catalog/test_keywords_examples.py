"""Catalogue keywords (search synonyms) and each built-in template's example input."""
from __future__ import annotations

import pytest
import yaml

from app.catalog.schema import TemplateDataError, validate_extras, validate_template_data
from app.catalog.services import SEED_DIR, seed_extras


def _slugs(page: str) -> set[str]:
    import re
    return set(re.findall(r'data-slug="([a-z0-9-]+)"', page))


@pytest.mark.parametrize("query, expected", [
    ("tweet", {"x-post"}), ("Tweet", {"x-post"}), ("cta", {"landing-page-hero", "cold-email"}),
    ("ecommerce", {"product-description"}), ("seo", {"meta-description", "blog-post-intro"}),
])
def test_search_finds_templates_by_keyword(client, login, query, expected):
    login()
    found = _slugs(client.get(f"/templates?q={query}").get_data(as_text=True))
    assert expected <= found


def test_keyword_search_still_narrows(client, login):
    login()
    found = _slugs(client.get("/templates?q=tweet").get_data(as_text=True))
    assert found == {"x-post"}
    assert _slugs(client.get("/templates?q=tweet&category=Email").get_data(as_text=True)) == set()


def test_every_built_in_template_has_keywords_and_a_valid_example():
    extras = seed_extras()
    for path in sorted(SEED_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        data = validate_template_data(raw, path.name)
        assert extras[data["slug"]]["keywords"], path.name
        example = extras[data["slug"]]["example"]
        required = {f["name"] for f in data["fields"] if f["required"]}
        assert required <= set(example), path.name


def test_an_example_must_fit_its_fields():
    raw = yaml.safe_load((SEED_DIR / "promo-sms.yaml").read_text())
    fields = validate_template_data(raw)["fields"]
    with pytest.raises(TemplateDataError, match="not one of the options"):
        validate_extras({**raw, "example": {**raw["example"], "opt_out": "Maybe"}}, fields)
    with pytest.raises(TemplateDataError, match="field names"):
        validate_extras({**raw, "example": {"nope": "x"}}, fields)
    with pytest.raises(TemplateDataError, match="at most 60"):
        validate_extras({**raw, "example": {**raw["example"], "brand": "x" * 61}}, fields)
    with pytest.raises(TemplateDataError, match="keywords"):
        validate_extras({**raw, "keywords": ["x" * 41]}, fields)


def test_fill_with_an_example_without_javascript(client, login):
    login()
    page = client.get("/write/x-post").get_data(as_text=True)
    assert 'data-action="fill-example"' in page and "Fill with an example" in page
    filled = client.get("/write/x-post?example=1").get_data(as_text=True)
    assert "We just launched the Brewline Mini" in filled
    assert "brewline.example/mini" in filled
