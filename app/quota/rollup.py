"""The usage_daily rollup: moved in the same transaction as the charge changes that change usage.

A generation (or test run) counts in the report once, with its settled amount, however many
ledgers it was charged on (a pooled workspace with a capped member charges the pool and the
member the same amount). So only its first charge (the lowest id) moves the rollup: settling
it adds one generation and its variants; a variant refund takes one variant back; a refund of
the reservation never reached usage and moves nothing. The upsert is one atomic
INSERT ... ON CONFLICT DO UPDATE on both SQLite and PostgreSQL, so concurrent jobs add, never
overwrite.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.quota.models import QuotaCharge, QuotaLedger, UsageDaily


def is_first_charge(charge: QuotaCharge) -> bool:
    """Whether this charge is the one of its generation or test run that the rollup counts."""
    owner = (QuotaCharge.generation_id == charge.generation_id) if charge.generation_id is not None \
        else (QuotaCharge.test_run_id == charge.test_run_id)
    return db.session.scalar(select(func.min(QuotaCharge.id)).where(owner)) == charge.id


def add(charge: QuotaCharge, generations: int, variants: int) -> None:
    """Add (or with negative numbers take back) usage for the generation or test run of `charge`."""
    from app.catalog.models import TestRun
    from app.generation.models import Generation

    if charge.generation_id is not None:
        user_id, template_id, created_at = db.session.execute(
            select(Generation.user_id, Generation.template_id, Generation.created_at)
            .where(Generation.id == charge.generation_id)).one()
    else:
        user_id, created_at = db.session.execute(
            select(TestRun.user_id, TestRun.created_at).where(TestRun.id == charge.test_run_id)).one()
        template_id = 0
    workspace_id, period_kind, period_start = db.session.execute(
        select(QuotaLedger.workspace_id, QuotaLedger.period_kind, QuotaLedger.period_start)
        .where(QuotaLedger.id == charge.ledger_id)).one()
    upsert(workspace_id, period_kind, period_start, _day(created_at), user_id or 0, template_id or 0,
           generations, variants)


def upsert(workspace_id: int, period_kind: str, period_start: date, day: date, user_id: int,
           template_id: int, generations: int, variants: int) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(UsageDaily).values(
        workspace_id=workspace_id, period_kind=period_kind, period_start=period_start, day=day,
        user_id=user_id, template_id=template_id, generations=generations, variants=variants)
    db.session.execute(stmt.on_conflict_do_update(
        index_elements=["workspace_id", "period_kind", "period_start", "day", "user_id", "template_id"],
        set_={"generations": UsageDaily.generations + stmt.excluded.generations,
              "variants": UsageDaily.variants + stmt.excluded.variants}))


def _day(created_at: datetime) -> date:
    return created_at.date()


def backfill_statements(dialect: str) -> list[str]:
    """SQL that fills usage_daily from the settled charges (for rows written without the services,
    as bench/scale.py's COPY seed does): each generation and test run once, by its first charge.
    Migration 4811864173bf runs its own frozen copy of the same statements."""
    day = "date(o.created_at)" if dialect == "sqlite" else "CAST(o.created_at AS DATE)"
    statements = []
    for owner, table, template, group in (("generation_id", "generations", "o.template_id", ", o.template_id"),
                                          ("test_run_id", "test_runs", "0", "")):
        statements.append(
            "INSERT INTO usage_daily (workspace_id, period_kind, period_start, day, user_id, template_id, "
            "generations, variants) "
            f"SELECT l.workspace_id, l.period_kind, l.period_start, {day}, COALESCE(o.user_id, 0), {template}, "
            "COUNT(*), SUM(c.amount) "
            f"FROM (SELECT MIN(id) AS id FROM quota_charges WHERE {owner} IS NOT NULL GROUP BY {owner}) f "
            "JOIN quota_charges c ON c.id = f.id JOIN quota_ledgers l ON l.id = c.ledger_id "
            f"JOIN {table} o ON o.id = c.{owner} "
            "WHERE c.state = 'settled' "
            f"GROUP BY l.workspace_id, l.period_kind, l.period_start, {day}, COALESCE(o.user_id, 0){group}")
    return statements
