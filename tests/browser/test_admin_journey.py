"""The admin journey in the browser: a site admin writes a template with two fields, watches the
preview follow their typing, test-runs it, publishes it; a marketer (another browser) finds it and
generates with it; the admin rolls back and the marketer gets the earlier version.

Its own module, so it gets its own ``worker_process`` (which also runs the test-run job).
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import User
from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation
from tests.browser.test_journey import FINAL_CARDS, GENERATION_URL, fill_generate_form, no_js_errors, sign_up

pytestmark = pytest.mark.browser


def _make_site_admin(app, address: str) -> None:
    with app.app_context():
        db.session.scalars(select(User).where(User.email == address)).one().is_site_admin = True
        db.session.commit()
        db.session.remove()


def _generated_version(app, generation_id: int) -> int:
    with app.app_context():
        number = db.session.get(Generation, generation_id).template_version.number
        db.session.remove()
        return number


def test_admin_publishes_a_template_a_marketer_uses_then_rolls_back(app, browser, live_server, worker_process,
                                                                    fake_llm):
    admin_ctx = browser.new_context(base_url=live_server)
    marketer_ctx = browser.new_context(base_url=live_server)
    try:
        admin = admin_ctx.new_page()
        admin.js_errors = []
        admin.on("pageerror", lambda exc: admin.js_errors.append(str(exc)))
        sign_up(admin, "editor@example.com")
        _make_site_admin(app, "editor@example.com")

        admin.goto("/templates")
        admin.click("[data-testid=admin-link]")
        expect(admin).to_have_url(re.compile(r"/admin/templates$"))
        admin.click("[data-action=new-template]")

        # Two fields: rename the starter field, then add a second one with the builder.
        admin.fill("#name", "Launch tweet")
        admin.fill("#slug", "launch-tweet")
        admin.select_option("#category", "Social")
        admin.fill("#f0-label", "Product")
        admin.fill("#f0-name", "product")
        admin.fill("#f0-sample", "Juniper mugs")
        admin.click("[data-action=add-field]")
        expect(admin.locator("fieldset.field-row")).to_have_count(2)
        expect(admin.locator("#name")).to_have_value("Launch tweet")  # the builder keeps what was typed
        admin.fill("#f1-label", "Audience")
        admin.fill("#f1-name", "audience")
        admin.fill("#f1-sample", "coffee lovers")
        expect(admin.locator("#variables")).to_contain_text("audience")
        admin.fill("#output-variants", "2")
        admin.fill("#output-max_chars", "280")

        # The preview follows the typing, and shows an error inline with its line.
        user_preview = admin.locator("[data-testid=preview-user_prompt]")
        admin.fill("#user_prompt", "Announce {{ product }}\nto {{ audince }}.")
        expect(admin.locator("[data-testid=preview-user_prompt-error]")).to_have_text(
            "Line 2: unknown variable 'audince'")
        expect(admin.locator("[data-testid=user_prompt-error]")).to_contain_text("Line 2")
        admin.fill("#user_prompt", "Announce {{ product }}\nto {{ audience }}.")
        expect(user_preview).to_have_text("Announce Juniper mugs\nto coffee lovers.")
        admin.fill("#f0-sample", "Sage stoneware")
        expect(user_preview).to_have_text("Announce Sage stoneware\nto coffee lovers.")

        # A test run: the draft goes to the (fake) model; outputs, checks and tokens come back.
        admin.click("[data-action=test-run]")
        expect(admin.locator("[data-testid=test-variant]")).to_have_count(2, timeout=20_000)
        expect(admin.locator("[data-testid=test-variant]").first).to_contain_text("Variant copy for")
        expect(admin.locator("[data-testid=test-variant]").first).to_contain_text("within limit")
        expect(admin.locator("[data-testid=test-run-usage]")).to_contain_text("not charged")

        # Save version 1, publish it.
        admin.fill("#message", "First version")
        admin.click("[data-action=save-template]")
        expect(admin.locator(".flash-success")).to_contain_text("Saved version 1")
        expect(admin.locator("[data-testid=published-version]")).to_have_text("not published")
        admin.click("tr[data-version='1'] [data-action=publish]")
        expect(admin.locator("[data-testid=published-version]")).to_have_text("version 1")

        # Version 2 renames a label and is published on save.
        admin.click("text=Edit (new version)")
        admin.fill("#f0-label", "Product name")
        admin.fill("#message", "Clearer label")
        admin.check("#publish")
        admin.click("[data-action=save-template]")
        expect(admin.locator("[data-testid=published-version]")).to_have_text("version 2")

        # The marketer finds it in the catalogue and generates with it.
        marketer = marketer_ctx.new_page()
        sign_up(marketer, "marketer@example.com")
        marketer.fill("input[name=q]", "launch")
        marketer.locator("#template-grid [data-slug=launch-tweet]").click()
        expect(marketer.locator("label[for=f_product]")).to_have_text("Product name")
        fill_generate_form(marketer, {"f_product": "Juniper mugs", "f_audience": "makers"}, 1)
        marketer.click("#generate-form button[type=submit]")
        expect(marketer).to_have_url(GENERATION_URL)
        expect(marketer.locator(FINAL_CARDS)).to_have_count(1, timeout=20_000)
        first = int(GENERATION_URL.search(marketer.url).group(1))
        assert _generated_version(app, first) == 2

        # The admin rolls back to version 1 ...
        admin.click("tr[data-version='1'] [data-action=rollback]")
        expect(admin.locator(".flash-success")).to_contain_text("Rolled back to version 1")
        expect(admin.locator("[data-testid=published-version]")).to_have_text("version 1")

        # ... and the marketer gets it.
        marketer.goto("/write/launch-tweet")
        expect(marketer.locator("label[for=f_product]")).to_have_text("Product")
        fill_generate_form(marketer, {"f_product": "Juniper mugs", "f_audience": "makers"}, 1)
        marketer.click("#generate-form button[type=submit]")
        expect(marketer.locator(FINAL_CARDS)).to_have_count(1, timeout=20_000)
        second = int(GENERATION_URL.search(marketer.url).group(1))
        assert _generated_version(app, second) == 1
        no_js_errors(admin)
    finally:
        admin_ctx.close()
        marketer_ctx.close()
    with app.app_context():
        assert db.session.scalars(select(Template.source).where(Template.slug == "launch-tweet")).one() == "admin"
        db.session.remove()
