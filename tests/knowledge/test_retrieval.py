"""Retrieval ranks passages in the database: SQLite FTS5 locally, PostgreSQL tsvector + ts_rank when
DATABASE_URL points at PostgreSQL (run this file both ways)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.knowledge import retrieval, services
from app.workspaces.models import Workspace
from tests.knowledge.conftest import add_item

ITEMS = {
    "Hydra bottle": "The Hydra bottle holds 32 oz of water and costs $14.99. Double-walled steel bottle.",
    "Shipping FAQ": "Shipping is free on orders over $50. Orders ship within 2 days from Portland.",
    "Company": "Founded in 2019. We plant a tree for every order and use recycled steel.",
    "Awards": "The Hydra bottle won the 2024 Outdoor Gear award for design.",
}


@pytest.fixture
def workspace_id(app, owner, team):
    for title, body in ITEMS.items():
        add_item(owner, title, body)
    return team.workspace_id


def _titles(app, workspace_id: int, query: str, **kwargs) -> list[str]:
    with app.app_context():
        return [hit.title for hit in retrieval.search(workspace_id, query, **kwargs)]


def test_ranks_the_most_relevant_passage_first(app, workspace_id):
    assert _titles(app, workspace_id, "Launch the Hydra bottle: 32 oz of cold water")[0] == "Hydra bottle"
    assert _titles(app, workspace_id, "free shipping on orders")[0] == "Shipping FAQ"
    assert _titles(app, workspace_id, "we plant trees")[0] == "Company"
    # Stemming: "bottles" finds "bottle"; both bottle passages, the one saying it twice first.
    assert _titles(app, workspace_id, "bottles") == ["Hydra bottle", "Awards"]
    assert _titles(app, workspace_id, "kayak paddles") == []


def test_scores_decrease(app, workspace_id):
    with app.app_context():
        hits = retrieval.search(workspace_id, "Hydra bottle steel order")
    assert len(hits) == 4
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("query", [
    'hydra" OR bottle', "NEAR(hydra bottle)", "hydra*", "-bottle", "title:hydra", "(hydra", "hydra AND",
    "hydra'; DROP TABLE knowledge_passages; --", "hydra & | ! <-> :*", '"""', "ÜBER hydra", "^hydra",
])
def test_fts_syntax_in_the_inputs_is_only_words(app, workspace_id, query):
    titles = _titles(app, workspace_id, query)
    assert "Hydra bottle" in titles or not retrieval.terms(query)
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM knowledge_passages")).scalar() == 4


def test_terms_are_bounded_and_clean():
    assert retrieval.terms("The Hydra's bottle, the BOTTLE & the hydra!") == ["hydra", "bottle"]
    assert len(retrieval.terms(" ".join(f"word{i}" for i in range(100)))) == retrieval.MAX_TERMS
    assert retrieval.fts5_query(["a\"b", "c"]) == '"a""b" OR "c"'


def test_only_this_workspace_and_only_picked_items(app, workspace_id, make_user):
    from app.auth.models import User
    from app.workspaces import services as teams
    from app.workspaces.models import Membership

    other_user = make_user("other@example.com")
    with app.app_context():
        other_ws = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == other_user)).one()
        teams.set_seats(other_ws, 1, generations_per_seat=10, plan="pro")
        db.session.commit()
        services.create_item(db.session.get(Workspace, other_ws), db.session.get(User, other_user), kind="product",
                             title="Rival bottle", body="The rival bottle costs $9.", tags=[])
        db.session.commit()
    assert "Rival bottle" not in _titles(app, workspace_id, "bottle")
    assert _titles(app, other_ws, "bottle") == ["Rival bottle"]
    with app.app_context():
        ids = {i.title: i.id for i in services.items_of(workspace_id)}
    assert _titles(app, workspace_id, "bottle", item_ids=[ids["Awards"]]) == ["Awards"]
    assert _titles(app, workspace_id, "bottle", item_ids=[]) == []


def test_the_index_structure_exists_on_this_dialect(app, workspace_id):
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            index = db.session.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_knowledge_passages_search_vector'")).scalar()
            assert "gin" in index.lower()
        else:
            assert db.session.execute(text("SELECT count(*) FROM knowledge_passages_fts")).scalar() == 4
