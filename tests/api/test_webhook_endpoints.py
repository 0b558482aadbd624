"""Webhook endpoints through the API: registered with the browser's SSRF guard, deliveries listed
and redelivered by a real worker to a real receiver on loopback (allowed by the explicit setting)."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from app.extensions import db
from tests.webhooks.conftest import allow_loopback, receiver  # noqa: F401


def endpoint_count(app) -> int:
    from app.webhooks.models import WebhookEndpoint
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(WebhookEndpoint))


def test_register_deliver_list_redeliver_delete(api, app, receiver, allow_loopback, run_worker):  # noqa: F811
    key = api.make_key(scopes=("webhooks", "generate"))
    created = api.post("/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["generation.completed"]},
                       key=key)
    assert created.status_code == 201, created.get_json()
    endpoint = created.get_json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["generation.completed"]
    got = api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", key=key).get_json()
    assert "secret" not in got and got["url"] == receiver.url
    assert [e["id"] for e in api.get("/api/v1/webhook-endpoints", key=key).get_json()["data"]] == [endpoint["id"]]

    assert api.post("/api/v1/generations", api.body(variants=1), key=key).status_code == 202
    run_worker()
    first = receiver.next()
    event_id = json.loads(first.body)["id"]
    assert first.headers["Copydeck-Signature"].startswith("t=")
    deliveries = api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries", key=key).get_json()["data"]
    assert len(deliveries) == 1 and deliveries[0]["status_code"] == 200 and deliveries[0]["event_id"] == event_id

    again = api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries/{deliveries[0]['id']}/redeliver",
                     key=key)
    assert again.status_code == 202 and again.get_json()["redelivery_of"] == deliveries[0]["id"]
    run_worker()
    assert json.loads(receiver.next().body)["id"] == event_id  # the same event id: receivers deduplicate
    assert len(api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries", key=key).get_json()["data"]) == 2

    assert api.client.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=api.headers(key)).status_code == 204
    assert api.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", key=key).status_code == 404


def test_refusals_write_nothing(api, app, team, receiver, make_user):  # noqa: F811
    key = api.make_key(scopes=("webhooks",))
    # No allow-list: a loopback receiver is what the SSRF guard refuses.
    refused = api.post("/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["generation.completed"]},
                       key=key)
    assert refused.status_code == 422 and "url" in refused.get_json()["errors"], refused.get_json()
    for body in ({"url": "https://example.com/h", "events": ["nope"]}, {"url": "https://example.com/h", "events": []},
                 {"url": "https://example.com/h"}, {"url": "https://example.com/h", "events": ["generation.failed"],
                                                     "extra": 1}):
        assert api.post("/api/v1/webhook-endpoints", body, key=key).status_code == 422, body
    wrong = api.post("/api/v1/webhook-endpoints", {"url": "https://example.com/h", "events": ["generation.failed"]})
    assert wrong.status_code == 403 and wrong.get_json()["required_scope"] == "webhooks"
    member = team.add("member@example.com")
    member_key = api.make_key(scopes=("webhooks",), charge_user_id=member)
    as_member = api.get("/api/v1/webhook-endpoints", key=member_key)
    assert as_member.status_code == 403 and as_member.get_json()["type"].endswith("role-required")
    assert endpoint_count(app) == 0


def test_another_workspaces_endpoint_is_404(api, app, receiver, allow_loopback, make_user):  # noqa: F811
    key = api.make_key(scopes=("webhooks",))
    endpoint_id = api.post("/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["generation.failed"]},
                           key=key).get_json()["id"]
    stranger = api.stranger_key(make_user)
    from app.api.models import ApiKey
    with app.app_context():
        db.session.scalars(select(ApiKey).order_by(ApiKey.id.desc())).first().scopes = ["webhooks"]
        db.session.commit()
    for path in (f"/api/v1/webhook-endpoints/{endpoint_id}", f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries"):
        assert api.get(path, key=stranger).status_code == 404
    assert api.client.delete(f"/api/v1/webhook-endpoints/{endpoint_id}",
                             headers=api.headers(stranger)).status_code == 404
    assert endpoint_count(app) == 1
