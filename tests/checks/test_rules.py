"""The checks as pure functions: each style rule, claims by value and unit, language, marks, repair text."""
from __future__ import annotations

from markupsafe import Markup

from app.checks.checker import CheckContext, repair_instruction, run_checks, variant_fields
from app.checks.claims import Sources, extract_claims, unsupported_claims
from app.checks.language import check_language, detect
from app.checks.markup import highlight
from app.checks.style import DEFAULT_AI_TELLS, StyleRules, check_reading_level, check_style
from app.generation.rules import check


def _rules(**kw) -> StyleRules:
    return StyleRules(**{"ai_tells": (), **kw})


def test_banned_phrase_is_found_whole_word_any_case_with_its_suggestion():
    rules = _rules(banned=(("cheap", "affordable"), ("act now", None)))
    found = check_style("Cheap seats! ACT  NOW. Not cheapest though.", rules)
    assert [(f.rule, f.text, f.suggestion) for f in found] == [("banned", "Cheap", "affordable"),
                                                               ("banned", "ACT  NOW", None)]
    assert found[0].start == 0 and found[0].end == 5


def test_required_spelling_flags_other_capitalisations_and_splits_only():
    rules = _rules(spellings=("Copydeck",))
    found = check_style("Copydeck, CopyDeck, copy deck and Copy-Deck.", rules)
    assert [f.text for f in found] == ["CopyDeck", "copy deck", "Copy-Deck"]
    assert all(f.suggestion == "Copydeck" and f.rule == "spelling" for f in found)


def test_default_ai_tells_include_words_phrases_and_patterns():
    phrases = {p for p, _ in DEFAULT_AI_TELLS}
    assert {"delve", "seamlessly", "in today's fast-paced world", "unlock the power of"} <= phrases
    text = ("In today’s fast-paced world, we delve into data. It integrates seamlessly. "
            "It's not just a tool, it's a partner. Fast — simple — yours.")
    found = check_style(text, StyleRules())
    texts = [f.text for f in found]
    assert "In today’s fast-paced world" in texts and "delve" in texts and "seamlessly" in texts
    assert any(t.startswith("It's not just a tool") for t in texts)
    assert "— simple —" in texts
    assert all(f.kind == "style" and f.rule == "ai_tell" for f in found)


def test_ai_tells_off_finds_nothing_and_plain_copy_is_clean():
    assert check_style("We delve seamlessly.", _rules()) == []
    assert check_style("Write better ads in less time.", StyleRules()) == []


def test_reading_level_flags_dense_english_only_above_the_target():
    dense = ("Notwithstanding considerable organisational heterogeneity, implementation methodologies "
             "proliferate across multinational enterprises, necessitating comprehensive interdisciplinary "
             "coordination mechanisms and sophisticated institutional accountability frameworks.")
    plain = "We make ads. They are short. They are clear. You can read them fast. Try it now and see. It is free."
    assert check_reading_level(dense, 8, "English")[0].kind == "reading_level"
    assert check_reading_level(plain * 2, 8, "English") == []
    assert check_reading_level(dense, None, "English") == []
    assert check_reading_level(dense, 8, "German") == []


def test_numbers_are_compared_by_value_and_unit():
    sources = Sources.of(["32 oz bottle at $14.99; 1,000 stores; 20% off; pack of 2."])
    supported = "A 32-ounce bottle for 14.99 dollars in 1000 stores, 20 percent off, two in a pack."
    assert extract_claims(supported) and unsupported_claims(supported, sources) == []
    wrong = "A 32-liter bottle for $14.99, 25% off, €14.99 in the EU."
    assert [f.text for f in unsupported_claims(wrong, sources)] == ["32-liter", "25%", "€14.99"]


def test_superlatives_and_certifications_need_a_source():
    sources = Sources.of(["Certified organic cotton. Voted #1 by Runner's World."])
    text = "The #1 organic tee. Award-winning, FDA-approved and clinically proven."
    assert [f.text for f in unsupported_claims(text, sources)] == [
        "Award-winning", "FDA-approved", "clinically proven"]


def test_press_release_example_from_the_issue():
    """32 oz at $14.99 is grounded; "16 beers by the end of July" is not."""
    sources = Sources.of(["Product: Hopsy Lager, 32 oz bottle", "Price: $14.99"])
    text = "Hopsy Lager comes in a 32 oz bottle at $14.99 — and the price drops to 16 beers by the end of July."
    assert [f.text for f in unsupported_claims(text, sources)] == ["16", "July"]


def test_modal_may_and_round_the_clock_are_not_claims():
    assert extract_claims("You may love it. Support 24/7.") == []


def test_language_detector_flags_confident_other_language_and_skips_short_text():
    german = "Unsere neue Flasche hält Getränke den ganzen Tag kalt und passt in jede Tasche."
    english = "Our new bottle keeps drinks cold all day and fits in any bag you own."
    assert detect(german)[0] == "de"
    [finding] = check_language(german, "English")
    assert finding.rule == "wrong_language" and "German" in finding.reason
    assert check_language(english, "English") == []
    assert check_language(german, "German") == []
    assert check_language("Hallo Welt", "English") == []  # too short to judge


def test_highlight_escapes_model_text_and_marks_spans():
    text = '<script>x</script> We delve "deep" & more.'
    findings = [f.as_dict() for f in check_style(text, StyleRules())]
    html = highlight(text, findings)
    assert isinstance(html, Markup)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; more" in html
    assert '<mark class="finding finding-style" data-rule="ai_tell"' in html and ">delve</mark>" in html


def test_highlight_skips_stale_and_overlapping_spans():
    findings = [{"rule": "banned", "kind": "style", "start": 0, "end": 4, "text": "gone", "reason": "r"},
                {"rule": "banned", "kind": "style", "start": 5, "end": 9, "text": "text", "reason": "<b>"},
                {"rule": "banned", "kind": "style", "start": 6, "end": 8, "text": "ex", "reason": "r"}]
    html = highlight("some text", findings)
    assert html.count("<mark") == 1 and 'title="Banned phrase: &lt;b&gt;"' in html


def test_one_repair_instruction_names_every_broken_rule():
    context = CheckContext(rules=StyleRules(banned=(("cheap", "affordable"),)),
                           sources=Sources.of(["Price $10"]), language="English")
    text = "Cheap! Now $12 and award-winning."
    findings = run_checks(text, context)
    verdict = check(text, "single", 10)
    message = repair_instruction("single", 10, verdict, findings, "English")
    assert "the limit is 10" in message and "“Cheap”" in message and "affordable" in message
    assert "“$12”" in message and "“award-winning”" in message
    fields = variant_fields(findings, hold=True)
    assert fields["held"] and fields["style_flagged"] and fields["claims_flagged"] and not fields["wrong_language"]
    assert variant_fields([], hold=True)["held"] is False


def test_a_crashing_check_is_logged_and_skipped_not_raised(caplog):
    class Broken:
        def supports(self, claim):
            raise RuntimeError("boom")

    context = CheckContext(rules=StyleRules(banned=(("cheap", None),)), sources=Broken())
    found = run_checks("Cheap, and 40% off.", context)
    assert [f.rule for f in found] == ["banned"]
    assert "a check failed" in caplog.text
