"""Check figures: of the variants checked in a period, the share with style violations, unsupported
claims and the wrong language, and how often the one repair fixed everything (repaired variants that
ended with no findings and within their limit).

Read from the check_daily rollup (CheckDaily), which the job adds to when it stores variants: a sum
over a few rows per day, not a scan of every variant (issue 13: the usage page at a million
generations). Variants written before checks existed (findings IS NULL) are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from app.checks.models import CheckDaily
from app.extensions import db


@dataclass
class CheckFigures:
    checked: int = 0
    style: int = 0
    claims: int = 0
    wrong_language: int = 0
    repaired: int = 0
    repaired_ok: int = 0

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def style_rate(self) -> float | None:
        return self._rate(self.style, self.checked)

    @property
    def claims_rate(self) -> float | None:
        return self._rate(self.claims, self.checked)

    @property
    def language_rate(self) -> float | None:
        return self._rate(self.wrong_language, self.checked)

    @property
    def repair_success_rate(self) -> float | None:
        return self._rate(self.repaired_ok, self.repaired)


_FIGURES = ("checked", "style", "claims", "wrong_language", "repaired", "repaired_ok")


def counts(variants: list[dict]) -> dict[str, int]:
    """The figures of variants about to be stored (each the Variant's column values)."""
    def still_failing(v: dict) -> bool:
        return bool(v.get("style_flagged") or v.get("claims_flagged") or v.get("wrong_language") or v.get("over_limit"))
    checked = [v for v in variants if v.get("findings") is not None]
    return {
        "checked": len(checked),
        "style": sum(bool(v.get("style_flagged")) for v in checked),
        "claims": sum(bool(v.get("claims_flagged")) for v in checked),
        "wrong_language": sum(bool(v.get("wrong_language")) for v in checked),
        "repaired": sum(bool(v.get("repaired")) for v in checked),
        "repaired_ok": sum(bool(v.get("repaired")) and not still_failing(v) for v in checked),
    }


def record(workspace_id: int, template_id: int, created_at: datetime, variants: list[dict]) -> None:
    """Add the stored variants' figures to the rollup, in the caller's transaction (one atomic
    INSERT ... ON CONFLICT DO UPDATE, so concurrent jobs add, never overwrite)."""
    figures = counts(variants)
    if not figures["checked"]:
        return
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(CheckDaily).values(workspace_id=workspace_id, day=created_at.date(), template_id=template_id,
                                     **figures)
    db.session.execute(stmt.on_conflict_do_update(
        index_elements=["workspace_id", "day", "template_id"],
        set_={name: getattr(CheckDaily, name) + getattr(stmt.excluded, name) for name in _FIGURES}))


_SUMS = tuple(func.coalesce(func.sum(getattr(CheckDaily, name)), 0) for name in _FIGURES)


def per_template(start: date, end: date) -> dict[int, CheckFigures]:
    """Template id -> figures for generations created in [start, end] (whole days)."""
    rows = db.session.execute(
        select(CheckDaily.template_id, *_SUMS)
        .where(CheckDaily.day >= start, CheckDaily.day <= end)
        .group_by(CheckDaily.template_id)
    ).all()
    return {row[0]: CheckFigures(*(int(v) for v in row[1:])) for row in rows}


def for_workspace(workspace_id: int, start: date, end_exclusive: date) -> CheckFigures:
    """One workspace's figures for generations created in [start, end_exclusive)."""
    row = db.session.execute(
        select(*_SUMS).where(CheckDaily.workspace_id == workspace_id, CheckDaily.day >= start,
                             CheckDaily.day < end_exclusive)
    ).one()
    return CheckFigures(*(int(v) for v in row))


def backfill_statements(dialect: str) -> list[str]:
    """SQL that fills check_daily from the stored variants (for rows written without the job, as
    bench/scale.py's COPY seed does). Variants from before checks existed (findings IS NULL) are not
    counted. Migration 6d1f0b7c3a92 runs its own frozen copy of the same statement."""
    day = "date(g.created_at)" if dialect == "sqlite" else "CAST(g.created_at AS DATE)"
    true = "1" if dialect == "sqlite" else "TRUE"
    failing = (f"(v.style_flagged = {true} OR v.claims_flagged = {true} OR v.wrong_language = {true} "
               f"OR v.over_limit = {true})")
    return [
        "INSERT INTO check_daily (workspace_id, day, template_id, checked, style, claims, wrong_language, "
        "repaired, repaired_ok) "
        f"SELECT g.workspace_id, {day}, g.template_id, COUNT(*), "
        f"SUM(CASE WHEN v.style_flagged = {true} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN v.claims_flagged = {true} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN v.wrong_language = {true} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN v.repaired = {true} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN v.repaired = {true} AND NOT {failing} THEN 1 ELSE 0 END) "
        "FROM variants v JOIN generations g ON g.id = v.generation_id "
        "WHERE v.findings IS NOT NULL "
        f"GROUP BY g.workspace_id, {day}, g.template_id"
    ]
