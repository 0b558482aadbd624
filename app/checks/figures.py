"""Check figures, computed in SQL: of the variants checked in a period, the share with style
violations, unsupported claims and the wrong language, and how often the one repair fixed
everything (repaired variants that ended with no findings and within their limit).

Variants written before checks existed (findings IS NULL) are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, case, func, not_, or_, select

from app.extensions import db
from app.generation.models import Generation, Variant


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


def _one(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


_STILL_FAILING = or_(Variant.style_flagged.is_(True), Variant.claims_flagged.is_(True),
                     Variant.wrong_language.is_(True), Variant.over_limit.is_(True))
_COLUMNS = (
    func.count(Variant.id),
    _one(Variant.style_flagged.is_(True)),
    _one(Variant.claims_flagged.is_(True)),
    _one(Variant.wrong_language.is_(True)),
    _one(Variant.repaired.is_(True)),
    _one(and_(Variant.repaired.is_(True), not_(_STILL_FAILING))),
)


def _period(start: date, end_exclusive: date):
    lower = datetime.combine(start, time.min)
    upper = datetime.combine(end_exclusive, time.min)
    return Generation.created_at >= lower, Generation.created_at < upper


def per_template(start: date, end: date) -> dict[int, CheckFigures]:
    """Template id -> figures for generations created in [start, end] (whole days)."""
    rows = db.session.execute(
        select(Generation.template_id, *_COLUMNS)
        .join(Generation, Generation.id == Variant.generation_id)
        .where(Variant.findings.is_not(None), *_period(start, end + timedelta(days=1)))
        .group_by(Generation.template_id)
    ).all()
    return {row[0]: CheckFigures(*(int(v) for v in row[1:])) for row in rows}


def for_workspace(workspace_id: int, start: date, end_exclusive: date) -> CheckFigures:
    """One workspace's figures for generations created in [start, end_exclusive)."""
    row = db.session.execute(
        select(*_COLUMNS)
        .join(Generation, Generation.id == Variant.generation_id)
        .where(Generation.workspace_id == workspace_id, Variant.findings.is_not(None),
               *_period(start, end_exclusive))
    ).one()
    return CheckFigures(*(int(v) for v in row))
