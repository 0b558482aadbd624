"""The style-guide page: owners and admins edit, members read; bad entries refused with the reason;
hold-and-check flow; tenancy (another workspace's entry, voice or variant is a 404)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.brand.models import BrandVoice
from app.checks.models import StyleEntry, StyleGuide
from app.extensions import db
from app.generation.models import Variant
from tests.checks.helpers import add_entry, save_settings, variant_of, workspace_of
from tests.fakes.openai_server import reply
from tests.generation.helpers import submit


def _entries(app, workspace_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        return [(e.kind, e.phrase) for e in db.session.scalars(
            select(StyleEntry).where(StyleEntry.workspace_id == workspace_id).order_by(StyleEntry.id))]


def test_page_shows_default_ai_tells_before_anything_is_saved(app, client, login):
    login()
    page = client.get("/workspace/style-guide").get_data(as_text=True)
    assert "seamlessly" in page and "it&#39;s not just X, it&#39;s Y" in page and "em-dash chains" in page


def test_first_entry_keeps_the_default_ai_tells_as_editable_entries(app, client, login):
    workspace_id = workspace_of(app, login())
    response = add_entry(client, "banned", "  cheap   deals ", "great value")
    assert response.status_code == 302
    entries = _entries(app, workspace_id)
    assert ("banned", "cheap deals") in entries and ("ai_tell", "delve") in entries
    with app.app_context():
        delve = db.session.scalars(select(StyleEntry).where(StyleEntry.phrase == "delve")).one().id
    assert client.post(f"/workspace/style-guide/entries/{delve}/delete").status_code == 302
    assert ("ai_tell", "delve") not in _entries(app, workspace_id)


def test_empty_duplicate_and_too_long_entries_are_refused_with_the_reason(app, client, login):
    workspace_id = workspace_of(app, login())
    add_entry(client, "spelling", "Copydeck")
    before = _entries(app, workspace_id)
    cases = [(("banned", "   "), "The banned phrase is empty."),
             (("spelling", "copydeck"), "“copydeck” is already a required spelling."),
             (("banned", "x" * 81), "The banned phrase is 81 characters; the limit is 80."),
             (("banned", "ok", "y" * 81), "The replacement is 81 characters; the limit is 80."),
             (("spelling", "Copy", "copy"), "A required spelling is the replacement itself"),
             (("ai_tell", "---"), "needs at least one letter or digit")]
    for args, reason in cases:
        response = add_entry(client, *args)
        assert response.status_code == 422, args
        assert reason in response.get_data(as_text=True), args
    assert _entries(app, workspace_id) == before
    assert client.post("/workspace/style-guide/entries", data={"e-kind": "nope", "e-phrase": "x"}).status_code == 422
    assert save_settings(client, max_grade="40").status_code == 422


def test_members_read_but_cannot_edit(app, team):
    team.add("member@example.com")
    member = team.client("member@example.com")
    assert member.get("/workspace/style-guide").status_code == 200
    assert add_entry(member, "banned", "cheap").status_code == 403
    assert save_settings(member, flag_action="hold").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count(StyleGuide.id))) == 0


def test_another_workspaces_entry_voice_and_variant_are_404(app, client, login, make_user, run_worker):
    login()
    add_entry(client, "banned", "cheap")
    with app.app_context():
        entry_id = db.session.scalars(select(StyleEntry.id).where(StyleEntry.phrase == "cheap")).one()
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant_id = variant_of(app, generation_id).id
    other = app.test_client()
    login("other@example.com", as_client=other)
    other_ws = workspace_of(app, make_user("third@example.com"))
    with app.app_context():
        voice = BrandVoice(workspace_id=other_ws, name="Theirs")
        db.session.add(voice)
        db.session.commit()
        voice_id = voice.id
    assert other.post(f"/workspace/style-guide/entries/{entry_id}/delete").status_code == 404
    assert other.post(f"/workspace/style-guide/voices/{voice_id}", data={"v-max_grade": "6"}).status_code == 404
    assert other.post(f"/variants/{variant_id}/checked").status_code == 404
    assert "cheap" not in other.get("/workspace/style-guide").get_data(as_text=True)


def test_reading_level_target_per_brand_voice_applies_to_its_copy(app, team, run_worker, fake_llm):
    client, workspace_id = team.client("owner@example.com"), team.workspace_id  # brand voices: a paid plan
    with app.app_context():
        voice = BrandVoice(workspace_id=workspace_id, name="Plain")
        db.session.add(voice)
        db.session.commit()
        voice_id = voice.id
    assert client.post(f"/workspace/style-guide/voices/{voice_id}", data={"v-max_grade": "6"}).status_code == 302
    dense = ("Notwithstanding considerable organisational heterogeneity, implementation methodologies "
             "proliferate across multinational enterprises, necessitating comprehensive interdisciplinary "
             "coordination mechanisms and sophisticated institutional accountability frameworks.")
    fake_llm.script(reply(dense), reply(dense))
    generation_id = submit(client, app, "x-post", variants=1, brand_voice=str(voice_id))
    run_worker()
    variant = variant_of(app, generation_id)
    assert [f["rule"] for f in variant.findings] == ["reading_level"] and variant.style_flagged
    assert "the target is 6 or below" in variant.findings[0]["reason"]


def test_held_variant_blocks_copy_until_a_person_marks_it_checked(app, team, run_worker, fake_llm):
    owner = team.client("owner@example.com")
    assert save_settings(owner, flag_action="hold").status_code == 302
    fake_llm.script(reply("The #1 tool, award-winning."), reply("The #1 tool, award-winning and loved."))
    generation_id = submit(owner, app, "x-post", variants=1)
    run_worker()
    variant = variant_of(app, generation_id)
    assert variant.held and variant.checked_at is None
    card = owner.get(f"/variants/{variant.id}").get_data(as_text=True)
    assert "Held for review" in card and "data-copy=" not in card and 'data-action="mark-checked"' in card

    member_id = team.add("editor@example.com")
    editor = team.client("editor@example.com")
    response = editor.post(f"/variants/{variant.id}/checked")
    assert response.status_code == 200
    card = response.get_data(as_text=True)
    assert "Checked by editor@example.com" in card and "data-copy=" in card
    with app.app_context():
        stored = db.session.get(Variant, variant.id)
        assert stored.checked_by_id == member_id and stored.checked_at is not None and not stored.copy_blocked
        first_check = stored.checked_at
    # A second click (another tab) keeps the first decision.
    owner.post(f"/variants/{variant.id}/checked")
    with app.app_context():
        stored = db.session.get(Variant, variant.id)
        assert (stored.checked_by_id, stored.checked_at) == (member_id, first_check)


def test_clean_variants_are_not_held_and_show_mode_never_holds(app, client, login, run_worker, fake_llm):
    login()
    save_settings(client, flag_action="hold")
    fake_llm.script(reply("Write better posts with Copydeck."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    clean = variant_of(app, generation_id)
    assert clean.findings == [] and not clean.held
    save_settings(client, flag_action="show")
    fake_llm.script(reply("The #1 tool."), reply("The #1 tool."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    flagged = variant_of(app, generation_id)
    assert flagged.claims_flagged and not flagged.held


def test_a_held_variant_filed_in_a_project_cannot_be_copied_there_either(app, client, login, run_worker, fake_llm):
    login()
    save_settings(client, flag_action="hold")
    fake_llm.script(reply("The #1 tool."), reply("The #1 tool."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant = variant_of(app, generation_id)
    assert client.post("/projects", data={"name": "Launch"}).status_code in (200, 302)
    with app.app_context():
        from app.projects.models import Project
        project_id = db.session.scalars(select(Project.id)).one()
    client.post(f"/variants/{variant.id}/file", data={"project_id": str(project_id)})
    page = client.get(f"/projects/{project_id}").get_data(as_text=True)
    assert "The #1 tool." in page and "data-copy=" not in page
    client.post(f"/variants/{variant.id}/checked")
    assert "data-copy=" in client.get(f"/projects/{project_id}").get_data(as_text=True)
