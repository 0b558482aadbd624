"""Bad input is a clear 4xx, never a 500: huge ids and pages, NUL bytes, odd digits, unpublished templates.

The route walks cover every rule in app.url_map, so a route added later is checked too. With
TESTING on, an exception in a view propagates and fails the test instead of becoming a 500 page.
"""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from sqlalchemy import select, update

from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation
from tests.admin.conftest import admin_client, editor_form  # noqa: F401  (fixture: a logged-in site admin)
from tests.generation.helpers import form_data, submit

HUGE = str(10**20)
NUMBER_PARAMS = ("page", "days", "from", "a", "b", "version", "seats", "target_id", "actor")
NUMBER_FIELDS = ("workspace_id", "project_id", "seats", "generations_per_seat", "cap", "variant_count",
                 "brand_voice", "membership_id")
SESSION_ENDERS = {"auth.logout", "auth.logout_others", "teams.leave", "teams.delete"}


def _rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]


def _url(rule, int_value: str, text_value: str) -> str:
    """The rule's path with every argument filled in (ids with int_value, the rest with text_value)."""
    def fill(match: re.Match) -> str:
        return int_value if match.group(1) == "int" else text_value
    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", fill, rule.rule)


def _call(client, rule, url: str, **kwargs):
    method = "POST" if "POST" in rule.methods else "GET"
    return client.open(url, method=method, **kwargs)


def test_every_route_answers_a_huge_id_with_404(app, admin_client):
    checked = 0
    for rule in _rules(app):
        if not any(type(c).__name__ == "IdConverter" for c in rule._converters.values()):
            continue
        response = _call(admin_client, rule, _url(rule, HUGE, "x"))
        assert response.status_code == 404, (rule.rule, response.status_code)
        checked += 1
    assert checked > 30


def test_every_route_survives_huge_numbers_in_the_query_string(app, admin_client):
    query = "&".join(f"{name}={HUGE}" for name in NUMBER_PARAMS)
    for rule in _rules(app):
        if "GET" not in rule.methods:
            continue
        response = admin_client.get(f"{_url(rule, '1', 'x')}?{query}")
        assert response.status_code != 500, (rule.rule, response.status_code)
    page = admin_client.get(f"/history?page={HUGE}")
    assert page.status_code == 200


def test_every_form_survives_huge_numbers(app, admin_client):
    form = {name: HUGE for name in NUMBER_FIELDS}
    for rule in _rules(app):
        if "POST" not in rule.methods or rule.endpoint in SESSION_ENDERS:
            continue
        response = admin_client.post(_url(rule, "1", "x"), data=form)
        assert response.status_code != 500, (rule.rule, response.status_code)


def test_every_route_refuses_nul_bytes_with_400(app, admin_client):
    for rule in _rules(app):
        in_query = _call(admin_client, rule, f"{_url(rule, '1', 'x')}?q=a%00b")
        assert in_query.status_code == 400, (rule.rule, "query", in_query.status_code)
        in_form = _call(admin_client, rule, _url(rule, "1", "x"), data={"q": "a\x00b"})
        if "POST" in rule.methods:
            assert in_form.status_code == 400, (rule.rule, "form", in_form.status_code)
        if rule._converters and any(type(c).__name__ != "IdConverter" for c in rule._converters.values()):
            in_path = _call(admin_client, rule, _url(rule, "1", quote("a\x00b")))
            assert in_path.status_code == 400, (rule.rule, "path", in_path.status_code)
    response = admin_client.post("/write/x-post", data=form_data(app, "x-post", f_product="mug\x00"))
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Generation)).all() == []


@pytest.mark.parametrize("value", ["٣", "²", "1" * 5000, HUGE, "4.5", "1e3"])
def test_number_fields_take_only_ascii_whole_numbers(app, client, login, value):
    login()
    for field in ("f_sections", "variant_count"):
        response = client.post("/write/blog-post-outline",
                               data=form_data(app, "blog-post-outline", **{field: value}))
        assert response.status_code == 422, (field, response.status_code)
        assert "digits 0-9" in response.get_data(as_text=True) or "Not a valid" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Generation)).all() == []


def test_number_field_still_takes_a_plain_number(app, client, login):
    login()
    generation_id = submit(client, app, "blog-post-outline", f_sections="7")
    with app.app_context():
        assert db.session.get(Generation, generation_id).inputs["sections"] == 7


def test_template_editor_survives_odd_digits(app, admin_client):
    for overrides in ({"sample-variant_count": "²"}, {"sample-variant_count": "1" * 5000},
                      {"fields-0-max_length": "٣"}, {f"fields-{'9' * 5000}-name": "x"}, {"output-max_chars": HUGE}):
        response = admin_client.post("/admin/templates/preview", data=editor_form(**overrides))
        assert response.status_code != 500, overrides


def test_template_schema_bounds_number_fields():
    from app.catalog.schema import TemplateDataError, validate_field
    with pytest.raises(TemplateDataError):
        validate_field({"name": "n", "label": "N", "type": "number", "max": 10**20}, "field")


def test_regenerate_and_more_like_this_after_unpublish_are_409(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        variant_id = generation.variants[0].id
        db.session.execute(update(Template).where(Template.id == generation.template_id)
                           .values(published_version_id=None))
        db.session.commit()
    regenerate = client.post(f"/generations/{generation_id}/regenerate")
    assert regenerate.status_code == 409
    assert "no longer published" in regenerate.get_data(as_text=True)
    more = client.post(f"/variants/{variant_id}/more", headers={"HX-Request": "true"})
    assert more.status_code == 409 and "no longer published" in more.headers["X-Message"]
    with app.app_context():
        assert len(db.session.scalars(select(Generation)).all()) == 1
