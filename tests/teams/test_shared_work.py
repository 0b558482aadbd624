"""Brand voices reach the prompt; projects collect favourites for the whole workspace."""
from __future__ import annotations

from sqlalchemy import select

from app.brand.models import BrandVoice
from app.extensions import db
from app.generation.models import Variant
from tests.generation.helpers import form_data, load, submit

VOICE = {"name": "Acme calm", "description": "Acme sells quiet kettles.", "tone_rules": "Warm, never shouty.",
         "words_to_use": "whisper-quiet", "words_to_avoid": "revolutionary", "audience": "Busy parents",
         "key_facts": "Boils in 90 seconds."}


def test_brand_voice_crud_and_prompt(app, team, run_worker, fake_llm):
    team.add("mem@example.com")
    owner, member = team.client("owner@example.com"), team.client("mem@example.com")
    assert member.post("/brand-voices/new", data=VOICE).status_code == 403
    assert owner.post("/brand-voices/new", data={**VOICE, "name": ""}).status_code == 422
    assert owner.post("/brand-voices/new", data={**VOICE, "tone_rules": "x" * 2001}).status_code == 422
    assert owner.post("/brand-voices/new", data=VOICE).status_code == 302
    with app.app_context():
        voice_id = db.session.scalars(select(BrandVoice.id)).one()
    assert "Acme calm" in member.get("/brand-voices").get_data(as_text=True)

    # A template that uses brand_voice gets its text through the sandboxed context.
    page = member.get("/write/product-description").get_data(as_text=True)
    assert 'name="brand_voice"' in page and "Acme calm" in page
    generation_id = submit(member, app, "product-description", 1, brand_voice=str(voice_id))
    run_worker()
    prompt = fake_llm.chat_requests[-1]["json"]["messages"]
    text = "\n".join(m["content"] for m in prompt)
    assert "whisper-quiet" in text and "Boils in 90 seconds." in text
    assert load(app, generation_id).brand_voice_id == voice_id

    # Another workspace's voice id is not a valid choice.
    outsider = app.test_client()
    from app.auth import services
    with app.app_context():
        services.sign_up("out@example.com", "correct-horse-battery")
        db.session.commit()
    outsider.post("/login", data={"email": "out@example.com", "password": "correct-horse-battery"})
    response = outsider.post("/write/product-description", data=form_data(app, "product-description", 1,
                                                                           brand_voice=str(voice_id)))
    assert response.status_code == 422
    assert outsider.get(f"/brand-voices/{voice_id}/edit").status_code == 404

    assert owner.post(f"/brand-voices/{voice_id}/edit", data={**VOICE, "name": "Acme bold"}).status_code == 302
    assert owner.post(f"/brand-voices/{voice_id}/delete").status_code == 302
    assert load(app, generation_id).brand_voice_id is None  # history stays


def test_projects_collect_favourites_for_the_workspace(app, team, run_worker):
    team.add("mem@example.com")
    owner, member = team.client("owner@example.com"), team.client("mem@example.com")
    generation_id = submit(member, app, "x-post", 2)
    run_worker()
    variant_id = load(app, generation_id).variants[0].id
    assert owner.post("/projects", data={"name": ""}).status_code == 422
    response = owner.post("/projects", data={"name": "Spring launch"})
    assert response.status_code == 302
    project_id = int(response.headers["Location"].rsplit("/", 1)[-1])

    card = member.post(f"/variants/{variant_id}/file", data={"project_id": project_id}, headers={"HX-Request": "true"})
    assert card.status_code == 200 and "Filed in Spring launch" in card.get_data(as_text=True)
    member.post(f"/variants/{variant_id}/file", data={"project_id": project_id})  # twice is fine
    with app.app_context():
        assert db.session.get(Variant, variant_id).is_favourite
    page = owner.get(f"/projects/{project_id}").get_data(as_text=True)
    assert page.count('<article class="variant" data-project-item=') == 1
    assert f"/generations/{generation_id}" in page  # links to its source generation

    # Members cannot delete someone else's project; the owner can.
    assert member.post(f"/projects/{project_id}/delete").status_code == 403
    assert owner.post(f"/projects/{project_id}/delete").status_code == 302
    assert load(app, generation_id).variants[0].is_favourite  # the variant stays
