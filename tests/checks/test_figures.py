"""Check figures in SQL: per template (site admin) and per workspace for a period (usage, managers)."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from app.catalog import stats
from app.checks.figures import for_workspace, per_template
from app.extensions import db
from app.generation.models import Generation
from tests.checks.helpers import variant_of
from tests.fakes.openai_server import reply
from tests.generation.helpers import submit


def _generate(client, app, run_worker, fake_llm, first: str, second: str | None = None) -> int:
    fake_llm.script(*(reply(t) for t in (first, second) if t))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    return generation_id


def test_shares_and_repair_success_per_template_and_workspace(app, team, run_worker, fake_llm):
    owner = team.client("owner@example.com")
    german = "Unsere neue Flasche hält Getränke den ganzen Tag kalt und passt in jede Tasche."
    _generate(owner, app, run_worker, fake_llm, "Plain words for Copydeck.")                       # clean
    _generate(owner, app, run_worker, fake_llm, "We delve into posts.", "We write posts.")          # repaired, ok
    _generate(owner, app, run_worker, fake_llm, "The #1 tool.", "The #1 tool for teams.")           # claim stays
    _generate(owner, app, run_worker, fake_llm, german, german)                                     # language stays
    with app.app_context():
        template_id = db.session.scalars(select(Generation.template_id)).first()
        today = db.session.scalars(select(Generation.created_at)).first().date()
        figures = per_template(today, today)[template_id]
        assert (figures.checked, figures.style, figures.claims, figures.wrong_language) == (4, 0, 1, 1)
        assert (figures.repaired, figures.repaired_ok) == (3, 1)
        assert figures.claims_rate == 0.25 and abs(figures.repair_success_rate - 1 / 3) < 1e-9
        row = next(f for f in stats.figures(today, today) if f.template.id == template_id)
        assert row.checks == figures
        assert for_workspace(team.workspace_id, today, today + timedelta(days=1)) == figures
        assert for_workspace(team.workspace_id, today + timedelta(days=1), today + timedelta(days=2)).checked == 0
        assert for_workspace(team.workspace_id + 999, today, today + timedelta(days=1)).checked == 0
    page = owner.get("/workspace/usage").get_data(as_text=True)
    assert 'data-testid="check-figures"' in page and '<td class="claims-rate">25%</td>' in page
    team.add("member@example.com")
    assert 'data-testid="check-figures"' not in team.client("member@example.com").get("/workspace/usage").get_data(as_text=True)


def test_the_rollup_equals_the_variants_figures_and_skips_unchecked_ones(app, client, login, run_worker, fake_llm):
    """The backfill (migration 6d1f0b7c3a92, bench/scale.py) counts stored variants as the job does;
    variants from before checks existed (findings IS NULL) are not counted."""
    from app.checks.figures import backfill_statements
    from app.checks.models import CheckDaily
    from app.generation.models import Variant

    login()
    _generate(client, app, run_worker, fake_llm, "We delve into posts.", "We write posts.")   # repaired, ok
    _generate(client, app, run_worker, fake_llm, "The #1 tool.", "The #1 tool.")              # claim stays
    old = _generate(client, app, run_worker, fake_llm, "Plain words.")
    old_variant_id = variant_of(app, old).id
    with app.app_context():
        span = (date(2000, 1, 1), date(2100, 1, 1))
        live = per_template(*span)
        (figures,) = live.values()
        assert (figures.checked, figures.claims, figures.repaired, figures.repaired_ok) == (3, 1, 2, 1)
        db.session.execute(db.delete(CheckDaily))
        for statement in backfill_statements(db.engine.dialect.name):
            db.session.execute(db.text(statement))
        assert per_template(*span) == live
        db.session.execute(db.delete(CheckDaily))
        variant = db.session.get(Variant, old_variant_id)
        variant.findings = None  # stored before checks existed
        db.session.flush()
        for statement in backfill_statements(db.engine.dialect.name):
            db.session.execute(db.text(statement))
        assert next(iter(per_template(*span).values())).checked == 2
        db.session.rollback()
