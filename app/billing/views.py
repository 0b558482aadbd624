"""Billing pages (owner only) and the Stripe webhook."""
from __future__ import annotations

import hashlib
import logging
import secrets
from functools import wraps
from typing import Any

import stripe
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from app.bounds import whole_number
from app.billing import gateway, services
from app.billing.models import StripeEvent
from app.extensions import csrf, db, limiter
from app.web import owner_required, workspace_required
from app.outbox.services import enqueue_after_commit

log = logging.getLogger(__name__)
bp = Blueprint("billing", __name__)

HANDLED_EVENTS = {
    "checkout.session.completed", "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "customer.subscription.paused", "customer.subscription.resumed",
    "invoice.paid", "invoice.payment_failed",
}
STRIPE_DOWN = "Stripe could not be reached. Nothing was changed; please try again in a minute."


def billing_on(view):
    """Billing actions need Stripe; without it, explain on the billing page."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not gateway.enabled():
            flash("Billing is off on this instance: an operator assigns plans.", "info")
            return redirect(url_for("billing.index"))
        return view(*args, **kwargs)
    return wrapper


def _page(status: int = 200, **extra):
    workspace = g.workspace
    return render_template(
        "billing/index.html", enabled=gateway.enabled(), plans=services.plans(),
        current=services.current_plan(workspace), in_use=services.seats_in_use(workspace),
        grace_ends=services.grace_ends(workspace), attempt=secrets.token_hex(8), **extra,
    ), status


@bp.route("/billing")
@workspace_required
@owner_required
def index():
    return _page()


def _customer_id() -> str:
    """The workspace's Stripe customer, created first (with our id in its metadata)."""
    workspace = g.workspace
    if workspace.stripe_customer_id:
        return workspace.stripe_customer_id
    customer = gateway.create_customer(workspace.id, workspace.name, current_user.email)
    workspace.stripe_customer_id = customer["id"]
    db.session.commit()
    return customer["id"]


@bp.route("/billing/checkout", methods=["POST"])
@workspace_required
@owner_required
@billing_on
@limiter.limit("20 per hour")
def checkout():
    chosen = services.plan(request.form.get("plan"))
    seats = request.form.get("seats", type=whole_number)
    attempt = (request.form.get("attempt") or secrets.token_hex(8))[:32]
    if chosen is None or not chosen.stripe_price_id:
        flash("Choose a paid plan.", "error")
        return _page(422)
    if seats is None or not chosen.min_seats <= seats <= chosen.max_seats:
        flash(f"{chosen.name} has {chosen.min_seats} to {chosen.max_seats} seats.", "error")
        return _page(422)
    if seats < services.seats_in_use(g.workspace):
        flash(f"You have {services.seats_in_use(g.workspace)} members and pending invitations: choose at least "
              "that many seats, or remove members first.", "error")
        return _page(422)
    if g.workspace.subscription_status in ("active", "trialing", "past_due", "unpaid", "paused"):
        flash("This workspace already has a subscription. Change seats below, or manage it in the portal.", "error")
        return _page(409)
    try:
        session = gateway.create_checkout_session(
            workspace_id=g.workspace.id, customer_id=_customer_id(), price_id=chosen.stripe_price_id, seats=seats,
            min_seats=max(chosen.min_seats, services.seats_in_use(g.workspace)), max_seats=chosen.max_seats,
            success_url=url_for("billing.success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for("billing.index", _external=True), attempt=attempt,
        )
    except stripe.StripeError as exc:
        log.warning("checkout failed: %r", exc)
        flash(STRIPE_DOWN, "error")
        return _page(502)
    return redirect(session["url"], code=303)


@bp.route("/billing/success")
@workspace_required
@owner_required
@billing_on
def success():
    """Back from Checkout: sync at once, so the new plan shows without waiting for a webhook."""
    session_id = request.args.get("session_id", "")
    if not session_id:
        abort(404)
    try:
        session = gateway.retrieve_checkout_session(session_id)
    except stripe.InvalidRequestError:
        abort(404)
    except stripe.StripeError:
        flash("Your payment went through; we will show your new plan as soon as Stripe confirms it.", "info")
        return redirect(url_for("billing.index"))
    if session["customer"] != g.workspace.stripe_customer_id:
        abort(404)
    services.sync(session["customer"])
    db.session.commit()
    db.session.refresh(g.workspace)
    return render_template("billing/success.html", current=services.current_plan(g.workspace))


@bp.route("/billing/portal", methods=["POST"])
@workspace_required
@owner_required
@billing_on
def portal():
    if not g.workspace.stripe_customer_id:
        abort(404)
    try:
        session = gateway.create_portal_session(
            workspace_id=g.workspace.id, customer_id=g.workspace.stripe_customer_id,
            return_url=url_for("billing.index", _external=True), attempt=secrets.token_hex(8))
    except stripe.StripeError:
        flash(STRIPE_DOWN, "error")
        return _page(502)
    return redirect(session["url"], code=303)


def _seat_change_error(seats: int | None) -> str | None:
    workspace = g.workspace
    chosen = services.plan(workspace.subscribed_plan)
    if not workspace.stripe_subscription_id or chosen is None:
        return "There is no subscription to change; choose a plan first."
    if seats is None or not chosen.min_seats <= seats <= chosen.max_seats:
        return f"{chosen.name} has {chosen.min_seats} to {chosen.max_seats} seats."
    in_use = services.seats_in_use(workspace)
    if seats < in_use:
        return (f"{in_use} seats are in use by members and pending invitations. Remove members or revoke "
                "invitations first, then reduce the seats.")
    return None


@bp.route("/billing/seats/preview")
@workspace_required
@owner_required
@billing_on
def seats_preview():
    seats = request.args.get("seats", type=whole_number)
    error = _seat_change_error(seats)
    if error:
        return render_template("billing/_preview.html", error=error), 422
    try:
        invoice = gateway.preview_seat_change(
            customer_id=g.workspace.stripe_customer_id, subscription_id=g.workspace.stripe_subscription_id,
            item_id=g.workspace.stripe_subscription_item_id, seats=seats)
    except stripe.StripeError:
        return render_template("billing/_preview.html", error=STRIPE_DOWN), 502
    return render_template("billing/_preview.html", error=None, invoice=invoice, seats=seats,
                           attempt=secrets.token_hex(8))


@bp.route("/billing/seats", methods=["POST"])
@workspace_required
@owner_required
@billing_on
def change_seats():
    seats = request.form.get("seats", type=whole_number)
    error = _seat_change_error(seats)
    if error:
        flash(error, "error")
        return _page(422)
    try:
        gateway.change_seats(workspace_id=g.workspace.id, subscription_id=g.workspace.stripe_subscription_id,
                             item_id=g.workspace.stripe_subscription_item_id, seats=seats,
                             attempt=(request.form.get("attempt") or "")[:32])
        services.sync(g.workspace.stripe_customer_id)
        db.session.commit()
    except stripe.StripeError:
        flash(STRIPE_DOWN, "error")
        return _page(502)
    flash(f"Your workspace now has {seats} seats.", "success")
    return redirect(url_for("billing.index"))


@bp.route("/billing/webhook", methods=["POST"])
@csrf.exempt
@limiter.exempt
def webhook():
    """Verify, store once, acknowledge; the slow part (re-syncing) is an RQ job, recorded through the
    outbox in the transaction that stores the event, so a stored event is always applied even when Redis
    fails right then (Stripe's retry is answered 'duplicate': the event is already safe with us).
    A signed event of an unexpected shape is answered 400 and recorded as `rejected`."""
    payload = request.get_data()
    try:
        event = gateway.construct_event(payload, request.headers.get("Stripe-Signature"))
    except gateway.BillingOff:
        abort(404)
    except (ValueError, stripe.SignatureVerificationError):
        return {"error": "invalid signature or payload"}, 400
    problem = event_shape_problem(event)
    if problem:
        _record_rejected(payload, event, problem)
        return {"error": f"unexpected event: {problem}"}, 400
    obj = event["data"]["object"]
    customer = obj.get("customer") if obj.get("object") != "customer" else obj.get("id")
    handled = event["type"] in HANDLED_EVENTS
    record = StripeEvent(id=event["id"], type=event["type"], customer_id=customer, created=event["created"],
                         payload=event, status="received" if handled else "ignored")
    try:
        db.session.add(record)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return {"received": True, "duplicate": True}, 200
    if handled:
        enqueue_after_commit(db.session, "app.billing.tasks.apply_event", event["id"],
                             job_id=f"stripe-{event['id']}", job_timeout=120, retry=(3, [10, 60, 300]))
    db.session.commit()
    return {"received": True}, 200


MAX_STRIPE_ID = 80  # the width of stripe_events.id, .type and .customer_id
MAX_TIMESTAMP = 2**31 - 1  # stripe_events.created is a 32-bit integer


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_STRIPE_ID and "\x00" not in value


def event_shape_problem(event: Any) -> str | None:
    """What makes a (signed) event unusable, or None: the fields we read must have Stripe's types."""
    if not isinstance(event, dict):
        return "the event is not a JSON object"
    for key in ("id", "type"):
        if not _short_text(event.get(key)):
            return f"'{key}' must be a string of 1 to {MAX_STRIPE_ID} characters"
    created = event.get("created")
    if type(created) is not int or not 0 <= created <= MAX_TIMESTAMP:
        return "'created' must be a Unix timestamp (an integer)"
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "'data.object' must be an object"
    obj = data["object"]
    if obj.get("object") == "customer":
        if not _short_text(obj.get("id")):
            return "the customer's 'id' must be a string"
    elif obj.get("customer") is not None and not _short_text(obj.get("customer")):
        return "'data.object.customer' must be a customer id"
    return None


def _record_rejected(payload: bytes, event: Any, problem: str) -> None:
    """Keep a rejected event for operators, once per distinct body (its id is the body's hash)."""
    fields = event if isinstance(event, dict) else {}
    event_type, created = fields.get("type"), fields.get("created")
    record = StripeEvent(
        id=f"rejected-{hashlib.sha256(payload).hexdigest()}",
        type=event_type if _short_text(event_type) else "(unknown)",
        created=created if type(created) is int and 0 <= created <= MAX_TIMESTAMP else 0,
        payload=event if isinstance(event, dict) else {"body": event},
        status="rejected", note=problem[:300],
    )
    log.warning("stripe webhook rejected: %s", problem)
    try:
        db.session.add(record)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # the same body again: already recorded
