"""Writing copy through the API: the browser's rules, its quota and its job, end to end."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from tests.api.conftest import counts


def test_create_run_and_get(api, app, run_worker):
    response = api.post("/api/v1/generations", api.body(variants=2))
    assert response.status_code == 202, response.get_json()
    created = response.get_json()
    assert created["status"] == "queued" and created["variants"] == []
    assert response.headers["Location"].endswith(f"/api/v1/generations/{created['id']}")
    assert created["links"]["stream"].endswith(f"/api/v1/generations/{created['id']}/stream")
    run_worker()
    got = api.get(f"/api/v1/generations/{created['id']}").get_json()
    assert got["status"] == "succeeded"
    assert len(got["variants"]) == 2
    for variant in got["variants"]:
        assert variant["char_count"] == len(variant["text"]) > 0
        assert {"over_limit", "cut_off", "favourite", "rating"} <= set(variant)
    assert got["usage"]["total_tokens"] == got["usage"]["prompt_tokens"] + got["usage"]["completion_tokens"] > 0
    # Charged like the browser: 2 variants on the key's member's ledger.
    from app.quota.models import QuotaLedger
    with app.app_context():
        ledger = db.session.scalars(select(QuotaLedger)).one()
        assert (ledger.used, ledger.reserved, ledger.subject) == (2, 0, f"user:{api.owner_id}")


def test_list_filters_and_cursor(api, app, run_worker):
    ids = [api.post("/api/v1/generations", api.body(variants=1)).get_json()["id"] for _ in range(3)]
    other = api.post("/api/v1/generations", api.body("meta-description", variants=1)).get_json()["id"]
    run_worker()
    page = api.get("/api/v1/generations?limit=2").get_json()
    assert [g["id"] for g in page["data"]] == [other, ids[2]]
    rest = api.get(f"/api/v1/generations?limit=2&cursor={page['next_cursor']}").get_json()
    assert [g["id"] for g in rest["data"]] == [ids[1], ids[0]] and rest["next_cursor"] is None
    only = api.get("/api/v1/generations?template=meta-description").get_json()
    assert [g["id"] for g in only["data"]] == [other]
    variant_id = api.get(f"/api/v1/generations/{ids[0]}").get_json()["variants"][0]["id"]
    assert api.post(f"/api/v1/variants/{variant_id}/favourite", {"favourite": True}).status_code == 200
    favs = api.get("/api/v1/generations?favourite=true").get_json()
    assert [g["id"] for g in favs["data"]] == [ids[0]]
    assert api.get("/api/v1/generations?created_after=2999-01-01T00:00:00Z").get_json()["data"] == []


def test_rate_and_edit_a_variant(api, app, run_worker):
    generation_id = api.post("/api/v1/generations", api.body(variants=1)).get_json()["id"]
    run_worker()
    variant = api.get(f"/api/v1/generations/{generation_id}").get_json()["variants"][0]
    rated = api.post(f"/api/v1/variants/{variant['id']}/rating", {"rating": -1}).get_json()
    assert rated["variants"][0]["rating"] == -1
    edited = api.post(f"/api/v1/variants/{variant['id']}/text", {"text": "  Short and new.  "}).get_json()
    assert edited["variants"][0]["text"] == "Short and new."
    assert edited["variants"][0]["original_text"] == variant["text"] and edited["variants"][0]["edited"]


def test_templates_list_and_get(api):
    listed = api.get("/api/v1/templates").get_json()["data"]
    slugs = {t["slug"] for t in listed}
    assert {"x-post", "meta-description"} <= slugs
    one = api.get("/api/v1/templates/meta-description").get_json()
    assert one["output"] == {"variants": 3, "max_chars": 155, "format": "single"}
    page_title = next(f for f in one["fields"] if f["name"] == "page_title")
    assert page_title == {"name": "page_title", "label": "Page title or topic", "type": "text", "required": True,
                          "max_length": 150, "placeholder": "e.g. Pricing - Copydeck AI copywriter"}


def test_usage_for_workspace_and_key(api, app, run_worker, team):
    other_key = api.make_key()
    api.post("/api/v1/generations", api.body(variants=2))
    api.post("/api/v1/generations", api.body(variants=1), key=other_key)
    run_worker()
    usage = api.get("/api/v1/usage").get_json()
    assert usage["workspace"]["generations"] == 2 and usage["workspace"]["variants"] == 3
    assert usage["key"]["generations"] == 1 and usage["key"]["variants"] == 2
    assert usage["quota"]["used"] == 3 and usage["quota"]["remaining"] == 7
    assert counts(app)["links"] == 2
