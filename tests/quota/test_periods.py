"""Quota periods on the calendar's edges, with the clock frozen on each edge.

Ledgers are keyed by (workspace, subject, period kind, period start): a billing
period that starts on the 1st is not the calendar month that also starts then.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.quota import services as quota
from app.catalog.services import get_published
from app.generation.models import Generation
from app.quota.models import QuotaLedger
from app.workspaces.models import Membership, Workspace

EDGES = [date(2026, 12, 1), date(2027, 2, 28), date(2028, 2, 29), date(2026, 11, 30), date(2026, 12, 31),
         date(2027, 1, 1)]


def _frozen(day: date, hour: int = 12):
    return time_machine.travel(datetime.combine(day, time(hour), tzinfo=timezone.utc), tick=False)


def _charge(workspace: Workspace, user_id: int, amount: int, settle: bool = True) -> None:
    """Reserve `amount` for a new generation of this member, and settle it unless told not to."""
    template = get_published("x-post")
    generation = Generation(workspace_id=workspace.id, user_id=user_id, template_id=template.id,
                            template_version_id=template.published_version_id, inputs={}, tone="Bold",
                            language="English", variant_count=amount, creativity=0.7, system_prompt="s",
                            user_prompt="u")
    db.session.add(generation)
    db.session.flush()
    quota.reserve(workspace, user_id, generation.id, amount)
    if settle:
        quota.settle(generation.id)
    db.session.commit()


def _workspace_of(user_id: int) -> Workspace:
    return db.session.scalars(select(Workspace).join(Membership).where(Membership.user_id == user_id)).one()


@pytest.mark.parametrize("today", EDGES, ids=str)
def test_calendar_period_contains_today_on_every_edge(today):
    period = quota.quota_period(None, today)
    assert period.kind == "calendar"
    assert period.start == today.replace(day=1) and period.start <= today < period.end
    assert period.end.day == 1 and (period.end - timedelta(days=1)).month == today.month


@pytest.mark.parametrize("today", EDGES, ids=str)
def test_an_upgrade_on_any_day_starts_a_fresh_paid_ledger(app_ctx, make_user, today):
    """Free usage stays with the calendar month; the paid period starts empty,
    even when it starts on the 1st, the same day the calendar month starts."""
    with _frozen(today):
        user_id = make_user()
        workspace = _workspace_of(user_id)
        _charge(workspace, user_id, 5)
        assert quota.remaining(workspace, user_id).remaining == app_ctx.config["FREE_MONTHLY_GENERATIONS"] - 5

        workspace.plan, workspace.generations_per_seat = "pro", 500
        workspace.period_start, workspace.period_end = today, today + timedelta(days=31)
        db.session.commit()
        allowance = quota.remaining(workspace, user_id)
        assert (allowance.remaining, allowance.period_start) == (500, today)

        _charge(workspace, user_id, 2, settle=False)
        kinds = {(row.period_kind, row.period_start): (row.used, row.reserved)
                 for row in db.session.scalars(select(QuotaLedger).where(QuotaLedger.workspace_id == workspace.id))}
        assert kinds == {("calendar", today.replace(day=1)): (5, 0), ("billing", today): (0, 2)}


def test_renewal_starts_a_new_ledger_and_cancellation_returns_to_the_month(app_ctx, make_user):
    start = date(2026, 12, 1)
    with _frozen(start):
        user_id = make_user()
        workspace = _workspace_of(user_id)
        workspace.plan, workspace.generations_per_seat = "pro", 100
        workspace.period_start, workspace.period_end = start, date(2027, 1, 1)
        db.session.commit()
        _charge(workspace, user_id, 30)
        assert quota.remaining(workspace, user_id).remaining == 70

    with _frozen(date(2026, 12, 31), hour=23):
        assert quota.remaining(workspace, user_id).remaining == 70  # the last day still counts the period
    with _frozen(date(2027, 1, 1), hour=0):
        # The subscription renewed: Stripe moved the period.
        workspace.period_start, workspace.period_end = date(2027, 1, 1), date(2027, 2, 1)
        db.session.commit()
        assert quota.remaining(workspace, user_id).remaining == 100
        # Cancelled the same day: back on the calendar month, which has no usage yet.
        workspace.plan, workspace.generations_per_seat = "free", 20
        workspace.period_start = workspace.period_end = None
        db.session.commit()
        allowance = quota.remaining(workspace, user_id)
        assert (allowance.remaining, allowance.period_start, allowance.period_end) == \
            (20, date(2027, 1, 1), date(2027, 2, 1))


def test_a_stale_billing_period_falls_back_to_the_calendar_month(app_ctx):
    """A period that ended (a webhook that never came) does not keep today in it."""
    workspace = Workspace(name="w", period_start=date(2026, 10, 5), period_end=date(2026, 11, 5))
    assert quota.quota_period(workspace, date(2026, 12, 31)) == quota.Period("calendar", date(2026, 12, 1),
                                                                               date(2027, 1, 1))
    assert quota.quota_period(workspace, date(2026, 11, 4)).kind == "billing"
    assert quota.quota_period(workspace, date(2026, 11, 5)).kind == "calendar"
