"""A marketer's first hour in Chromium: lists as lists, the cost line, "Not usable: refund", Stop.

Real app over HTTP, real RQ workers, the fake OpenAI server; assertions on what a person sees.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journey import FINAL_CARDS, GENERATION_TIMEOUT, GENERATION_URL, QUOTA, fill_generate_form, sign_up
from tests.fakes.openai_server import reply, trickle

pytestmark = pytest.mark.browser

LONG_LINE = "A headline that runs far past thirty characters"
HEADLINES = ["Mugs made by hand", LONG_LINE, "Sage glaze, slow mornings"]


def _clipboard(page: Page) -> str | None:
    if page.evaluate("!!(navigator.clipboard && window.isSecureContext)"):
        return page.evaluate("navigator.clipboard.readText()")
    return None


def _submit(page: Page, slug: str, variants: int) -> None:
    page.goto(f"/write/{slug}")
    fill_generate_form(page, {}, variants)
    page.click("#generate-form button[type=submit]")
    expect(page).to_have_url(GENERATION_URL)


def test_a_list_is_one_row_per_line_with_its_own_count_copy_and_star(page: Page, worker_process, fake_llm):
    sign_up(page, "lists@example.com")
    fake_llm.default_reply = lambda _request: "Sure! Here are your headlines:\n" + "\n".join(
        f"{i}. {line}" for i, line in enumerate(HEADLINES, 1))
    _submit(page, "google-ads-headlines", variants=1)
    card = page.locator(FINAL_CARDS)
    expect(card).to_have_count(1, timeout=GENERATION_TIMEOUT)
    rows = card.locator("[data-testid=item]")
    expect(rows).to_have_count(3)
    expect(rows.locator("[data-role=item-text]")).to_have_text(HEADLINES)  # no preamble, no numbering
    expect(rows.nth(0).locator("[data-testid=item-chars]")).to_have_text(f"{len(HEADLINES[0])} / 30")
    expect(rows.nth(1).locator("[data-testid=item-chars]")).to_have_text(f"{len(LONG_LINE)} / 30")
    expect(card.locator("[data-testid=item-over]")).to_have_count(1)  # marked one by one
    expect(rows.nth(1).locator("[data-testid=item-over]")).to_be_visible()

    copy_line = rows.nth(2).locator("[data-action=copy-item]")
    copy_line.click()
    if (text := _clipboard(page)) is not None:
        assert text == HEADLINES[2]
    copy_all = card.locator("[data-action=copy]")
    expect(copy_all).to_contain_text("Copy all")
    copy_all.click()
    expect(copy_all).to_contain_text("Copied!")
    if (text := _clipboard(page)) is not None:
        assert text.strip() == "\n".join(HEADLINES)

    star = rows.nth(0).locator("[data-action=favourite-item]")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(card.locator("[data-testid=item]").nth(0).locator("[data-action=favourite-item]")).to_have_attribute(
        "aria-pressed", "true")
    page.reload()
    expect(page.locator("[data-testid=item]").nth(0).locator("[data-action=favourite-item]")).to_have_attribute(
        "aria-pressed", "true")
    expect(page.locator("[data-testid=item]").nth(1).locator("[data-action=favourite-item]")).to_have_attribute(
        "aria-pressed", "false")


def test_the_form_shows_the_cost_and_follows_the_variant_count(page: Page, live_server):
    sign_up(page, "cost@example.com")
    page.goto("/write/x-post")
    line = page.locator("[data-testid=cost-line]")
    expect(line).to_contain_text(re.compile(r"This will use \d of your 20 generations left"))
    page.fill("#generate-form [name=variant_count]", "4")
    expect(line).to_contain_text("This will use 4 of your 20 generations left")
    page.fill("#generate-form [name=variant_count]", "2")
    expect(line).to_contain_text("This will use 2 of your 20")


def test_a_cut_off_variant_is_refunded_once_and_leaves_copy(page: Page, worker_process, fake_llm):
    sign_up(page, "refund@example.com")
    fake_llm.script(reply("A post that stops in the mid", finish_reason="length"))
    _submit(page, "x-post", variants=1)
    card = page.locator(FINAL_CARDS)
    expect(card).to_have_count(1, timeout=GENERATION_TIMEOUT)
    expect(card.locator("[data-testid=cut-off]")).to_have_text("Cut off")
    expect(page.locator(QUOTA)).to_have_text("19")
    page.on("dialog", lambda dialog: dialog.accept())
    card.locator("[data-action=refund]").click()
    expect(card.locator("[data-testid=refunded]")).to_be_visible()
    expect(card.locator("[data-action=copy]")).to_have_count(0)
    expect(card.locator("[data-action=refund]")).to_have_count(0)
    expect(page.locator(QUOTA)).to_have_text("20")
    page.reload()  # kept in history, marked refunded
    expect(page.locator(FINAL_CARDS).locator("[data-testid=refunded-badge]")).to_have_text("Refunded")
    expect(page.locator(QUOTA)).to_have_text("20")


def test_stop_keeps_what_was_written_and_refunds_the_rest(page: Page, worker_process, fake_llm):
    sign_up(page, "stop@example.com")
    fake_llm.script(reply("Finished before the stop."), trickle(0.05))
    _submit(page, "x-post", variants=2)
    live = page.locator(".variant.live [data-role=text]")
    expect(live.filter(has_text="Finished before the stop.")).to_have_count(1, timeout=GENERATION_TIMEOUT)
    expect(live.filter(has_text=re.compile(r"\w")).filter(has_not_text="Finished")).to_have_count(1)
    page.click("[data-action=stop]")
    cards = page.locator(FINAL_CARDS)
    expect(cards).to_have_count(1, timeout=GENERATION_TIMEOUT)
    expect(cards.locator("[data-role=text]")).to_have_text("Finished before the stop.")
    expect(page.locator("#results")).to_contain_text("You stopped this generation: 1 of 2 variants were written")
    expect(page.locator(QUOTA)).to_have_text("19")
