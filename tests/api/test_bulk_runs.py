"""Bulk runs through the API: JSON rows through the bulk service's own checks, quota and start, a real
worker on both queues writing the rows, progress and results; and every refusal writing nothing."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select

from app.extensions import db
from tests.api.conftest import bulk_counts

ROWS = [{"product": "Mug", "features": "Stoneware, 350 ml", "tone": "friendly", "variants": 1},
        {"product": "Teapot", "features": "Cast iron, 1 l", "variants": 2}]


def test_create_follow_and_download(api, app, bulk_key, run_bulk_worker):
    response = api.post("/api/v1/bulk-runs", {"template": "product-description", "rows": ROWS}, key=bulk_key)
    assert response.status_code == 202, response.get_json().get("errors")
    run = response.get_json()
    assert run["status"] == "running" and run["total_rows"] == 2
    assert run["counts"] == {"done": 0, "failed": 0, "skipped": 0, "remaining": 2}
    assert response.headers["Location"] == run["links"]["self"]
    run_bulk_worker()
    got = api.get(f"/api/v1/bulk-runs/{run['id']}", key=bulk_key).get_json()
    assert got["status"] == "finished"
    assert got["counts"] == {"done": 2, "failed": 0, "skipped": 0, "remaining": 0}
    download = api.get(f"/api/v1/bulk-runs/{run['id']}/results.csv", key=bulk_key)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    header = table[0]
    assert header[:6] == ["product", "features", "audience", "keywords", "tone", "variants"]
    assert [r[0] for r in table[1:]] == ["Mug", "Teapot"]
    assert {r[header.index("Status")] for r in table[1:]} == {"Done"}
    teapot = table[2]
    assert teapot[header.index("Variant 1")] and teapot[header.index("Variant 2")]
    xlsx = api.get(f"/api/v1/bulk-runs/{run['id']}/results.xlsx", key=bulk_key)
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    # Charged per row like the browser: 1 + 2 variants.
    from app.quota.models import QuotaLedger
    with app.app_context():
        assert db.session.scalars(select(QuotaLedger)).one().used == 3


def test_idempotent_create(api, app, bulk_key):
    body = {"template": "product-description", "rows": ROWS[:1]}
    first = api.post("/api/v1/bulk-runs", body, key=bulk_key, headers={"Idempotency-Key": "run-1"})
    again = api.post("/api/v1/bulk-runs", body, key=bulk_key, headers={"Idempotency-Key": "run-1"})
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["id"] == first.get_json()["id"]
    assert bulk_counts(app)["runs"] == 1
    other = api.post("/api/v1/bulk-runs", {**body, "rows": ROWS}, key=bulk_key, headers={"Idempotency-Key": "run-1"})
    assert other.status_code == 422 and other.get_json()["type"].endswith("idempotency-key-reused")


def test_bad_rows_are_422_with_field_names_and_nothing_written(api, app, bulk_key):
    before = bulk_counts(app)
    response = api.post("/api/v1/bulk-runs", {"template": "product-description", "rows": [
        {"product": "Mug", "features": "ok"}, {"product": "", "features": "x" * 5000, "tone": "Grumpy"},
        {"product": "Cup", "features": "ok", "colour": "red"}]}, key=bulk_key)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert {"rows[1].product", "rows[2].colour"} <= set(errors), errors
    assert "rows[0].product" not in errors
    response = api.post("/api/v1/bulk-runs", {"template": "product-description", "rows": [
        {"product": "", "features": "x" * 5000, "tone": "Grumpy", "variants": 99}]}, key=bulk_key)
    assert response.status_code == 422
    assert {"rows[0].product", "rows[0].features", "rows[0].tone", "rows[0].variants"} <= set(
        response.get_json()["errors"]), response.get_json()
    for body in ({"template": "product-description", "rows": []}, {"template": "product-description"},
                 {"template": "product-description", "rows": [{"product": ["a"]}]}):
        assert api.post("/api/v1/bulk-runs", body, key=bulk_key).status_code == 422
    assert api.post("/api/v1/bulk-runs", {"template": "nope", "rows": ROWS}, key=bulk_key).status_code == 404
    assert bulk_counts(app) == before


def test_quota_short_is_402_and_nothing_written(api, app, bulk_key):
    before = bulk_counts(app)
    rows = [{"product": f"Mug {i}", "features": "Stoneware", "variants": 3} for i in range(5)]  # 15 > 10
    response = api.post("/api/v1/bulk-runs", {"template": "product-description", "rows": rows}, key=bulk_key)
    assert response.status_code == 402, response.get_json()
    assert response.get_json()["remaining"] == 10
    assert bulk_counts(app) == before
    fitting = api.post("/api/v1/bulk-runs", {"template": "product-description", "rows": rows,
                                             "only_fitting": True}, key=bulk_key).get_json()
    assert fitting["total_rows"] == 5 and fitting["counts"]["skipped"] == 2


def test_scope_plan_and_tenancy(api, app, team, bulk_key, make_user):
    body = {"template": "product-description", "rows": ROWS[:1]}
    wrong = api.post("/api/v1/bulk-runs", body)  # generate+read only
    assert wrong.status_code == 403 and wrong.get_json()["required_scope"] == "bulk"
    run_id = api.post("/api/v1/bulk-runs", body, key=bulk_key).get_json()["id"]
    assert api.get(f"/api/v1/bulk-runs/{run_id}").status_code == 403
    stranger = api.stranger_key(make_user)
    from app.api import keys  # noqa: F401
    with app.app_context():
        from app.api.models import ApiKey
        key = db.session.scalars(select(ApiKey).order_by(ApiKey.id.desc())).first()
        key.scopes = ["bulk"]
        db.session.commit()
    for path in (f"/api/v1/bulk-runs/{run_id}", f"/api/v1/bulk-runs/{run_id}/results.csv"):
        assert api.get(path, key=stranger).status_code == 404
    # A member's key sees its own runs only; the owner's sees the member's.
    member = team.add("member@example.com")
    member_key = api.make_key(scopes=("bulk",), charge_user_id=member)
    assert api.get(f"/api/v1/bulk-runs/{run_id}", key=member_key).status_code == 404
    mine = api.post("/api/v1/bulk-runs", {"template": "product-description", "rows": ROWS[1:]}, key=member_key)
    assert mine.status_code == 202, mine.get_json()
    assert api.get(f"/api/v1/bulk-runs/{mine.get_json()['id']}", key=bulk_key).status_code == 200
    # Pro plan: API access but no bulk runs.
    from app.workspaces import services as teams
    with app.app_context():
        teams.set_seats(team.workspace_id, 5, generations_per_seat=10, plan="pro")
        db.session.commit()
    refused = api.get(f"/api/v1/bulk-runs/{run_id}", key=bulk_key)
    assert refused.status_code in (403,) and refused.get_json()["type"].endswith("plan-required")
