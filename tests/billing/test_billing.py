"""Stripe subscriptions drive plan, seats and quota period; webhooks are verified, stored once, and re-synced."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from app.billing.models import StripeEvent
from app.extensions import db
from app.workspaces.models import Workspace
from tests.generation.helpers import form_data


def _workspace(app, team) -> Workspace:
    with app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        db.session.expunge(workspace)
        return workspace


def _subscribe(app, team, billing, plan="pro", seats=3) -> str:
    """Owner goes through Checkout; returns the subscription id."""
    owner = team.client("owner@example.com")
    page = owner.get("/billing").get_data(as_text=True)
    assert "Choose Pro" in page
    response = owner.post("/billing/checkout", data={"plan": plan, "seats": str(seats), "attempt": "a1"})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert response.headers["Location"].startswith(billing.base_url + "/checkout/cs_test_")
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    subscription = billing.complete_checkout(session_id)
    success = owner.get(f"/billing/success?session_id={session_id}")
    assert success.status_code == 200
    return subscription["id"]


def _reset_team_to_free(app, team):
    with app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        workspace.plan, workspace.seats, workspace.generations_per_seat = "free", 1, 20
        db.session.commit()


def test_billing_off_says_so_and_operators_assign_plans(app, team):
    owner = team.client("owner@example.com")
    page = owner.get("/billing").get_data(as_text=True)
    assert "Billing is off" in page and "ask your administrator" in page
    assert "flask billing" not in page  # a marketer is not sent to a command line
    assert app.test_client().post("/billing/webhook", data=b"{}").status_code == 404
    result = app.test_cli_runner().invoke(args=["billing", "set-plan", str(team.workspace_id), "business", "--seats", "4"])
    assert result.exit_code == 0, result.output
    workspace = _workspace(app, team)
    assert (workspace.plan, workspace.seats, workspace.generations_per_seat) == ("business", 4, 2000)
    assert app.test_cli_runner().invoke(args=["billing", "set-plan", str(team.workspace_id), "gold"]).exit_code != 0


def test_only_the_owner_sees_billing(app, team, billing):
    team.add("adm@example.com", "admin")
    assert team.client("adm@example.com").get("/billing").status_code == 403
    assert team.client("adm@example.com").post("/billing/checkout", data={"plan": "pro", "seats": "2"}).status_code == 403


def test_upgrade_through_checkout_syncs_on_return(app, team, billing):
    _reset_team_to_free(app, team)
    _subscribe(app, team, billing, "pro", 3)
    workspace = _workspace(app, team)
    assert (workspace.plan, workspace.seats, workspace.generations_per_seat) == ("pro", 3, 500)
    assert workspace.subscription_status == "active" and workspace.period_end is not None
    customer = billing.customers[workspace.stripe_customer_id]
    assert customer["metadata"] == {"workspace_id": str(team.workspace_id)}
    # The customer came first, and every POST carried our idempotency key.
    posts = [r for r in billing.requests if r["method"] == "POST"]
    assert [r["path"] for r in posts][:2] == ["/v1/customers", "/v1/checkout/sessions"]
    assert all(r["idempotency_key"] and r["idempotency_key"].startswith("copydeck-") for r in posts)
    session = [r for r in posts if r["path"] == "/v1/checkout/sessions"][0]["form"]
    assert session["mode"] == "subscription" and session["line_items"][0]["quantity"] == "3"
    assert session["line_items"][0]["adjustable_quantity"]["enabled"] == "true"
    page = team.client("owner@example.com").get("/billing").get_data(as_text=True)
    assert "Your plan: Pro" in page
    # One subscription per workspace.
    again = team.client("owner@example.com").post("/billing/checkout", data={"plan": "business", "seats": "3"})
    assert again.status_code == 409


def test_checkout_refuses_bad_seat_counts(app, team, billing):
    team.add("a@example.com")
    team.add("b@example.com")
    owner = team.client("owner@example.com")
    for data, message in [({"plan": "pro", "seats": "0"}, "1 to 50"), ({"plan": "business", "seats": "2"}, "3 to 500"),
                          ({"plan": "pro", "seats": "2"}, "at least"), ({"plan": "free", "seats": "1"}, "paid plan")]:
        response = owner.post("/billing/checkout", data=data)
        assert response.status_code == 422 and message in response.get_data(as_text=True), data
    assert not billing.sessions


def test_webhook_signature_is_verified_and_events_stored_once(app, team, billing, deliver, run_worker):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    event = billing.event("customer.subscription.updated", billing.subscriptions[sub_id])
    bad = deliver(event, secret="whsec_wrong")
    assert bad.status_code == 400
    stale = deliver(event, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 400
    tampered = app.test_client().post("/billing/webhook", data=b'{"id": "evt_x"}', headers={"Stripe-Signature": "t=1,v1=00"})
    assert tampered.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 0
    assert deliver(event).status_code == 200
    duplicate = deliver(event)
    assert duplicate.status_code == 200 and duplicate.json["duplicate"] is True
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 1
    run_worker()
    with app.app_context():
        assert db.session.get(StripeEvent, event["id"]).status == "applied"


def test_created_arriving_after_updated_cannot_move_backwards(app, team, billing, deliver, run_worker):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    created = billing.event("customer.subscription.created", billing.subscriptions[sub_id])
    billing.update_subscription(sub_id, quantity=6)
    updated = billing.event("customer.subscription.updated", billing.subscriptions[sub_id])
    deliver(updated)
    run_worker()
    deliver(created)  # late, with the old quantity in its payload
    run_worker()
    assert _workspace(app, team).seats == 6


def test_deleted_after_updated_ends_on_free(app, team, billing, deliver, run_worker):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    updated = billing.event("customer.subscription.updated", billing.subscriptions[sub_id])
    billing.update_subscription(sub_id, status="canceled")
    deleted = billing.event("customer.subscription.deleted", billing.subscriptions[sub_id])
    deliver(deleted)
    deliver(updated)  # arrives after the deletion
    run_worker()
    workspace = _workspace(app, team)
    assert (workspace.plan, workspace.seats, workspace.generations_per_seat) == ("free", 1, 20)


def test_payment_failed_grace_then_downgrade(app, team, billing, deliver, run_worker):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 3)
    team.add("late@example.com")
    team.add("later@example.com")
    billing.update_subscription(sub_id, status="past_due")
    deliver(billing.event("invoice.payment_failed", {"object": "invoice", "id": "in_1", "customer":
                                                     billing.subscriptions[sub_id]["customer"]}))
    run_worker()
    workspace = _workspace(app, team)
    assert workspace.plan == "pro" and workspace.seats == 3 and workspace.past_due_since is not None
    owner = team.client("owner@example.com")
    page = owner.get("/templates").get_data(as_text=True)
    assert "Your last payment failed" in page  # banner for the owner
    assert "Your last payment failed" not in team.client("late@example.com").get("/templates").get_data(as_text=True)

    with app.app_context():  # the grace period (7 days) runs out, no webhook needed
        ws = db.session.get(Workspace, team.workspace_id)
        ws.past_due_since -= timedelta(days=8)
        db.session.commit()
    owner.get("/templates")
    workspace = _workspace(app, team)
    assert (workspace.plan, workspace.seats) == ("free", 1)
    # Members beyond the Free seat keep their history but cannot generate.
    blocked = team.client("late@example.com").post("/write/x-post", data=form_data(app, "x-post", 1))
    assert blocked.status_code == 402 and "more members than seats" in blocked.get_data(as_text=True)
    assert team.client("late@example.com").get("/history").status_code == 200
    assert owner.post("/write/x-post", data=form_data(app, "x-post", 1)).status_code == 302

    # Paying again restores the plan.
    billing.update_subscription(sub_id, status="active")
    deliver(billing.event("invoice.paid", {"object": "invoice", "id": "in_2",
                                           "customer": billing.subscriptions[sub_id]["customer"]}))
    run_worker()
    workspace = _workspace(app, team)
    assert (workspace.plan, workspace.seats, workspace.past_due_since) == ("pro", 3, None)


def test_unpaid_paused_and_resumed(app, team, billing, deliver, run_worker):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    customer = billing.subscriptions[sub_id]["customer"]
    for status, event_type, plan in (("paused", "customer.subscription.paused", "free"),
                                     ("active", "customer.subscription.resumed", "pro"),
                                     ("unpaid", "customer.subscription.updated", "free")):
        billing.update_subscription(sub_id, status=status)
        deliver(billing.event(event_type, billing.subscriptions[sub_id]))
        run_worker()
        assert _workspace(app, team).plan == plan, status
    assert _workspace(app, team).stripe_customer_id == customer  # one customer throughout


def test_seats_change_with_proration_preview(app, team, billing):
    _reset_team_to_free(app, team)
    _subscribe(app, team, billing, "pro", 2)
    team.add("a@example.com")
    owner = team.client("owner@example.com")
    preview = owner.get("/billing/seats/preview?seats=4", headers={"HX-Request": "true"})
    assert preview.status_code == 200
    body = preview.get_data(as_text=True)
    assert "charged" in body and "Confirm 4 seats" in body
    assert owner.post("/billing/seats", data={"seats": "4", "attempt": "x"}).status_code == 302
    assert _workspace(app, team).seats == 4
    down = owner.get("/billing/seats/preview?seats=3").get_data(as_text=True)
    assert "credit" in down
    refused = owner.get("/billing/seats/preview?seats=1")
    assert refused.status_code == 422 and "in use" in refused.get_data(as_text=True)
    assert owner.post("/billing/seats", data={"seats": "1"}).status_code == 422
    assert _workspace(app, team).seats == 4
    update = [r for r in billing.requests if r["method"] == "POST" and r["path"].startswith("/v1/subscriptions/")]
    assert len(update) == 1 and update[0]["form"]["items"][0]["quantity"] == "4"


def test_cancel_at_period_end_keeps_the_plan_until_then(app, team, billing, deliver, run_worker):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    billing.update_subscription(sub_id, cancel_at_period_end=True)
    deliver(billing.event("customer.subscription.updated", billing.subscriptions[sub_id]))
    run_worker()
    workspace = _workspace(app, team)
    assert workspace.plan == "pro" and workspace.cancel_at_period_end
    page = team.client("owner@example.com").get("/billing").get_data(as_text=True)
    assert "stays active until" in page


def test_invoice_paid_renews_the_quota_period(app, team, billing, deliver, run_worker):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    first_end = _workspace(app, team).period_end
    billing.update_subscription(sub_id, renew=True)
    deliver(billing.event("invoice.paid", {"object": "invoice", "id": "in_9",
                                           "customer": billing.subscriptions[sub_id]["customer"]}))
    run_worker()
    workspace = _workspace(app, team)
    assert workspace.period_start == first_end and workspace.period_end > first_end


def test_webhook_for_an_unknown_customer_is_acknowledged_and_ignored(app, billing, deliver, run_worker):
    event = billing.event("customer.subscription.updated", {"object": "subscription", "id": "sub_x",
                                                            "customer": "cus_nobody", "status": "active"})
    assert deliver(event).status_code == 200
    run_worker()
    with app.app_context():
        stored = db.session.get(StripeEvent, event["id"])
        assert stored.status == "ignored" and "unknown customer" in stored.note


def test_cli_sync_reconciles_and_replays_missed_events(app, team, billing):
    _reset_team_to_free(app, team)
    sub_id = _subscribe(app, team, billing, "pro", 2)
    billing.update_subscription(sub_id, quantity=7)
    missed = billing.event("customer.subscription.updated", billing.subscriptions[sub_id])
    result = app.test_cli_runner().invoke(args=["billing", "sync"])
    assert result.exit_code == 0, result.output
    assert "replayed 1" in result.output
    assert _workspace(app, team).seats == 7
    with app.app_context():
        assert db.session.get(StripeEvent, missed["id"]).status == "applied"
    again = app.test_cli_runner().invoke(args=["billing", "sync", "--workspace", str(team.workspace_id)])
    assert again.exit_code == 0 and "pro x 7" in again.output


def test_stripe_outage_is_a_clear_message_and_changes_nothing(app, team, billing):
    _reset_team_to_free(app, team)
    billing.failures = [500] * 3  # the client retries twice, then gives up
    response = team.client("owner@example.com").post("/billing/checkout", data={"plan": "pro", "seats": "2"})
    assert response.status_code == 502
    assert "could not be reached" in response.get_data(as_text=True)
    assert not billing.sessions and not billing.customers
    assert _workspace(app, team).stripe_customer_id is None


def test_portal_opens_for_a_customer_and_says_so_when_stripe_is_down(app, team, billing):
    _reset_team_to_free(app, team)
    owner = team.client("owner@example.com")
    assert owner.post("/billing/portal").status_code == 404  # no Stripe customer yet: nothing to manage
    _subscribe(app, team, billing, "pro", 2)
    opened = owner.post("/billing/portal")
    assert opened.status_code == 303 and opened.headers["Location"].startswith(billing.base_url)
    billing.failures = [500] * 3
    down = owner.post("/billing/portal")
    assert down.status_code == 502 and "could not be reached" in down.get_data(as_text=True)
    team.add("member@example.com")
    assert team.client("member@example.com").post("/billing/portal").status_code == 403


def test_success_page_refuses_unknown_and_foreign_sessions_and_survives_an_outage(app, team, billing, make_user):
    _reset_team_to_free(app, team)
    owner = team.client("owner@example.com")
    assert owner.get("/billing/success").status_code == 404
    assert owner.get("/billing/success?session_id=cs_test_unknown").status_code == 404
    response = owner.post("/billing/checkout", data={"plan": "pro", "seats": "2", "attempt": "a1"})
    session_id = response.headers["Location"].rsplit("/", 1)[-1]
    billing.complete_checkout(session_id)
    billing.failures = [500] * 3
    outage = owner.get(f"/billing/success?session_id={session_id}")
    assert outage.status_code == 302 and outage.headers["Location"].endswith("/billing")
    assert "Your payment went through" in owner.get("/billing").get_data(as_text=True)
    # Someone else, in a workspace of their own, cannot open this Checkout session.
    make_user("stranger@example.com")
    stranger = app.test_client()
    assert stranger.post("/login", data={"email": "stranger@example.com",
                                         "password": "correct-horse-battery"}).status_code == 302
    assert stranger.get(f"/billing/success?session_id={session_id}").status_code == 404
