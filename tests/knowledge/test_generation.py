"""Knowledge in a generation, through the generate form and the real worker: what reaches the prompt,
what the generation records, and what the result page shows."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.generation.models import Generation
from app.knowledge.models import KnowledgePassage
from tests.knowledge.conftest import add_item

HYDRA = "# Hydra bottle\nThe Hydra bottle holds 32 oz and costs $14.99. Double-walled steel keeps drinks cold."
COMPANY = "# About us\nFounded in Portland in 2019. We plant a tree for every order."


def _generate(client, topic: str = "Launch of the Hydra bottle", expect: int = 302, **extra):
    data = {"f_topic": topic, "f_details": "", "f_link": "", "tone": "Friendly", "language": "English",
            "variant_count": "1", "creativity": "balanced", **extra}
    response = client.post("/write/x-post", data=data)
    assert response.status_code == expect, response.get_data(as_text=True)[:3000]
    return int(response.headers["Location"].rsplit("/", 1)[-1]) if expect == 302 else response


def _prompt(fake_llm) -> str:
    return fake_llm.chat_requests[-1]["json"]["messages"][-1]["content"]


def _generation(app, generation_id: int) -> Generation:
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        db.session.expunge(generation)
        return generation


def test_let_copydeck_choose_puts_the_relevant_passage_in_the_prompt_and_records_it(app, owner, run_worker, fake_llm):
    hydra_id = add_item(owner, "Hydra bottle", HYDRA, tags="bottles")
    add_item(owner, "Company", COMPANY, kind="company_fact")
    form = owner.get("/write/x-post").get_data(as_text=True)
    assert "Let Copydeck choose" in form and "Hydra bottle (Product)" in form
    generation_id = _generate(owner)  # the form's default: Let Copydeck choose
    run_worker()
    prompt = _prompt(fake_llm)
    assert "### Facts from" in prompt and "costs $14.99" in prompt and "### End of facts" in prompt
    assert "plant a tree" not in prompt  # not relevant to the inputs
    generation = _generation(app, generation_id)
    assert generation.status == "succeeded"
    with app.app_context():
        passage = db.session.scalars(select(KnowledgePassage).where(KnowledgePassage.item_id == hydra_id)).one()
    assert generation.knowledge_passages == [{"item_id": hydra_id, "passage_id": passage.id,
                                              "title": "Hydra bottle", "text": passage.text}]
    assert generation.user_prompt == prompt
    page = owner.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert "Facts used" in page and "costs $14.99" in page


def test_no_facts_when_the_user_says_none(app, owner, run_worker, fake_llm):
    add_item(owner, "Hydra bottle", HYDRA)
    generation_id = _generate(owner, knowledge_mode="none")
    run_worker()
    assert "Facts from" not in _prompt(fake_llm)
    assert _generation(app, generation_id).knowledge_passages is None
    assert "Facts used" not in owner.get(f"/generations/{generation_id}").get_data(as_text=True)


def test_picked_tags_bring_their_items_whatever_the_inputs(app, owner, run_worker, fake_llm):
    add_item(owner, "Hydra bottle", HYDRA, tags="bottles")
    company_id = add_item(owner, "Company", COMPANY, kind="company_fact", tags="about")
    generation_id = _generate(owner, topic="Summer sale", knowledge_mode="pick", knowledge_tags="about")
    run_worker()
    prompt = _prompt(fake_llm)
    assert "plant a tree" in prompt and "$14.99" not in prompt
    assert [p["item_id"] for p in _generation(app, generation_id).knowledge_passages] == [company_id]


def test_picked_items(app, owner, run_worker, fake_llm):
    hydra_id = add_item(owner, "Hydra bottle", HYDRA)
    add_item(owner, "Company", COMPANY)
    generation_id = _generate(owner, topic="Summer sale", knowledge_mode="pick", knowledge_items=str(hydra_id))
    run_worker()
    assert "$14.99" in _prompt(fake_llm)
    assert [p["item_id"] for p in _generation(app, generation_id).knowledge_passages] == [hydra_id]


def test_pick_without_a_choice_is_refused(app, owner):
    add_item(owner, "Hydra bottle", HYDRA)
    response = _generate(owner, knowledge_mode="pick", expect=422)
    assert "Pick at least one item or tag" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Generation)).first() is None


def test_another_workspaces_item_cannot_be_picked(app, owner, client, login, make_user):
    from app.workspaces import services as teams
    from app.workspaces.models import Membership

    add_item(owner, "Hydra bottle", HYDRA)
    user_id = login("other@example.com")
    with app.app_context():
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()
        teams.set_seats(workspace_id, 1, generations_per_seat=10, plan="pro")
        db.session.commit()
    other_item = add_item(client, "Other", "Another workspace's secret price is $99.")
    response = _generate(owner, knowledge_mode="pick", knowledge_items=str(other_item), expect=422)
    assert "not a valid choice" in response.get_data(as_text=True)
    assert "secret price" not in response.get_data(as_text=True)


def test_a_template_that_places_knowledge_itself_gets_no_appended_section(app, owner, team, run_worker, fake_llm):
    from app.catalog.versions import create_template

    add_item(owner, "Hydra bottle", HYDRA)
    with app.app_context():
        create_template({
            "slug": "fact-post", "name": "Fact post", "category": "Social", "description": "", "icon": "chat",
            "fields": [{"name": "topic", "label": "Topic", "type": "text", "required": True}],
            "output": {"variants": 1, "format": "single"},
            "system_prompt": "Write in {{ language }}.",
            "user_prompt": "Topic: {{ topic }}\n{% if knowledge %}KNOWN FACTS >>>\n{{ knowledge }}\n<<<{% endif %}",
        }, author=None, workspace_id=team.workspace_id, publish_now=True)
        db.session.commit()
    response = owner.post("/write/fact-post", data={"f_topic": "Hydra bottle launch", "tone": "Friendly",
                                                    "language": "English", "variant_count": "1",
                                                    "creativity": "balanced"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    run_worker()
    prompt = _prompt(fake_llm)
    assert prompt.startswith("Topic: Hydra bottle launch\nKNOWN FACTS >>>\n[Hydra bottle]\nThe Hydra bottle holds 32 oz")
    assert "### Facts from" not in prompt


def test_the_token_budget_bounds_the_facts(app, owner, run_worker, fake_llm):
    from app.knowledge.services import estimate_tokens

    paragraphs = [f"Hydra bottle fact number {i}: " + "steel bottle cold water " * 30 for i in range(8)]
    add_item(owner, "Hydra bottle", "\n\n".join(paragraphs))
    before = app.config["KNOWLEDGE_TOKEN_BUDGET"]
    app.config["KNOWLEDGE_TOKEN_BUDGET"] = 400
    try:
        generation_id = _generate(owner, topic="Hydra bottle steel")
        run_worker()
    finally:
        app.config["KNOWLEDGE_TOKEN_BUDGET"] = before
    passages = _generation(app, generation_id).knowledge_passages
    assert 1 <= len(passages) < 8
    assert sum(estimate_tokens(p["title"]) + estimate_tokens(p["text"]) for p in passages) <= 400


def test_regenerate_uses_the_same_facts_even_after_the_item_changed(app, owner, run_worker, fake_llm):
    hydra_id = add_item(owner, "Hydra bottle", HYDRA)
    first = _generate(owner)
    run_worker()
    owner.post(f"/knowledge/{hydra_id}/delete")
    response = owner.post(f"/generations/{first}/regenerate")
    second = int(response.headers["Location"].rsplit("/", 1)[-1])
    run_worker()
    assert second != first
    assert _generation(app, second).knowledge_passages == _generation(app, first).knowledge_passages
    assert "costs $14.99" in _prompt(fake_llm)
    assert "Facts used" in owner.get(f"/generations/{first}").get_data(as_text=True)


def test_a_workspace_without_the_plan_gets_no_knowledge_fields_or_facts(app, owner, team, run_worker, fake_llm):
    from app.workspaces import services as teams

    add_item(owner, "Hydra bottle", HYDRA)
    with app.app_context():
        teams.set_seats(team.workspace_id, 5, generations_per_seat=10, plan="free")
        db.session.commit()
    assert "Let Copydeck choose" not in owner.get("/write/x-post").get_data(as_text=True)
    generation_id = _generate(owner, knowledge_mode="auto")
    run_worker()
    assert "$14.99" not in _prompt(fake_llm)
    assert _generation(app, generation_id).knowledge_passages is None
