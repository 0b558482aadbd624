"""Checks inside the generation job, against the fake LLM and a real RQ worker: one repair covering
every broken rule, re-checked; what still fails is stored as findings and marked, never edited."""
from __future__ import annotations

from tests.checks.helpers import add_entry, variant_of
from tests.fakes.openai_server import reply
from tests.generation.helpers import submit


def _repair_message(fake_llm) -> str:
    return fake_llm.chat_requests[-1]["json"]["messages"][-1]["content"]


def test_a_violating_variant_gets_one_repair_naming_every_rule_then_is_clean(app, client, login, run_worker, fake_llm):
    login()
    assert add_entry(client, "banned", "cheap", "affordable").status_code == 302
    fake_llm.script(reply("Cheap, award-winning Copydeck posts that delve deep."),
                    reply("Affordable Copydeck posts, written for you."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant = variant_of(app, generation_id)
    assert variant.text == "Affordable Copydeck posts, written for you."
    assert variant.repaired and variant.findings == [] and not variant.style_flagged and not variant.claims_flagged
    assert len(fake_llm.chat_requests) == 2
    message = _repair_message(fake_llm)
    assert "“Cheap”" in message and "affordable" in message and "“award-winning”" in message and "“delve”" in message


def test_still_failing_after_the_one_repair_is_flagged_with_spans_not_edited(app, client, login, run_worker, fake_llm):
    login()
    add_entry(client, "spelling", "Copydeck")
    fake_llm.script(reply("CopyDeck is the #1 tool."), reply("CopyDeck is the #1 tool for teams."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant = variant_of(app, generation_id)
    assert len(fake_llm.chat_requests) == 2  # one repair, never a second
    assert variant.text == "CopyDeck is the #1 tool for teams."
    assert [(f["rule"], f["text"], f["start"], f["end"]) for f in variant.findings] == [
        ("spelling", "CopyDeck", 0, 8), ("unsupported_claim", "#1", 16, 18)]
    assert variant.style_flagged and variant.claims_flagged and not variant.held
    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert 'data-rule="spelling"' in page and ">CopyDeck</mark>" in page and ">#1</mark>" in page
    assert "Your style guide spells this “Copydeck”." in page


def test_press_release_grounded_figures_pass_and_invented_ones_are_flagged(app, client, login, run_worker, fake_llm):
    login()
    invented = ("Hopsy launches a 32 oz bottle at $14.99. The price drops to 16 beers by the end of July, "
                "says the brewer.")
    fake_llm.script(reply(invented), reply(invented))
    generation_id = submit(client, app, "press-release", variants=1, f_company="Hopsy Brewing",
                           f_news="New 32-ounce bottle of Hopsy Lager", f_details="Price: 14.99 dollars")
    run_worker()
    variant = variant_of(app, generation_id)
    assert [f["text"] for f in variant.findings if f["kind"] == "claim"] == ["16", "July"]
    assert "“16”" in _repair_message(fake_llm) and "“July”" in _repair_message(fake_llm)


def test_wrong_language_gets_one_repair_in_the_requested_language(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply("Unsere neue Flasche hält Getränke den ganzen Tag kalt und passt in jede Tasche."),
                    reply("Our new bottle keeps drinks cold all day and fits in any bag."))
    generation_id = submit(client, app, "x-post", variants=1, language="English")
    run_worker()
    variant = variant_of(app, generation_id)
    assert "written in English" in _repair_message(fake_llm)
    assert variant.text.startswith("Our new bottle") and not variant.wrong_language and variant.repaired


def test_still_in_the_wrong_language_is_flagged(app, client, login, run_worker, fake_llm):
    login()
    german = "Unsere neue Flasche hält Getränke den ganzen Tag kalt und passt in jede Tasche."
    fake_llm.script(reply(german), reply(german))
    generation_id = submit(client, app, "x-post", variants=1, language="English")
    run_worker()
    variant = variant_of(app, generation_id)
    assert variant.wrong_language and [f["rule"] for f in variant.findings] == ["wrong_language"]
    assert "reads as German" in client.get(f"/generations/{generation_id}").get_data(as_text=True)


def test_marked_card_escapes_model_html_around_and_inside_marks(app, client, login, run_worker, fake_llm):
    login()
    add_entry(client, "banned", "<b>cheap</b>")
    hostile = '<img src=x onerror="alert(1)"> <b>cheap</b> & the #1 <script>x()</script>'
    fake_llm.script(reply(hostile), reply(hostile))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    card = client.get(f"/variants/{variant_of(app, generation_id).id}").get_data(as_text=True)
    assert "<img" not in card and "<script>x()" not in card and "<b>cheap" not in card
    assert '&lt;img src=x onerror=&#34;alert(1)&#34;&gt;' in card
    assert 'data-rule="banned" title="Banned phrase: “&lt;b&gt;cheap&lt;/b&gt;”' in card
    assert ">&lt;b&gt;cheap&lt;/b&gt;</mark>" in card and ">#1</mark>" in card
