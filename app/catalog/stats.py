"""Which templates work: per-template figures for a period, from SQL aggregates.

Uses are generations; rates over variants are favourites, thumbs and repairs
(a variant that needed the repair request, or is still over its limit); the
failure rate is over generations; average tokens over succeeded generations.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import case, func, or_, select

from app.catalog.models import Template
from app.checks.figures import CheckFigures, per_template as check_figures_per_template
from app.extensions import db
from app.generation.models import Generation, Variant


@dataclass
class Figures:
    template: Template
    uses: int = 0
    failed: int = 0
    avg_tokens: float | None = None
    variants: int = 0
    favourites: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    repaired: int = 0
    checks: CheckFigures | None = None  # style, claims, language, repair success (app/checks)

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def failure_rate(self) -> float | None:
        return self._rate(self.failed, self.uses)

    @property
    def favourite_rate(self) -> float | None:
        return self._rate(self.favourites, self.variants)

    @property
    def repair_rate(self) -> float | None:
        return self._rate(self.repaired, self.variants)


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min), datetime.combine(end + timedelta(days=1), time.min)


def figures(start: date, end: date, *, include_unused: bool = True) -> list[Figures]:
    """One row per template used in [start, end] (and, optionally, every unused site template)."""
    lower, upper = _bounds(start, end)
    in_period = (Generation.created_at >= lower, Generation.created_at < upper)
    one = lambda condition: func.sum(case((condition, 1), else_=0))  # noqa: E731
    per_generation = db.session.execute(
        select(Generation.template_id, func.count(Generation.id), one(Generation.status == "failed"),
               func.avg(case((Generation.status == "succeeded",
                              Generation.prompt_tokens + Generation.completion_tokens), else_=None)))
        .where(*in_period).group_by(Generation.template_id)
    ).all()
    per_variant = db.session.execute(
        select(Generation.template_id, func.count(Variant.id), one(Variant.is_favourite.is_(True)),
               one(Variant.rating > 0), one(Variant.rating < 0),
               one(or_(Variant.repaired.is_(True), Variant.over_limit.is_(True))))
        .join(Generation, Generation.id == Variant.generation_id)
        .where(*in_period).group_by(Generation.template_id)
    ).all()
    used_ids = {row[0] for row in per_generation}
    stmt = select(Template)
    if include_unused:
        stmt = stmt.where(or_(Template.workspace_id.is_(None), Template.id.in_(used_ids)))
    else:
        stmt = stmt.where(Template.id.in_(used_ids))
    rows = {t.id: Figures(t) for t in db.session.scalars(stmt)}
    for template_id, uses, failed, avg_tokens in per_generation:
        if template_id in rows:
            f = rows[template_id]
            f.uses, f.failed = uses, int(failed or 0)
            f.avg_tokens = float(avg_tokens) if avg_tokens is not None else None
    for template_id, count, favourites, up, down, repaired in per_variant:
        if template_id in rows:
            f = rows[template_id]
            f.variants, f.favourites = count, int(favourites or 0)
            f.thumbs_up, f.thumbs_down, f.repaired = int(up or 0), int(down or 0), int(repaired or 0)
    for template_id, check_figures in check_figures_per_template(start, end).items():
        if template_id in rows:
            rows[template_id].checks = check_figures
    return sorted(rows.values(), key=lambda f: (-f.uses, f.template.name))
