"""Webhooks that are signed but odd: never a 500, never lost.

- A signed event of an unexpected shape is answered 400 and recorded as `rejected` (once per body).
- A stored event whose job cannot be enqueued (Redis down) is applied once Redis is back (the outbox).
"""
from __future__ import annotations

import json
import time

import pytest
import stripe
from sqlalchemy import select

from app.billing.models import StripeEvent
from app.extensions import db
from tests.billing.conftest import WEBHOOK_SECRET
from tests.outbox.conftest import own_redis  # noqa: F401  (fixture)
from tests.outbox.test_outbox import _outbox, _sweep

GOOD = {"id": "evt_shape", "object": "event", "type": "customer.subscription.updated", "created": 1_790_000_000,
        "data": {"object": {"id": "sub_1", "object": "subscription", "customer": "cus_1"}}}


def _with(**changes) -> dict:
    event = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is ...:
            event.pop(key)
        else:
            event[key] = value
    return event


SHAPES = {
    "array": [GOOD],
    "empty object": {},
    "string": "evt_1",
    "null": None,
    "number": 42,
    "missing data": _with(data=...),
    "missing id": _with(id=...),
    "missing type": _with(type=...),
    "created as text": _with(created="1790000000"),
    "created as float": _with(created=1.5),
    "created as bool": _with(created=True),
    "created too large": _with(created=10**12),
    "created negative": _with(created=-1),
    "id as number": _with(id=5),
    "id too long": _with(id="evt_" + "x" * 200),
    "id with NUL": _with(id="evt_\x00"),
    "type as list": _with(type=["customer.subscription.updated"]),
    "data as list": _with(data=[]),
    "object as list": _with(data={"object": []}),
    "customer as number": _with(data={"object": {"object": "subscription", "customer": 7}}),
    "customer object without id": _with(data={"object": {"object": "customer", "id": None}}),
}


def _post_signed(app, body: str):
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET, timestamp=int(time.time()))
    return app.test_client().post("/billing/webhook", data=body.encode(),
                                  headers={"Stripe-Signature": header, "Content-Type": "application/json"})


@pytest.mark.parametrize("shape", list(SHAPES))
def test_signed_event_of_unexpected_shape_is_400_and_recorded_once(app, billing, run_worker, shape):
    body = json.dumps(SHAPES[shape])
    response = _post_signed(app, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "unexpected event" in response.json["error"]
    assert _post_signed(app, body).status_code == 400  # Stripe's retry: still 400, still one record
    with app.app_context():
        [record] = db.session.scalars(select(StripeEvent)).all()
        assert record.status == "rejected" and record.id.startswith("rejected-") and record.note
    assert _outbox(app) == []
    run_worker()  # nothing was queued for it


def test_a_body_that_is_not_json_is_400(app, billing):
    assert _post_signed(app, "{not json").status_code == 400
    assert _post_signed(app, "").status_code == 400


def test_the_good_shape_is_accepted(app, billing):
    assert _post_signed(app, json.dumps(GOOD)).status_code == 200
    with app.app_context():
        assert db.session.get(StripeEvent, "evt_shape").status == "received"


def test_stripe_event_whose_enqueue_fails_is_applied_when_redis_is_back(app, team, billing, deliver, own_redis,
                                                                       run_worker):
    from tests.billing.test_billing import _reset_team_to_free, _subscribe, _workspace

    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    billing.update_subscription(sub_id, quantity=4)
    event = billing.event("customer.subscription.updated", billing.subscriptions[sub_id])
    own_redis.kill()
    assert deliver(event).status_code == 200  # stored with its job in the outbox: safe to acknowledge
    retry = deliver(event)  # Stripe's retry
    assert retry.status_code == 200 and retry.json["duplicate"] is True
    with app.app_context():
        assert db.session.get(StripeEvent, event["id"]).status == "received"
    assert [t for t, _a, _e in _outbox(app)] == [f"stripe-{event['id']}"]
    own_redis.start()
    assert _sweep(app) == 1
    run_worker()
    with app.app_context():
        assert db.session.get(StripeEvent, event["id"]).status == "applied"
    assert _workspace(app, team).seats == 4
