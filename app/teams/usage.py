"""Usage reports: per member, per template and per day, from settled charges.

What a member used is what the ledger charged them: the settled QuotaCharges
of their generations (per_seat ledgers, or the pool). Reports read only.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from markupsafe import Markup, escape
from sqlalchemy import Date, Integer, cast, func, literal, select, tuple_, union_all

from app.auth.models import User
from app.catalog.models import Template, TestRun
from app.checks.figures import CheckFigures, for_workspace as check_figures_for_workspace
from app.extensions import db
from app.generation.models import Generation
from app.quota import services as quota
from app.quota.models import PERIOD_KINDS, QuotaCharge, QuotaLedger, UsageDaily
from app.workspaces.models import Membership, Workspace


TEST_RUNS = "test-runs"  # the per-template key of template editor test runs


@dataclass
class MemberRow:
    user_id: int
    email: str
    role: str | None  # None: no longer a member
    generations: int = 0
    variants: int = 0
    cap: int | None = None
    remaining: int | None = None


@dataclass
class UsageReport:
    period_start: date
    period_end: date
    members: list[MemberRow]
    templates: list[tuple[str, int, int]]  # name, generations, variants
    daily: list[tuple[date, int]]
    total_variants: int
    allowance: int
    pool: bool = False
    periods: list[date] = field(default_factory=list)
    checks: CheckFigures | None = None  # style, claims, language, repair success (app/checks); managers only

    @property
    def period_last_day(self) -> date:
        return self.period_end - timedelta(days=1)


def available_periods(workspace: Workspace) -> list[date]:
    """Period starts that have a ledger, newest first, always including the current one."""
    current = quota.current_period(workspace)[0]
    starts = set(db.session.scalars(
        select(QuotaLedger.period_start).where(QuotaLedger.workspace_id == workspace.id).distinct()))
    starts.add(current)
    return sorted(starts, reverse=True)


def period_bounds(workspace: Workspace, start: date) -> tuple[date, date]:
    current_start, current_end = quota.current_period(workspace)
    if start == current_start:
        return current_start, current_end
    return quota.calendar_month(start)


def build(workspace: Workspace, period_start: date | None = None, only_user_id: int | None = None) -> UsageReport:
    periods = available_periods(workspace)
    start = period_start if period_start in periods else periods[0]
    start, end = period_bounds(workspace, start)
    current = quota.quota_period(workspace)
    # The current period counts its own ledgers only: Free usage of the month an
    # upgrade started in belongs to the calendar month, not the paid period.
    # A past period counts both kinds of ledger; naming them (rather than leaving period_kind out) lets
    # PostgreSQL seek the rollup's unique index (workspace, period kind, period start, ...) twice
    # instead of scanning the table.
    same_period = ((UsageDaily.period_start == start) & UsageDaily.period_kind.in_(PERIOD_KINDS)) \
        if start != current.start else ((UsageDaily.period_start == start) & (UsageDaily.period_kind == current.kind))
    per_user, per_template, per_day = aggregate_rollup(workspace.id, same_period, only_user_id)

    memberships = {m.user_id: m for m in db.session.scalars(
        select(Membership).where(Membership.workspace_id == workspace.id))}
    user_ids = set(per_user) | (set(memberships) if only_user_id is None else {only_user_id})
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    is_current = start == quota.current_period(workspace)[0]
    left = quota.remaining_for_members(workspace, {uid: m.quota_cap for uid, m in memberships.items()
                                                   if uid in user_ids}) if is_current else {}
    members = []
    for user_id in sorted(user_ids, key=lambda uid: users[uid].email if uid in users else ""):
        membership = memberships.get(user_id)
        generations, variants = per_user.get(user_id, (0, 0))
        row = MemberRow(user_id, users[user_id].email if user_id in users else "deleted user",
                        membership.role if membership else None, generations, variants,
                        membership.quota_cap if membership else None)
        if membership is not None and is_current:
            row.remaining = left[user_id].remaining
        members.append(row)
    template_ids = [tid for tid in per_template if tid != TEST_RUNS]
    names: dict[int | str, str] = dict(db.session.execute(select(Template.id, Template.name).where(Template.id.in_(template_ids))).tuples().all()) \
        if template_ids else {}
    names[TEST_RUNS] = "Template editor test runs"
    templates = sorted(((names.get(tid, "?"), g, v) for tid, (g, v) in per_template.items()), key=lambda r: -r[2])
    days = (end - start).days
    daily = [(start + timedelta(days=i), per_day.get(start + timedelta(days=i), 0)) for i in range(days)]
    pooled = workspace.quota_mode == "pooled"
    allowance = workspace.seats * workspace.seat_quota
    checks = check_figures_for_workspace(workspace.id, start, end) if only_user_id is None else None
    return UsageReport(start, end, members, templates, daily, sum(per_day.values()), allowance, pooled, periods,
                       checks)


def aggregate_rollup(workspace_id: int, same_period, only_user_id: int | None):
    """Generations and variants per member, per template and per day, from the usage_daily rollup.

    The rollup holds one row per workspace, period, day, member and template (app/quota/rollup.py),
    so this sums rows per day, member and template whatever the number of charges (a 50-member
    month: about 20,000); only the reports' rows come back (PostgreSQL: one pass with GROUPING SETS;
    SQLite: one GROUP BY per report). It gives the same numbers as aggregate_charges
    (tests/teams/test_usage_rollup.py).
    """
    where = [UsageDaily.workspace_id == workspace_id, same_period]
    if only_user_id is not None:
        where.append(UsageDaily.user_id == only_user_id)
    generations, variants = func.sum(UsageDaily.generations), func.sum(UsageDaily.variants)
    keys = (UsageDaily.user_id, UsageDaily.template_id, UsageDaily.day)
    if db.session.get_bind().dialect.name == "postgresql":
        which = func.grouping(*keys)
        rows = db.session.execute(
            select(which, *keys, generations, variants).where(*where)
            .group_by(func.grouping_sets(*(tuple_(key) for key in keys)))
        ).all()
        by_user = [(r[1], r[4], r[5]) for r in rows if r[0] == 0b011]
        by_template = [(r[2], r[4], r[5]) for r in rows if r[0] == 0b101]
        by_day = [(r[3], r[4], r[5]) for r in rows if r[0] == 0b110]
    else:
        by_user, by_template, by_day = (
            list(db.session.execute(select(key, generations, variants).where(*where).group_by(key)).tuples())
            for key in keys)
    per_user: dict[int | None, list[int]] = {}
    per_template: dict[int | str, list[int]] = {}
    per_day: dict[date, int] = {}
    for user_id, generations_n, variants_n in by_user:
        if generations_n:  # a row is written by a settle, so there is always one
            per_user[user_id or None] = [int(generations_n), int(variants_n)]
    for template_id, generations_n, variants_n in by_template:
        if generations_n:
            per_template[template_id or TEST_RUNS] = [int(generations_n), int(variants_n)]
    for day, generations_n, variants_n in by_day:
        if generations_n:
            per_day[day if isinstance(day, date) else date.fromisoformat(day)] = int(variants_n)
    return per_user, per_template, per_day


def aggregate_charges(workspace_id: int, same_period, only_user_id: int | None):
    """Generations and variants charged per member, per template and per day, summed by the database.

    A pooled generation with a capped member has two charges (the pool's and the member's, of
    the same amount): the inner query keeps one row per generation (and per test run), so it is
    counted once. The outer query groups per member, per template and per day (PostgreSQL: one
    query with GROUPING SETS; SQLite: three), so only the reports' rows come back.
    """
    # The ledgers' workspace too: the planner then starts from this workspace's few ledgers of the
    # period instead of every workspace's.
    settled = (QuotaCharge.state == "settled", same_period, QuotaLedger.workspace_id == workspace_id)
    generations = (
        select(Generation.user_id.label("user_id"), Generation.template_id.label("template_id"),
               Generation.created_at.label("created_at"), func.max(QuotaCharge.amount).label("amount"))
        .join(QuotaCharge, QuotaCharge.generation_id == Generation.id)
        .join(QuotaLedger, QuotaLedger.id == QuotaCharge.ledger_id)
        .where(Generation.workspace_id == workspace_id, *settled)
        .group_by(Generation.id, Generation.user_id, Generation.template_id, Generation.created_at)
    )
    # Template test runs are charged like generations; they are listed as one line of their own
    # (template_id NULL: a generation always has a template).
    test_runs = (
        select(TestRun.user_id.label("user_id"), literal(None, Integer).label("template_id"),
               TestRun.created_at.label("created_at"), func.max(QuotaCharge.amount).label("amount"))
        .join(QuotaCharge, QuotaCharge.test_run_id == TestRun.id)
        .join(QuotaLedger, QuotaLedger.id == QuotaCharge.ledger_id)
        .where(TestRun.workspace_id == workspace_id, *settled)
        .group_by(TestRun.id, TestRun.user_id, TestRun.created_at)
    )
    if only_user_id is not None:
        generations = generations.where(Generation.user_id == only_user_id)
        test_runs = test_runs.where(TestRun.user_id == only_user_id)
    charged = union_all(generations, test_runs).subquery()
    day = _day(charged.c.created_at)
    count, total = func.count(), func.sum(charged.c.amount)
    if db.session.get_bind().dialect.name == "postgresql":
        # One pass: GROUPING SETS returns the three reports' rows (GROUPING() tells which is which,
        # as a NULL user is also a group: a deleted user's generations).
        which = func.grouping(charged.c.user_id, charged.c.template_id, day)
        rows = db.session.execute(
            select(which, charged.c.user_id, charged.c.template_id, day, count, total)
            .group_by(func.grouping_sets(tuple_(charged.c.user_id), tuple_(charged.c.template_id), tuple_(day)))
        ).all()
        by_user = [(r[1], r[4], r[5]) for r in rows if r[0] == 0b011]
        by_template = [(r[2], r[4], r[5]) for r in rows if r[0] == 0b101]
        by_day = [(r[3], r[4], r[5]) for r in rows if r[0] == 0b110]
    else:  # SQLite has no GROUPING SETS: one GROUP BY per report
        by_user, by_template, by_day = (
            list(db.session.execute(select(key, count, total).group_by(key)).tuples())
            for key in (charged.c.user_id, charged.c.template_id, day))
    per_user: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    per_template: dict[int | str, list[int]] = defaultdict(lambda: [0, 0])
    per_day: dict[date, int] = defaultdict(int)
    for user_id, generations_n, variants_n in by_user:
        per_user[user_id] = [generations_n, int(variants_n)]
    for template_id, generations_n, variants_n in by_template:
        per_template[TEST_RUNS if template_id is None else template_id] = [generations_n, int(variants_n)]
    for day_value, _generations_n, variants_n in by_day:
        per_day[day_value if isinstance(day_value, date) else date.fromisoformat(day_value)] = int(variants_n)
    return per_user, per_template, per_day


def _day(column):
    """The UTC calendar day of a timestamp, in SQL: SQLite has no DATE type (date() gives text)."""
    if db.session.get_bind().dialect.name == "sqlite":
        return func.date(column)
    return cast(column, Date)


def as_csv(report: UsageReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["period_start", "period_end", "member", "role", "generations", "variants_charged", "cap", "remaining"])
    for row in report.members:
        writer.writerow([report.period_start.isoformat(), report.period_end.isoformat(), _csv_safe(row.email),
                         row.role or "removed", row.generations, row.variants,
                         "" if row.cap is None else row.cap, "" if row.remaining is None else row.remaining])
    writer.writerow([])
    writer.writerow(["template", "generations", "variants_charged"])
    for name, generations, variants in report.templates:
        writer.writerow([_csv_safe(name), generations, variants])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas in exported text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def daily_chart_svg(report: UsageReport, width: int = 720, height: int = 180) -> Markup:
    """A bar chart of variants charged per day, drawn on the server."""
    pad_left, pad_bottom, pad_top = 32, 22, 10
    days = report.daily or [(report.period_start, 0)]
    peak = max((n for _d, n in days), default=0) or 1
    inner_w, inner_h = width - pad_left - 4, height - pad_bottom - pad_top
    bar_w = inner_w / len(days)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Variants generated per day, {escape(report.period_start.isoformat())} to '
             f'{escape(report.period_end.isoformat())}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{pad_left}" y1="{pad_top + inner_h}" x2="{width - 4}" y2="{pad_top + inner_h}" class="axis"/>',
             f'<text x="{pad_left - 6}" y="{pad_top + 8}" text-anchor="end" class="tick">{peak}</text>',
             f'<text x="{pad_left - 6}" y="{pad_top + inner_h}" text-anchor="end" class="tick">0</text>']
    for i, (day, count) in enumerate(days):
        bar_h = inner_h * count / peak
        x = pad_left + i * bar_w + 1
        parts.append(f'<rect x="{x:.1f}" y="{pad_top + inner_h - bar_h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                     f'height="{bar_h:.1f}" class="bar"><title>{day.isoformat()}: {count}</title></rect>')
        if day.day == 1 or day.day % 5 == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="tick">{day.day}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def parse_period(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


