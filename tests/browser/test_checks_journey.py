"""Browser journey: a marketer sets a style guide (a banned word, hold flagged copy), generates,
sees the marked span with its rule and reason, and releases the held variant."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journey import FINAL_CARDS, generate, sign_up
from tests.fakes.openai_server import reply

pytestmark = pytest.mark.browser


def test_style_guide_marks_the_span_and_holds_until_checked(page: Page, worker_process, fake_llm):
    sign_up(page, "styleguide@example.com")
    page.click("nav.mainnav >> text=Team")
    page.click("nav.subnav >> text=Style guide")
    expect(page.locator("[data-testid=entries]")).to_contain_text("seamlessly")  # default AI tells

    page.select_option("[name=e-kind]", "banned")
    page.fill("[name=e-phrase]", "cheap")
    page.fill("[name=e-replacement]", "affordable")
    page.click("[data-testid=add-entry] button[type=submit]")
    expect(page.locator("[data-testid=entries]")).to_contain_text("affordable")
    page.fill("[name=e-phrase]", "CHEAP")
    page.click("[data-testid=add-entry] button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("“CHEAP” is already a banned phrase.")

    page.select_option("[name=s-flag_action]", "hold")
    page.click("form[action$='/style-guide/settings'] button[type=submit]")
    expect(page.locator("[name=s-flag_action]")).to_have_value("hold")

    fake_llm.script(reply("Cheap <b>posts</b> for everyone."), reply("Cheap posts for everyone, really."))
    generate(page, "x-post", {}, variants=1)
    card = page.locator(FINAL_CARDS).first
    mark = card.locator("mark.finding[data-rule=banned]")
    expect(mark).to_have_text("Cheap")
    expect(mark).to_have_attribute("title", "Banned phrase: “cheap” is on your style guide's banned list. "
                                            "Suggestion: affordable")
    expect(card.locator("[data-testid=findings]")).to_contain_text("Try: affordable")
    expect(card.locator("[data-role=text]")).to_have_text("Cheap posts for everyone, really.")
    expect(card.get_by_role("button", name="Copy")).to_be_disabled()

    card.locator("[data-action=mark-checked]").click()
    card = page.locator(FINAL_CARDS).first
    expect(card.locator("[data-testid=hold]")).to_contain_text("Checked by styleguide@example.com")
    expect(card.get_by_role("button", name="Copy")).to_be_enabled()
