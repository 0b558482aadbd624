"""Knowledge journey in headless Chromium: a Free user sees the upsell; on Pro they add a product fact,
generate with "Let Copydeck choose", and see the fact under "Facts used"; the prompt carried it."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.test_journey import FINAL_CARDS, GENERATION_TIMEOUT, GENERATION_URL, sign_up

pytestmark = pytest.mark.browser


def _upgrade_to_pro(app, address: str) -> None:
    from app.auth.models import User
    from app.extensions import db
    from app.workspaces import services as teams
    from app.workspaces.models import Membership

    with app.app_context():
        user_id = db.session.scalars(select(User.id).where(User.email == address)).one()
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()
        teams.set_seats(workspace_id, 1, generations_per_seat=20, plan="pro")
        db.session.commit()


def test_add_a_product_fact_generate_with_it_and_see_facts_used(page: Page, app, worker_process, fake_llm):
    sign_up(page, "mara@example.com")
    page.click("nav.mainnav >> text=Knowledge")
    expect(page.locator("[data-testid=knowledge-upsell]")).to_contain_text("Pro and Business plans")

    _upgrade_to_pro(app, "mara@example.com")
    page.goto("/knowledge")
    page.click("text=Add an item")
    page.select_option("select[name=kind]", "product")
    page.fill("input[name=title]", "Hydra bottle")
    page.fill("textarea[name=body]", "# Specs\nThe Hydra bottle holds 32 oz and costs $14.99.\n\n"
                                     "# Materials\nDouble-walled recycled steel keeps drinks cold for 24 hours.")
    page.fill("input[name=tags]", "bottles")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("saved as 2 passages")
    expect(page.locator("article.passage")).to_have_count(2)

    page.goto("/write/x-post")
    page.fill("[name=f_topic]", "The Hydra bottle launches today: 32 oz of cold water")
    page.fill("[name=variant_count]", "1")
    expect(page.get_by_label("Let Copydeck choose the relevant facts")).to_be_checked()
    page.click("#generate-form button[type=submit]")
    expect(page).to_have_url(GENERATION_URL)
    expect(page.locator(FINAL_CARDS)).to_have_count(1, timeout=GENERATION_TIMEOUT)

    facts = page.locator("[data-testid=facts-used]")
    expect(facts.locator("h2")).to_have_text("Facts used")
    expect(facts.locator("summary").first).to_have_text(re.compile(r"Hydra bottle › Specs"))
    facts.locator("summary").first.click()
    expect(facts).to_contain_text("costs $14.99")
    prompt = fake_llm.chat_requests[-1]["json"]["messages"][-1]["content"]
    assert "The Hydra bottle holds 32 oz and costs $14.99." in prompt
