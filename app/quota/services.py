"""Quota rules: reserve at submit, settle on success, refund on failure.

A generation of N variants costs N. What limits a member depends on the
workspace's quota mode:
  per_seat  their own ledger ("user:<id>"): the seat quota G, or their cap if lower;
  pooled    the workspace pool ("pool": seats x G) and, if they have a cap, their own ledger too.
Every change to a ledger is one conditional UPDATE, so parallel requests can
never take more than an allowance (atomic on PostgreSQL and SQLite alike).
Settle and refund flip the generation's QuotaCharges away from "reserved"
first; only the statement that wins a flip moves its ledger, so a job that
runs twice cannot charge or refund twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping
from datetime import date, datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from app.core import required, rowcount
from app.extensions import db
from app.quota.models import QuotaAlert, QuotaCharge, QuotaLedger, VariantRefund
from app.quota import rollup
from app.workspaces.models import Membership, Workspace

log = logging.getLogger(__name__)

ALERT_THRESHOLDS = (80, 100)


class QuotaExceeded(Exception):
    """The remaining allowance is smaller than the request."""

    def __init__(self, remaining: int, requested: int, scope: str = "you"):
        super().__init__(f"{remaining} generations left ({scope}), {requested} requested")
        self.remaining = remaining
        self.requested = requested
        self.scope = scope  # "you" (own allowance or cap) or "pool" (the workspace's shared pool)


@dataclass(frozen=True)
class Limit:
    subject: str
    allowance: int


@dataclass(frozen=True)
class Allowance:
    allowance: int
    used: int
    reserved: int
    period_start: date
    period_end: date
    scope: str = "you"

    @property
    def remaining(self) -> int:
        return max(self.allowance - self.used - self.reserved, 0)


def _today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class Period:
    """A quota period: a calendar month, or a subscription's billing period.

    The kind is part of a ledger's identity, so a billing period that starts
    on the 1st (an upgrade on the first day of the month) gets its own ledger
    instead of inheriting the calendar month's Free usage.
    """

    kind: str  # "calendar" | "billing"
    start: date
    end: date


def calendar_month(day: date) -> tuple[date, date]:
    start = date(day.year, day.month, 1)
    end = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return start, end


def quota_period(workspace: Workspace | None = None, today: date | None = None) -> Period:
    """The workspace's quota period containing today: the billing period when
    billing has set one that covers today, otherwise the calendar month."""
    today = today or _today()
    if workspace is not None and workspace.period_start and workspace.period_end:
        if workspace.period_start <= today < workspace.period_end:
            return Period("billing", workspace.period_start, workspace.period_end)
    return Period("calendar", *calendar_month(today))


def current_period(workspace: Workspace | None = None, today: date | None = None) -> tuple[date, date]:
    """(start, end) of quota_period(), for pages that show dates only."""
    period = quota_period(workspace, today)
    return period.start, period.end


def subject_for(user_id: int) -> str:
    return f"user:{user_id}"


def member_cap(workspace: Workspace, user_id: int) -> int | None:
    return db.session.scalar(
        select(Membership.quota_cap).where(Membership.workspace_id == workspace.id, Membership.user_id == user_id)
    )


def limits_for(workspace: Workspace, user_id: int) -> list[Limit]:
    """The ledgers a member's generation must fit in, with their allowances now."""
    return _limits(workspace, user_id, member_cap(workspace, user_id))


def _limits(workspace: Workspace, user_id: int, cap: int | None) -> list[Limit]:
    """limits_for() with the member's cap already known (pages listing many members load caps at once)."""
    per_seat = workspace.seat_quota
    if workspace.quota_mode == "pooled":
        limits = [Limit("pool", workspace.seats * per_seat)]
        if cap is not None:
            limits.append(Limit(subject_for(user_id), cap))
        return limits
    return [Limit(subject_for(user_id), per_seat if cap is None else min(cap, per_seat))]


def _find_ledger(workspace_id: int, subject: str, period: Period) -> QuotaLedger | None:
    return db.session.scalars(select(QuotaLedger).where(
        QuotaLedger.workspace_id == workspace_id,
        QuotaLedger.subject == subject,
        QuotaLedger.period_kind == period.kind,
        QuotaLedger.period_start == period.start,
    )).first()


def ledger_for(workspace: Workspace, subject: str, allowance: int, period: Period | None = None) -> QuotaLedger:
    """The ledger row for this subject and period, created on first use.

    Creation tolerates a parallel creator: the unique key decides, and the
    loser reads the winner's row.
    """
    period = period or quota_period(workspace)
    ledger = _find_ledger(workspace.id, subject, period)
    if ledger is not None:
        return ledger
    try:
        with db.session.begin_nested():
            ledger = QuotaLedger(workspace_id=workspace.id, subject=subject, period_kind=period.kind,
                                 period_start=period.start, allowance=allowance, used=0, reserved=0)
            db.session.add(ledger)
    except IntegrityError:
        ledger = required(_find_ledger(workspace.id, subject, period), f"the {subject} ledger another request created")
    return ledger


def remaining(workspace: Workspace, user_id: int) -> Allowance:
    """What this member may still generate this period (the tightest limit). Reads only."""
    period = quota_period(workspace)
    limits = limits_for(workspace, user_id)
    ledgers = {limit.subject: _find_ledger(workspace.id, limit.subject, period) for limit in limits}
    return _tightest(limits, ledgers, period)


def remaining_for_members(workspace: Workspace, caps: dict[int, int | None]) -> dict[int, Allowance]:
    """remaining() for many members at once ({user_id: quota_cap}): one query for the
    period's ledgers, however many members a page lists. Reads only."""
    period = quota_period(workspace)
    ledgers = {ledger.subject: ledger for ledger in db.session.scalars(select(QuotaLedger).where(
        QuotaLedger.workspace_id == workspace.id,
        QuotaLedger.period_kind == period.kind,
        QuotaLedger.period_start == period.start,
    ))}
    return {user_id: _tightest(_limits(workspace, user_id, cap), ledgers, period) for user_id, cap in caps.items()}


def _tightest(limits: list[Limit], ledgers: Mapping[str, QuotaLedger | None], period: Period) -> Allowance:
    """The allowance of the limit with the least left, from its ledger (no ledger yet: nothing used)."""
    tightest: Allowance | None = None
    for limit in limits:
        ledger = ledgers.get(limit.subject)
        used, reserved = (ledger.used, ledger.reserved) if ledger else (0, 0)
        candidate = Allowance(limit.allowance, used, reserved, period.start, period.end,
                              "pool" if limit.subject == "pool" else "you")
        if tightest is None or candidate.remaining < tightest.remaining:
            tightest = candidate
    return required(tightest, "a quota limit")  # every member has at least one


def reserve(workspace: Workspace, user_id: int, generation_id: int, amount: int) -> list[QuotaCharge]:
    """Hold `amount` generations on every ledger that limits this member, or raise QuotaExceeded.

    The caller owns the transaction: on QuotaExceeded it rolls back, which also
    undoes any ledger already reserved here and the generation row it inserted.
    """
    return _reserve(workspace, user_id, amount, generation_id=generation_id)


def reserve_test_run(workspace: Workspace, user_id: int, test_run_id: int, amount: int) -> list[QuotaCharge]:
    """The same for a template test run: its author's seat pays, through the same ledgers."""
    return _reserve(workspace, user_id, amount, test_run_id=test_run_id)


def _reserve(workspace: Workspace, user_id: int, amount: int, **owner: int) -> list[QuotaCharge]:
    """Reserve on every limiting ledger; `owner` is the charge's key (generation_id= or test_run_id=)."""
    period = quota_period(workspace)
    charges = []
    for limit in limits_for(workspace, user_id):
        ledger = ledger_for(workspace, limit.subject, limit.allowance, period)
        result = db.session.execute(
            update(QuotaLedger)
            .where(
                QuotaLedger.id == ledger.id,
                QuotaLedger.used + QuotaLedger.reserved + amount <= limit.allowance,
            )
            .values(reserved=QuotaLedger.reserved + amount, allowance=limit.allowance)
            .execution_options(synchronize_session=False)
        )
        if rowcount(result) != 1:
            db.session.refresh(ledger)
            left = max(limit.allowance - ledger.used - ledger.reserved, 0)
            raise QuotaExceeded(left, amount, "pool" if limit.subject == "pool" else "you")
        charge = QuotaCharge(ledger_id=ledger.id, amount=amount, state="reserved", **owner)
        db.session.add(charge)
        charges.append(charge)
    db.session.flush()
    return charges


def _close_charges(owner, new_state: str, used: int | None) -> list[int]:
    """Flip each reserved charge of one generation or test run (`owner`: a condition on the
    charge's key) and move its ledger once. Returns the ids of the ledgers this call moved."""
    charges = db.session.scalars(
        select(QuotaCharge).where(owner, QuotaCharge.state == "reserved").order_by(QuotaCharge.id)
    ).all()
    moved = []
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for charge in charges:
        spent = 0 if new_state == "refunded" else (charge.amount if used is None else max(0, min(used, charge.amount)))
        flipped = db.session.execute(
            update(QuotaCharge)
            .where(QuotaCharge.id == charge.id, QuotaCharge.state == "reserved")
            .values(state=new_state, amount=spent if new_state == "settled" else charge.amount, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(flipped) != 1:
            continue
        if new_state == "settled" and rollup.is_first_charge(charge):
            rollup.add(charge, 1, spent)
        db.session.execute(
            update(QuotaLedger)
            .where(QuotaLedger.id == charge.ledger_id)
            .values(reserved=QuotaLedger.reserved - charge.amount, used=QuotaLedger.used + spent)
            .execution_options(synchronize_session=False)
        )
        moved.append(charge.ledger_id)
    return moved


def settle(generation_id: int, used: int | None = None) -> list[int]:
    """Turn the reservation into usage (all of it, or `used` when fewer variants
    came back). Returns the ledgers moved: empty if already settled or refunded."""
    return _close_charges(QuotaCharge.generation_id == generation_id, "settled", used)


def refund(generation_id: int) -> list[int]:
    """Release the reservation. Returns the ledgers moved (empty if already closed)."""
    return _close_charges(QuotaCharge.generation_id == generation_id, "refunded", None)


def settle_test_run(test_run_id: int, used: int) -> list[int]:
    """Charge a test run for the variants that came back (once, however often it is called)."""
    return _close_charges(QuotaCharge.test_run_id == test_run_id, "settled", used)


def refund_test_run(test_run_id: int) -> list[int]:
    return _close_charges(QuotaCharge.test_run_id == test_run_id, "refunded", None)


def record_due_alerts(ledger_ids: list[int]) -> list[tuple[QuotaLedger, int]]:
    """Mark the 80% / 100% thresholds newly crossed by these ledgers.

    Each (ledger, threshold) is recorded once (unique key), so the caller sends
    each email once, however many jobs cross the line together. Caller commits,
    then sends.
    """
    due: list[tuple[QuotaLedger, int]] = []
    for ledger_id in ledger_ids:
        ledger = db.session.get(QuotaLedger, ledger_id)
        if ledger is None:  # its workspace was deleted: nobody to alert
            continue
        db.session.refresh(ledger)
        if ledger.allowance <= 0:
            continue
        for threshold in ALERT_THRESHOLDS:
            if ledger.used * 100 < threshold * ledger.allowance:
                continue
            try:
                with db.session.begin_nested():
                    db.session.add(QuotaAlert(ledger_id=ledger.id, threshold=threshold))
            except IntegrityError:
                continue
            due.append((ledger, threshold))
            from app.webhooks import events as webhook_events
            webhook_events.quota_alert(db.session, ledger, threshold)
    return due


def send_alert_emails(due: list[tuple[QuotaLedger, int]]) -> None:
    """Email the people a crossed threshold concerns: the member for their own
    ledger; the owner and admins for the workspace pool. Called after commit."""
    from app import mail
    from app.auth.models import User

    for ledger, threshold in due:
        workspace = db.session.get(Workspace, ledger.workspace_id)
        if workspace is None:  # deleted meanwhile: nobody to email
            continue
        if ledger.subject == "pool":
            recipients = [m.user for m in workspace.memberships if m.can_manage]
        else:
            user = db.session.get(User, int(ledger.subject.split(":", 1)[1]))
            recipients = [user] if user else []
        start, end = current_period(workspace)
        for user in recipients:
            try:
                mail.send(user.email, f"quota_{threshold}", user=user, workspace=workspace, ledger=ledger,
                          pool=ledger.subject == "pool", period_end=end)
            except Exception:  # noqa: BLE001 - a mail outage must not fail the generation
                log.exception("could not send the %s%% quota email to %s", threshold, user.email)


class NotRefundable(Exception):
    """The variant is usable, already refunded, edited, or its generation was not charged for it."""


def refund_variant(variant, user_id: int | None) -> list[int]:
    """"Not usable: refund": give back the one generation a flagged variant cost, once.

    One conditional UPDATE on the variant (refunded_at IS NULL) decides who refunds; the winner
    records a VariantRefund per ledger the generation was charged on (unique per variant and
    ledger) and moves one unit from `used` back, lowering the settled charge the same way, so
    Usage pages agree with the ledger. The caller commits. Returns the ledgers moved.
    """
    from app.generation.models import Variant

    reason = variant.unusable_reason
    if reason is None or variant.refunded_at is not None:
        raise NotRefundable()
    charges = db.session.scalars(select(QuotaCharge).where(
        QuotaCharge.generation_id == variant.generation_id, QuotaCharge.state == "settled",
        QuotaCharge.amount >= 1)).all()
    if not charges:
        raise NotRefundable()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    claimed = rowcount(db.session.execute(
        update(Variant).where(Variant.id == variant.id, Variant.refunded_at.is_(None)).values(refunded_at=now)
        .execution_options(synchronize_session=False)
    ))
    if claimed != 1:
        raise NotRefundable()
    moved = []
    for charge in charges:
        db.session.add(VariantRefund(variant_id=variant.id, generation_id=variant.generation_id,
                                     ledger_id=charge.ledger_id, amount=1, reason=reason, user_id=user_id))
        db.session.execute(update(QuotaCharge).where(QuotaCharge.id == charge.id, QuotaCharge.amount >= 1)
                           .values(amount=QuotaCharge.amount - 1).execution_options(synchronize_session=False))
        if rollup.is_first_charge(charge):
            rollup.add(charge, 0, -1)
        db.session.execute(update(QuotaLedger).where(QuotaLedger.id == charge.ledger_id, QuotaLedger.used >= 1)
                           .values(used=QuotaLedger.used - 1).execution_options(synchronize_session=False))
        moved.append(charge.ledger_id)
    db.session.flush()
    set_committed_value(variant, "refunded_at", now)
    return moved
