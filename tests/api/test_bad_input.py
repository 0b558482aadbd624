"""Every bad input of the issue: a clear problem+json answer, and nothing written."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from tests.api.conftest import counts

PROBLEM = "application/problem+json"


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)[:800]
    document = response.get_json()
    assert document["type"] == f"/api/v1/docs#{code}", document
    assert document["status"] == status and document["detail"] and document["title"]
    return document


def assert_nothing_written(app, before):
    assert counts(app) == before


@pytest.mark.parametrize("header, code", [
    (None, "missing-key"),
    ("Basic abc", "malformed-key"),
    ("Bearer", "malformed-key"),
    ("Bearer sk_live_abcdefghijklmnopqrstuvwxyz0123456789ABCD", "malformed-key"),
    ("Bearer cd_test_short", "malformed-key"),
    ("Bearer cd_live_" + "a" * 40, "malformed-key"),  # the other environment's kind
    ("Bearer cd_test_" + "a" * 40, "invalid-key"),
])
def test_missing_malformed_or_unknown_key(api, app, header, code):
    before = counts(app)
    headers = {"Authorization": header} if header else {}
    response = api.client.post("/api/v1/generations", json=api.body(), headers=headers)
    problem(response, 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_written(app, before)


def test_revoked_and_expired_keys(api, app):
    from app.api.models import ApiKey
    from app.core import utcnow
    revoked, expired = api.make_key(), api.make_key()
    with app.app_context():
        rows = db.session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
        rows[-2].revoked_at = utcnow()
        rows[-1].expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    before = counts(app)
    problem(api.post("/api/v1/generations", api.body(), key=revoked), 401, "revoked-key")
    problem(api.post("/api/v1/generations", api.body(), key=expired), 401, "expired-key")
    assert_nothing_written(app, before)


def test_wrong_scope(api, app):
    read_only = api.make_key(scopes=("read",))
    before = counts(app)
    document = problem(api.post("/api/v1/generations", api.body(), key=read_only), 403, "insufficient-scope")
    assert document["required_scope"] == "generate"
    write_only = api.make_key(scopes=("generate",))
    problem(api.get("/api/v1/templates", key=write_only), 403, "insufficient-scope")
    assert_nothing_written(app, before)


def test_a_logged_in_browser_is_not_an_api_client(api, team):
    browser = team.client("owner@example.com")
    assert browser.get("/history").status_code == 200  # the cookie works for pages
    problem(browser.get("/api/v1/templates"), 401, "missing-key")
    problem(browser.post("/api/v1/generations", json=api.body()), 401, "missing-key")


def test_plan_without_api_access(api, app):
    from app.workspaces import services as teams
    with app.app_context():
        teams.set_seats(api.team.workspace_id, 5, plan="pro")
        db.session.commit()
    before = counts(app)
    problem(api.post("/api/v1/generations", api.body()), 403, "plan-required")
    assert_nothing_written(app, before)


def test_another_workspaces_ids_are_404(api, app, run_worker, make_user):
    their_key = api.stranger_key(make_user)
    theirs = api.post("/api/v1/generations", api.body(variants=1), key=their_key).get_json()["id"]
    run_worker()
    variant_id = api.get(f"/api/v1/generations/{theirs}", key=their_key).get_json()["variants"][0]["id"]
    before = counts(app)
    problem(api.get(f"/api/v1/generations/{theirs}"), 404, "not-found")
    problem(api.get(f"/api/v1/generations/{theirs}/stream"), 404, "not-found")
    problem(api.post(f"/api/v1/variants/{variant_id}/favourite", {"favourite": True}), 404, "not-found")
    problem(api.post(f"/api/v1/variants/{variant_id}/text", {"text": "mine now"}), 404, "not-found")
    assert api.get(f"/api/v1/generations/{theirs}", key=their_key).get_json()["variants"][0]["favourite"] is False
    assert_nothing_written(app, before)


@pytest.mark.parametrize("change, field", [
    ({"colour": "red"}, "colour"),                                   # unknown top-level field
    ({"variants": "3"}, "variants"),                                 # wrong type
    ({"variants": 6}, "variants"),                                   # out of range
    ({"variants": 0}, "variants"),
    ({"variants": True}, "variants"),
    ({"tone": "Sarcastic"}, "tone"),
    ({"template": "x" * 81}, "template"),                            # over-long string
    ({"fields": {"topic": "x" * 5000}}, "fields.topic"),            # over the field's max_length
    ({"fields": {"topic": ["a list"]}}, "fields.topic"),             # wrong type inside fields
    ({"fields": {"nonsense": "x"}}, "fields.nonsense"),              # unknown template field
    ({"fields": {}}, "fields.topic"),                                # required field missing
    ({"brand_voice_id": 123456}, "brand_voice_id"),                  # another workspace's / unknown
])
def test_invalid_bodies_name_the_field(api, app, change, field):
    body = api.body()
    body.update(change)
    before = counts(app)
    document = problem(api.post("/api/v1/generations", body), 422, "validation-failed")
    assert field in document["errors"], document
    assert_nothing_written(app, before)


def test_unknown_template_is_404_and_other_bodies(api, app):
    before = counts(app)
    problem(api.post("/api/v1/generations", api.body(template="no-such-template")), 404, "not-found")
    problem(api.client.post("/api/v1/generations", data="not json", headers=api.headers(**{"Content-Type": "text/plain"})),
            422, "validation-failed")
    problem(api.client.post("/api/v1/generations", data="{broken", headers=api.headers(**{"Content-Type": "application/json"})),
            400, "bad-request")
    problem(api.get("/api/v1/nothing-here"), 404, "not-found")
    assert_nothing_written(app, before)


def test_body_over_the_limit(api, app):
    body = api.body()
    body["fields"]["topic"] = "x" * (app.config["API_MAX_BODY_BYTES"] + 10)
    before = counts(app)
    problem(api.post("/api/v1/generations", body), 413, "body-too-large")
    assert_nothing_written(app, before)


def test_quota_exhausted_is_402_with_remaining_and_renewal(api, app):
    from app.quota import services as quota
    from app.workspaces.models import Workspace
    with app.app_context():
        db.session.execute(update(Workspace).values(generations_per_seat=2))
        db.session.commit()
    before = counts(app)
    document = problem(api.post("/api/v1/generations", api.body(variants=3)), 402, "quota-exhausted")
    with app.app_context():
        period = quota.quota_period(db.session.get(Workspace, api.team.workspace_id))
    assert document["remaining"] == 2 and document["requested"] == 3
    assert document["renews_at"] == period.end.isoformat()
    assert_nothing_written(app, before)


def test_bad_queries(api):
    problem(api.get("/api/v1/generations?limit=1000"), 422, "validation-failed")
    problem(api.get("/api/v1/generations?cursor=%%%%"), 422, "validation-failed")
    problem(api.get("/api/v1/generations?created_after=yesterday"), 422, "validation-failed")
    problem(api.get("/api/v1/usage?start=2026-02-01&end=2026-01-01"), 422, "validation-failed")
    problem(api.post("/api/v1/generations?wait=61", api.body()), 422, "validation-failed")
