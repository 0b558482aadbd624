"""The quota ledger: allowance, used and reserved per (workspace, subject, period)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core import utcnow
from app.extensions import db

PERIOD_KINDS = ("calendar", "billing")
CHARGE_STATES = ("reserved", "settled", "refunded")


class QuotaLedger(db.Model):
    """One row per workspace, subject and period.

    subject is "user:<id>" for a seat-holder's own allowance, or "pool" for a
    workspace-wide pool (the teams feature), so one unique key covers both.

    period_kind tells a calendar month (no subscription) from a billing period
    (a subscription's current period). Both can start on the same day (an
    upgrade on the 1st): they are different allowances, so the kind is part
    of the key and Free usage is never carried into a paid period.
    """

    __tablename__ = "quota_ledgers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "subject", "period_kind", "period_start"),
        CheckConstraint("used >= 0 AND reserved >= 0", name="nonnegative"),
        CheckConstraint(f"period_kind IN {PERIOD_KINDS!r}", name="period_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed by uq_quota_ledgers_workspace_id_subject_period_kind_period_start (workspace_id first).
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(40))
    period_kind: Mapped[str] = mapped_column(String(10), default="calendar", server_default="calendar")
    period_start: Mapped[date]
    allowance: Mapped[int]
    used: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    @property
    def remaining(self) -> int:
        return max(self.allowance - self.used - self.reserved, 0)


class QuotaCharge(db.Model):
    """What one generation (or one template test run) reserved on one ledger, and whether
    it was settled or refunded.

    Unique per (generation, ledger) and per (test run, ledger): a pooled workspace
    charges the pool and, when the member has a cap, the member's own ledger. A job
    that runs twice finds its charges already settled (or refunded) and changes nothing.
    Exactly one of generation_id and test_run_id is set.
    """

    __tablename__ = "quota_charges"
    __table_args__ = (
        UniqueConstraint("generation_id", "ledger_id"),
        UniqueConstraint("test_run_id", "ledger_id"),
        CheckConstraint("(generation_id IS NULL) <> (test_run_id IS NULL)", name="one_owner"),
        CheckConstraint(f"state IN {CHARGE_STATES!r}", name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed by uq_quota_charges_generation_id_ledger_id (generation_id first).
    generation_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    test_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("test_runs.id", ondelete="CASCADE"), index=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("quota_ledgers.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int]
    state: Mapped[str] = mapped_column(String(20), default="reserved")  # one of CHARGE_STATES
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuotaAlert(db.Model):
    """One row per (ledger, threshold), so each 80% / 100% email is sent once."""

    __tablename__ = "quota_alerts"
    __table_args__ = (UniqueConstraint("ledger_id", "threshold"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("quota_ledgers.id", ondelete="CASCADE"))
    threshold: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class VariantRefund(db.Model):
    """One refunded variant on one ledger ("Not usable: refund"): the record that it happened, who
    asked and why. Unique per (variant, ledger), so the same variant can never be refunded twice."""

    __tablename__ = "variant_refunds"
    __table_args__ = (
        UniqueConstraint("variant_id", "ledger_id", name="uq_variant_refunds_variant_id"),
        CheckConstraint("amount > 0", name="ck_variant_refunds_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # SET NULL: deleting the variant later keeps the ledger's record of the refund.
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL", name="fk_variant_refunds_variant_id_variants"))
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE", name="fk_variant_refunds_generation_id_generations"),
        index=True)
    ledger_id: Mapped[int] = mapped_column(
        ForeignKey("quota_ledgers.id", ondelete="CASCADE", name="fk_variant_refunds_ledger_id_quota_ledgers"),
        index=True)
    amount: Mapped[int]
    reason: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_variant_refunds_user_id_users"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class UsageDaily(db.Model):
    """The usage report's rollup: settled generations and variants per workspace, quota period,
    UTC day (of the generation or test run), member and template (0: template editor test runs).

    Kept in the same transaction as the charge changes that move usage (app/quota/rollup.py), so
    the Usage and Members pages sum a few rows per day instead of scanning every charge. One
    generation counts once however many ledgers it was charged on: only its first charge (the
    lowest id) moves the rollup. user_id is kept as written (no foreign key): a deleted user's
    usage stays in the report as "deleted user", as it does today.
    """

    __tablename__ = "usage_daily"
    __table_args__ = (
        UniqueConstraint("workspace_id", "period_kind", "period_start", "day", "user_id", "template_id",
                         name="uq_usage_daily_workspace_id"),
        # No CHECK (variants >= 0): SQLite checks the row an upsert proposes (a -1 delta) before
        # it finds the conflict, so a nonnegative CHECK would refuse every variant refund.
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_usage_daily_workspace_id_workspaces"))
    period_kind: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date]
    day: Mapped[date]
    user_id: Mapped[int]  # 0: the generation had no user
    template_id: Mapped[int]  # 0: template editor test runs
    generations: Mapped[int] = mapped_column(default=0)
    variants: Mapped[int] = mapped_column(default=0)
