"""The one door to Stripe.

Every Stripe call goes through here, with the official client. Every POST
carries an idempotency key derived from our own ids, so a retried request
(ours or the library's) cannot create a second customer, session or change.
STRIPE_API_BASE points the client at another API host (the test fake, or
stripe-mock); unset, it talks to api.stripe.com.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import stripe
from flask import current_app

if TYPE_CHECKING:
    from stripe.params import EventListParams

# Pinned so that objects have the shape this code reads (periods live on subscription items).
API_VERSION = "2026-10-28.endive"


class BillingOff(Exception):
    """No Stripe key is configured: billing is off on this instance."""


def enabled() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def client() -> stripe.StripeClient:
    key = current_app.config.get("STRIPE_SECRET_KEY")
    if not key:
        raise BillingOff()
    cache = current_app.extensions.setdefault("stripe_clients", {})
    base = current_app.config.get("STRIPE_API_BASE")
    if (key, base) not in cache:
        kwargs: dict[str, Any] = {"stripe_version": API_VERSION, "max_network_retries": 2}
        if base:
            kwargs["base_addresses"] = {"api": base}
        cache[(key, base)] = stripe.StripeClient(key, **kwargs)
    return cache[(key, base)]


def _opts(idempotency_key: str) -> stripe.RequestOptions:
    return {"idempotency_key": f"copydeck-{idempotency_key}"}


def create_customer(workspace_id: int, name: str, email: str):
    return client().v1.customers.create(
        params={"name": name, "email": email, "metadata": {"workspace_id": str(workspace_id)}},
        options=_opts(f"customer-{workspace_id}"),
    )


def create_checkout_session(*, workspace_id: int, customer_id: str, price_id: str, seats: int,
                            min_seats: int, max_seats: int, success_url: str, cancel_url: str, attempt: str):
    return client().v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": str(workspace_id),
            "line_items": [{
                "price": price_id, "quantity": seats,
                "adjustable_quantity": {"enabled": True, "minimum": min_seats, "maximum": max_seats},
            }],
            "subscription_data": {"metadata": {"workspace_id": str(workspace_id)}},
            "metadata": {"workspace_id": str(workspace_id)},
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        options=_opts(f"checkout-{workspace_id}-{attempt}"),
    )


def retrieve_checkout_session(session_id: str):
    return client().v1.checkout.sessions.retrieve(session_id)


def create_portal_session(*, workspace_id: int, customer_id: str, return_url: str, attempt: str):
    return client().v1.billing_portal.sessions.create(
        params={"customer": customer_id, "return_url": return_url},
        options=_opts(f"portal-{workspace_id}-{attempt}"),
    )


def list_subscriptions(customer_id: str) -> list[dict]:
    """The customer's subscriptions of every status, as plain dicts."""
    page = client().v1.subscriptions.list(params={"customer": customer_id, "status": "all", "limit": 10})
    return [subscription.to_dict() for subscription in page.data]


def preview_seat_change(*, customer_id: str, subscription_id: str, item_id: str, seats: int):
    return client().v1.invoices.create_preview(params={
        "customer": customer_id,
        "subscription": subscription_id,
        "subscription_details": {"items": [{"id": item_id, "quantity": seats}],
                                 "proration_behavior": "always_invoice"},
    })


def change_seats(*, workspace_id: int, subscription_id: str, item_id: str, seats: int, attempt: str):
    return client().v1.subscriptions.update(
        subscription_id,
        params={"items": [{"id": item_id, "quantity": seats}], "proration_behavior": "always_invoice"},
        options=_opts(f"seats-{workspace_id}-{seats}-{attempt}"),
    )


def list_events(created_after: int, starting_after: str | None = None):
    params: EventListParams = {"created": {"gt": created_after}, "limit": 100}
    if starting_after:
        params["starting_after"] = starting_after
    return client().v1.events.list(params=params)


def construct_event(payload: bytes, signature: str | None) -> Any:
    """Verify a webhook's signature, then parse its body as JSON, whatever its shape: checking the shape
    is the caller's (a signed body may still be an array or miss fields).
    Raises stripe.SignatureVerificationError, or ValueError for a body that is not JSON."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        raise BillingOff()
    text = payload.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if not signature:
        raise stripe.SignatureVerificationError("no Stripe-Signature header", signature, text)
    stripe.WebhookSignature.verify_header(text, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
    return json.loads(text)
