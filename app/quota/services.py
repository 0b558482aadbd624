"""Quota rules: reserve at submit, settle on success, refund on failure.

Every change to a ledger is one conditional UPDATE, so parallel requests can
never take more than the allowance (atomic on PostgreSQL and SQLite alike).
Settle and refund flip the generation's QuotaCharge from "reserved" first;
only the statement that wins that flip moves the ledger, so a job that runs
twice cannot charge or refund twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.quota.models import QuotaCharge, QuotaLedger
from app.workspaces.models import Workspace


class QuotaExceeded(Exception):
    """The subject's remaining allowance is smaller than the request."""

    def __init__(self, remaining: int, requested: int):
        super().__init__(f"{remaining} generations left, {requested} requested")
        self.remaining = remaining
        self.requested = requested


@dataclass(frozen=True)
class Allowance:
    allowance: int
    used: int
    reserved: int
    period_start: date
    period_end: date

    @property
    def remaining(self) -> int:
        return max(self.allowance - self.used - self.reserved, 0)


def current_period(now: datetime | None = None) -> tuple[date, date]:
    """The calendar month containing now (UTC): [start, end)."""
    now = now or datetime.now(timezone.utc)
    start = date(now.year, now.month, 1)
    end = date(now.year + (now.month == 12), now.month % 12 + 1, 1)
    return start, end


def subject_for(user_id: int) -> str:
    return f"user:{user_id}"


def allowance_for(workspace: Workspace, user_id: int) -> int:
    """The monthly allowance of one seat-holder in this workspace."""
    return workspace.generations_per_seat


def ledger_for(workspace: Workspace, user_id: int, period_start: date | None = None) -> QuotaLedger:
    """The ledger row for this user and period, created on first use.

    Creation tolerates a parallel creator: the unique key decides, and the
    loser reads the winner's row.
    """
    period_start = period_start or current_period()[0]
    subject = subject_for(user_id)
    query = select(QuotaLedger).where(
        QuotaLedger.workspace_id == workspace.id,
        QuotaLedger.subject == subject,
        QuotaLedger.period_start == period_start,
    )
    ledger = db.session.scalars(query).first()
    if ledger is not None:
        return ledger
    try:
        with db.session.begin_nested():
            ledger = QuotaLedger(
                workspace_id=workspace.id,
                subject=subject,
                period_start=period_start,
                allowance=allowance_for(workspace, user_id),
                used=0,
                reserved=0,
            )
            db.session.add(ledger)
    except IntegrityError:
        ledger = db.session.scalars(query).one()
    return ledger


def remaining(workspace: Workspace, user_id: int) -> Allowance:
    """What this user may still generate in the workspace this period."""
    start, end = current_period()
    ledger = ledger_for(workspace, user_id, start)
    return Allowance(ledger.allowance, ledger.used, ledger.reserved, start, end)


def reserve(workspace: Workspace, user_id: int, generation_id: int, amount: int) -> QuotaCharge:
    """Hold `amount` generations for this generation, or raise QuotaExceeded.

    The caller owns the transaction: on QuotaExceeded it rolls back, so the
    generation row it inserted is not kept either.
    """
    ledger = ledger_for(workspace, user_id)
    result = db.session.execute(
        update(QuotaLedger)
        .where(
            QuotaLedger.id == ledger.id,
            QuotaLedger.used + QuotaLedger.reserved + amount <= QuotaLedger.allowance,
        )
        .values(reserved=QuotaLedger.reserved + amount)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(ledger)
        raise QuotaExceeded(ledger.remaining, amount)
    charge = QuotaCharge(generation_id=generation_id, ledger_id=ledger.id, amount=amount, state="reserved")
    db.session.add(charge)
    db.session.flush()
    return charge


def _close_charge(generation_id: int, new_state: str, used: int) -> bool:
    """Flip a reserved charge to settled/refunded and move the ledger once."""
    charge = db.session.scalars(
        select(QuotaCharge).where(QuotaCharge.generation_id == generation_id)
    ).first()
    if charge is None:
        return False
    flipped = db.session.execute(
        update(QuotaCharge)
        .where(QuotaCharge.id == charge.id, QuotaCharge.state == "reserved")
        .values(state=new_state, amount=used if new_state == "settled" else charge.amount,
                updated_at=datetime.now(timezone.utc).replace(tzinfo=None))
        .execution_options(synchronize_session=False)
    )
    if flipped.rowcount != 1:
        return False
    db.session.execute(
        update(QuotaLedger)
        .where(QuotaLedger.id == charge.ledger_id)
        .values(reserved=QuotaLedger.reserved - charge.amount, used=QuotaLedger.used + used)
        .execution_options(synchronize_session=False)
    )
    return True


def settle(generation_id: int, used: int | None = None) -> bool:
    """Turn the generation's reservation into usage (all of it, or `used` when
    fewer variants came back). True if this call did it."""
    charge_amount = db.session.scalar(
        select(QuotaCharge.amount).where(QuotaCharge.generation_id == generation_id)
    )
    if charge_amount is None:
        return False
    used = charge_amount if used is None else max(0, min(used, charge_amount))
    return _close_charge(generation_id, "settled", used)


def refund(generation_id: int) -> bool:
    """Release the generation's reservation. True if this call did it."""
    return _close_charge(generation_id, "refunded", 0)
