"""Upgrading in the browser: Billing → Stripe Checkout (the fake's hosted page) → back to the new plan."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.billing.conftest import billing, fake_stripe  # noqa: F401 - fixtures
from tests.browser.test_journey import sign_up

pytestmark = pytest.mark.browser


def test_upgrade_to_pro_through_checkout(page: Page, billing, live_server):  # noqa: F811
    sign_up(page, "buyer@example.com")
    page.click("nav.mainnav >> text=Team")
    page.click("nav.subnav >> text=Billing")
    expect(page.locator("[data-testid=current-plan] h2")).to_have_text("Your plan: Free")
    form = page.locator("form[data-plan=pro]")
    form.locator("input[name=seats]").fill("2")
    form.locator("button[type=submit]").click()

    # Off to Checkout, hosted by (the fake) Stripe, with our seats.
    expect(page).to_have_url(re.compile(re.escape(billing.base_url) + r"/checkout/cs_test_\w+$"))
    expect(page.locator("[data-testid=checkout-summary]")).to_have_text("price_pro_test x 2")
    page.click("text=Pay")

    # Back on Copydeck: the success page synced at once, no webhook needed.
    expect(page).to_have_url(re.compile(re.escape(live_server) + r"/billing/success\?session_id=cs_test_\w+$"))
    expect(page.locator("[data-testid=billing-success] h1")).to_contain_text("You are on Pro")
    expect(page.locator("[data-testid=billing-success]")).to_contain_text("2 seats × 500 generations")
    page.click("text=Billing")
    expect(page.locator("[data-testid=current-plan] h2")).to_have_text("Your plan: Pro")
    expect(page.locator("[data-testid=quota-remaining]")).to_have_text("500")
