"""Billing rules: plans, what a subscription grants, and syncing it from Stripe.

Stripe is the source of truth. Every event, whatever its type or order, is
applied the same way: re-fetch the customer's subscriptions and compute what
the workspace is granted now (sync). So an event that arrives late or twice
cannot move a workspace backwards.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.core import commit_step, required, utcnow
from app.billing import gateway
from app.billing.models import FEATURES, Plan
from app.extensions import db
from app.workspaces.models import Membership, Workspace
from app.workspaces.services import lock, seat_usage

log = logging.getLogger(__name__)

FREE = "free"
GRANTING = ("active", "trialing")
GRACE = ("past_due",)
# Preference when a customer has several subscriptions: the one that grants the most.
STATUS_RANK = {"active": 0, "trialing": 1, "past_due": 2, "unpaid": 3, "paused": 4, "incomplete": 5,
               "canceled": 6, "incomplete_expired": 7}


def plan_definitions(config) -> list[dict]:
    return [
        {"key": "free", "name": "Free", "stripe_price_id": None, "generations_per_seat":
            config["FREE_MONTHLY_GENERATIONS"], "min_seats": 1, "max_seats": 1, "monthly_price_cents": 0,
         "features": [], "position": 0},
        {"key": "pro", "name": "Pro", "stripe_price_id": config.get("STRIPE_PRICE_PRO"), "generations_per_seat": 500,
         "min_seats": 1, "max_seats": 50, "monthly_price_cents": 2900, "features": ["brand_voices", "knowledge"], "position": 1},
        {"key": "business", "name": "Business", "stripe_price_id": config.get("STRIPE_PRICE_BUSINESS"),
         "generations_per_seat": 2000, "min_seats": 3, "max_seats": 500, "monthly_price_cents": 7900,
         "features": ["brand_voices", "api_access", "bulk_runs", "knowledge"], "position": 2},
    ]


def seed_plans() -> None:
    """Create or update the plans; price ids come from settings (test or live mode). The caller commits."""
    for data in plan_definitions(current_app.config):
        unknown = set(data["features"]) - set(FEATURES)
        if unknown:
            raise ValueError(f"plan {data['key']!r} lists unknown features {sorted(unknown)}")
        plan = db.session.scalars(select(Plan).where(Plan.key == data["key"])).first()
        if plan is None:
            plan = Plan(key=data["key"])
            db.session.add(plan)
        for key, value in data.items():
            setattr(plan, key, value)


def plans() -> list[Plan]:
    return list(db.session.scalars(select(Plan).order_by(Plan.position)))


def plan(key: str | None) -> Plan | None:
    return db.session.scalars(select(Plan).where(Plan.key == (key or FREE))).first()


def plan_for_price(price_id: str | None) -> Plan | None:
    if not price_id:
        return None
    return db.session.scalars(select(Plan).where(Plan.stripe_price_id == price_id)).first()


def current_plan(workspace: Workspace) -> Plan | None:
    return plan(workspace.plan)


def has_feature(workspace: Workspace, feature: str) -> bool:
    if feature not in FEATURES:
        raise ValueError(f"unknown plan feature {feature!r}; FEATURES lists them")
    current = current_plan(workspace)
    return current is None or current.has(feature)  # an unknown (hand-set) plan is not restricted


def apply_plan(workspace: Workspace, plan_key: str, seats: int | None = None) -> None:
    """Grant a plan by hand (billing off): its quota per seat, and seats within its range."""
    chosen = plan(plan_key)
    if chosen is None:
        raise ValueError(f"unknown plan {plan_key!r}")
    workspace.plan = chosen.key
    workspace.generations_per_seat = chosen.generations_per_seat
    workspace.seats = max(chosen.min_seats, min(seats or chosen.min_seats, chosen.max_seats))


# --- what a subscription grants ------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    plan: str
    seats: int
    period_start: date | None
    period_end: date | None
    status: str | None
    note: str = ""


def _as_date(timestamp: int | None) -> date | None:
    return datetime.fromtimestamp(timestamp, timezone.utc).date() if timestamp else None


def _item(subscription):
    items = subscription["items"]["data"]
    return items[0] if items else None


def pick_subscription(subscriptions: list):
    """The subscription that decides: the best status, then the newest."""
    if not subscriptions:
        return None
    return sorted(subscriptions, key=lambda s: (STATUS_RANK.get(s["status"], 9), -int(s["created"])))[0]


def grant_for(subscription, past_due_since: datetime | None, now: datetime) -> Grant:
    free = required(plan(FREE), f"plan {FREE!r}")
    if subscription is None:
        return Grant(FREE, free.min_seats, None, None, None)
    status = subscription["status"]
    item = _item(subscription)
    paid = plan_for_price(item["price"]["id"]) if item else None
    start = _as_date(item.get("current_period_start")) if item else None
    end = _as_date(item.get("current_period_end")) if item else None
    if paid is None:
        return Grant(FREE, free.min_seats, None, None, status, "unknown price")
    if status in GRANTING:
        return Grant(paid.key, int(item["quantity"]), start, end, status)
    if status in GRACE:
        grace = timedelta(days=current_app.config["BILLING_GRACE_DAYS"])
        if past_due_since is None or now < past_due_since + grace:
            return Grant(paid.key, int(item["quantity"]), start, end, status, "grace")
        return Grant(FREE, free.min_seats, None, None, status, "grace over")
    return Grant(FREE, free.min_seats, None, None, status)


def _apply_grant(workspace: Workspace, grant: Grant) -> None:
    granted = required(plan(grant.plan), f"plan {grant.plan!r}")
    workspace.plan = granted.key
    workspace.generations_per_seat = granted.generations_per_seat
    workspace.seats = grant.seats
    workspace.period_start, workspace.period_end = grant.period_start, grant.period_end


def workspace_for_customer(customer_id: str) -> Workspace | None:
    return db.session.scalars(select(Workspace).where(Workspace.stripe_customer_id == customer_id)).first()


def sync(customer_id: str) -> Workspace | None:
    """Re-fetch the customer's subscriptions and store what they grant now.

    Returns None for a customer we do not know (nothing is written). The caller commits.
    """
    workspace = workspace_for_customer(customer_id)
    if workspace is None:
        return None
    subscriptions = gateway.list_subscriptions(customer_id)
    workspace = lock(workspace.id)
    subscription = pick_subscription(subscriptions)
    now = utcnow()
    status = subscription["status"] if subscription else None
    if status == "past_due":
        workspace.past_due_since = workspace.past_due_since or now
    else:
        workspace.past_due_since = None
    grant = grant_for(subscription, workspace.past_due_since, now)
    _apply_grant(workspace, grant)
    item = _item(subscription) if subscription else None
    workspace.stripe_subscription_id = subscription["id"] if subscription else None
    workspace.stripe_subscription_item_id = item["id"] if item else None
    workspace.subscription_status = status
    paid = plan_for_price(item["price"]["id"]) if item else None
    workspace.subscribed_plan = paid.key if paid else None
    workspace.subscribed_seats = int(item["quantity"]) if item else None
    workspace.cancel_at_period_end = bool(subscription and subscription.get("cancel_at_period_end"))
    workspace.billing_synced_at = now
    log.info("billing sync %s: workspace %s -> %s x %s (%s%s)", customer_id, workspace.id, grant.plan,
             grant.seats, status, f", {grant.note}" if grant.note else "")
    return workspace


def enforce_grace(workspace: Workspace) -> bool:
    """Downgrade a past-due workspace whose grace period ran out (no webhook needed).

    Runs before the request's view (app/web.py, the API's key check) and commits the downgrade as a
    step of its own: it stands whatever the request does next, a GET included, which commits nothing.
    """
    if workspace.subscription_status != "past_due" or workspace.past_due_since is None:
        return False
    grace = timedelta(days=current_app.config["BILLING_GRACE_DAYS"])
    if utcnow() < workspace.past_due_since + grace or workspace.plan == FREE:
        return False
    _apply_grant(workspace, Grant(FREE, required(plan(FREE), f"plan {FREE!r}").min_seats, None, None, "past_due",
                                   "grace over"))
    try:
        commit_step("a grace downgrade stands whatever the request does next")
    except OperationalError:  # SQLite: a GET's read-only transaction lost a race; the next request retries
        db.session.rollback()
        return False
    return True


def grace_ends(workspace: Workspace) -> datetime | None:
    if workspace.subscription_status != "past_due" or workspace.past_due_since is None:
        return None
    return workspace.past_due_since + timedelta(days=current_app.config["BILLING_GRACE_DAYS"])


def has_seat(workspace: Workspace, user_id: int) -> bool:
    """Whether this member holds one of the workspace's seats.

    When a workspace has more members than seats (it fell back to Free), the
    owner, then admins, then members by join date keep the seats; the others
    keep their history but cannot generate until seats return.
    """
    members = db.session.scalars(select(Membership).where(Membership.workspace_id == workspace.id)).all()
    if all(m.user_id != user_id for m in members):
        return False  # not a member (any more: a bulk run's rows outlive their starter's removal)
    if len(members) <= workspace.seats:
        return True
    order = {"owner": 0, "admin": 1, "member": 2}
    ranked = sorted(members, key=lambda m: (order.get(m.role, 3), m.created_at, m.id))
    return any(m.user_id == user_id for m in ranked[: workspace.seats])


def seats_in_use(workspace: Workspace) -> int:
    members, pending = seat_usage(workspace)
    return members + pending
