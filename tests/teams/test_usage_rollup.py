"""The usage report read from the usage_daily rollup equals the report summed from the charges.

Settles (full and partial), variant refunds ("Not usable: refund"), a refund of a whole
generation and template test runs, over several days, in per-seat and pooled mode with a capped
member (two charges per generation: the rollup must count it once). Runs on SQLite and, with
DATABASE_URL naming PostgreSQL, on PostgreSQL (the upsert is dialect-specific).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import time_machine
from sqlalchemy import select

from app.catalog.models import TestRun
from app.catalog.services import get_published
from app.extensions import db
from app.generation.models import Generation, Variant
from app.quota import services as quota
from app.quota.models import QuotaLedger, UsageDaily
from app.teams import usage
from app.workspaces.models import Membership, Workspace


def _generation(workspace: Workspace, user_id: int, amount: int) -> Generation:
    template = get_published("x-post")
    generation = Generation(workspace_id=workspace.id, user_id=user_id, template_id=template.id,
                            template_version_id=template.published_version_id, inputs={}, tone="Bold",
                            language="English", variant_count=amount, creativity=0.7, system_prompt="s",
                            user_prompt="u")
    db.session.add(generation)
    db.session.flush()
    quota.reserve(workspace, user_id, generation.id, amount)
    return generation


def _unusable_variant(generation: Generation, position: int) -> Variant:
    variant = Variant(generation_id=generation.id, position=position, text="cut", cut_off=True)
    db.session.add(variant)
    db.session.flush()
    return variant


def _both_reports(workspace: Workspace, only_user_id: int | None = None):
    start = quota.current_period(workspace)[0]
    kind = quota.quota_period(workspace).kind
    from_rollup = usage.aggregate_rollup(
        workspace.id, (UsageDaily.period_start == start) & (UsageDaily.period_kind == kind), only_user_id)
    from_charges = usage.aggregate_charges(
        workspace.id, (QuotaLedger.period_start == start) & (QuotaLedger.period_kind == kind), only_user_id)
    as_plain = [(dict(r[0]), dict(r[1]), dict(r[2])) for r in (from_rollup, from_charges)]
    as_lists = [({k: list(v) for k, v in u.items()}, {k: list(v) for k, v in t.items()}, d) for u, t, d in as_plain]
    return as_lists[0], as_lists[1]


def test_report_from_rollup_equals_report_from_charges(app, team):
    member_id = team.add("capped@example.com")
    start = datetime(2026, 12, 3, 9, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False) as clock, app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        owner_id = db.session.scalars(select(Membership.user_id).where(
            Membership.workspace_id == workspace.id, Membership.role == "owner")).one()
        # Day 1, per seat: a full settle, a partial settle (2 of 3 came back), a refunded generation.
        full = _generation(workspace, owner_id, 3)
        quota.settle(full.id)
        partial = _generation(workspace, owner_id, 3)
        quota.settle(partial.id, used=2)
        failed = _generation(workspace, owner_id, 2)
        quota.refund(failed.id)
        quota.settle(full.id)  # a job run twice moves nothing
        db.session.commit()

        # Day 2, pooled with a capped member: two charges per generation, counted once.
        clock.move_to(datetime.combine(start.date() + timedelta(days=1), time(23, 59), tzinfo=timezone.utc))
        workspace.quota_mode = "pooled"
        db.session.get(Membership, team.membership_id("capped@example.com")).quota_cap = 8
        db.session.commit()
        pooled = _generation(workspace, member_id, 4)
        quota.settle(pooled.id)
        variants = [_unusable_variant(pooled, position) for position in range(2)]
        db.session.commit()
        for variant in variants:  # two variant refunds
            quota.refund_variant(variant, member_id)
        db.session.commit()
        refunded_pooled = _generation(workspace, member_id, 2)
        quota.refund(refunded_pooled.id)
        settled_to_zero = _generation(workspace, member_id, 1)
        quota.settle(settled_to_zero.id, used=0)  # nothing came back: a generation, no variant
        db.session.commit()

        # Day 3: a template editor test run, settled for 2 of 3.
        clock.move_to(start + timedelta(days=2))
        run = TestRun(job_id="rollup-test-run", workspace_id=workspace.id, user_id=owner_id, variant_count=3)
        db.session.add(run)
        db.session.flush()
        quota.reserve_test_run(workspace, owner_id, run.id, 3)
        quota.settle_test_run(run.id, 2)
        db.session.commit()

        rollup, charges = _both_reports(workspace)
        assert rollup == charges
        per_user, per_template, per_day = rollup
        assert per_user == {owner_id: [3, 7], member_id: [2, 2]}
        template_id = full.template_id
        assert per_template == {template_id: [4, 7], usage.TEST_RUNS: [1, 2]}
        assert per_day == {start.date(): 5, start.date() + timedelta(days=1): 2,
                           start.date() + timedelta(days=2): 2}
        assert _both_reports(workspace, only_user_id=member_id)[0] == \
            _both_reports(workspace, only_user_id=member_id)[1] == ({member_id: [2, 2]}, {template_id: [2, 2]},
                                                                   {start.date() + timedelta(days=1): 2})

        # The page's report reads the rollup: the same figures as the charges give.
        report = usage.build(workspace)
        assert {row.user_id: (row.generations, row.variants) for row in report.members
                if row.generations} == {owner_id: (3, 7), member_id: (2, 2)}
        assert report.total_variants == 9

        # The backfill (migration 4811864173bf runs the same statements) rebuilds the same rollup.
        from sqlalchemy import delete, text

        from app.quota.rollup import backfill_statements
        kept = sorted(db.session.execute(select(
            UsageDaily.period_start, UsageDaily.day, UsageDaily.user_id, UsageDaily.template_id,
            UsageDaily.generations, UsageDaily.variants)).tuples())
        db.session.execute(delete(UsageDaily))
        for statement in backfill_statements(db.session.get_bind().dialect.name):
            db.session.execute(text(statement))
        rebuilt = sorted(db.session.execute(select(
            UsageDaily.period_start, UsageDaily.day, UsageDaily.user_id, UsageDaily.template_id,
            UsageDaily.generations, UsageDaily.variants)).tuples())
        assert rebuilt == kept
        assert _both_reports(workspace)[0] == _both_reports(workspace)[1]
