"""Billing fixtures: the fake Stripe API, billing switched on, and signed webhooks."""
from __future__ import annotations

import pytest

from app.billing.services import seed_plans
from app.extensions import db
from tests.fakes.stripe_server import FakeStripe

WEBHOOK_SECRET = "whsec_test_secret"


@pytest.fixture(scope="session")
def fake_stripe():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def billing(app, fake_stripe):
    """Billing on, pointed at the fake; plans carry the fake's price ids."""
    fake_stripe.reset()
    settings = {"STRIPE_SECRET_KEY": "sk_test_fake", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "STRIPE_API_BASE": fake_stripe.base_url, "STRIPE_PRICE_PRO": "price_pro_test",
                "STRIPE_PRICE_BUSINESS": "price_business_test"}
    saved = {key: app.config.get(key) for key in settings}
    app.config.update(settings)
    with app.app_context():
        seed_plans()
        db.session.commit()
        db.session.remove()
    yield fake_stripe
    app.config.update(saved)
    with app.app_context():
        seed_plans()
        db.session.commit()
        db.session.remove()


@pytest.fixture
def deliver(app, billing):
    """POST a correctly signed webhook for an event to the app."""
    client = app.test_client()

    def send(event: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
        payload, header = billing.signed(event, secret, timestamp)
        return client.post("/billing/webhook", data=payload,
                           headers={"Stripe-Signature": header, "Content-Type": "application/json"})

    return send
