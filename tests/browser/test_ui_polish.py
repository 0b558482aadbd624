"""Issue 14's rough edges, each checked in Chromium: test run result, catalogue search and Back,
examples, the result sidebar, icons with names, Copy all, exports, deleting the last variant."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import User
from app.brand.models import BrandVoice
from app.catalog.models import Template
from app.extensions import db
from app.workspaces import services as teams
from app.workspaces.models import Membership
from tests.browser.test_journey import FINAL_CARDS, GENERATION_TIMEOUT, PASSWORD, log_in

pytestmark = pytest.mark.browser

EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50]")


@pytest.fixture
def owner(app, make_user):
    """A Pro owner (and site admin) with a brand voice; returns (address, workspace id)."""
    user_id = make_user("polish@example.com", PASSWORD)
    with app.app_context():
        db.session.get(User, user_id).is_site_admin = True
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()
        db.session.add(BrandVoice(workspace_id=workspace_id, name="Calm barista", description="Calm and precise."))
        db.session.commit()
        teams.set_seats(workspace_id, 2, generations_per_seat=50, plan="pro")
        db.session.commit()
        db.session.remove()
    return "polish@example.com", workspace_id


def _logged_in(page, owner) -> None:
    log_in(page, owner[0], PASSWORD)
    expect(page).to_have_url(re.compile(r"/templates$"))


@pytest.mark.parametrize("width", [1366, 360])
def test_admin_test_run_shows_its_result_and_keeps_the_preview(app, page, owner, worker_process, fake_llm, width):
    page.set_viewport_size({"width": width, "height": 900})
    _logged_in(page, owner)
    with app.app_context():
        template_id = db.session.scalars(select(Template.id).where(Template.slug == "x-post")).one()
    # The model answers after a while, so the pane has to poll for the result.
    fake_llm.ttft = 1.0
    page.goto(f"/admin/templates/{template_id}/edit")
    expect(page.locator("[data-testid=preview]")).to_be_visible()
    page.click("[data-action=test-run]")
    expect(page.locator("[data-testid=test-run]")).to_have_attribute("data-status", re.compile("queued|started"))
    expect(page.locator("[data-testid=test-variant]")).to_have_count(3, timeout=20_000)
    expect(page.locator("[data-testid=test-run-usage]")).to_contain_text("not charged")
    expect(page.locator("#preview [data-testid=preview]")).to_be_visible()  # the preview pane is still there


@pytest.mark.parametrize("width", [1366, 360])
def test_catalogue_keywords_and_back_restores_the_category(page, owner, width):
    page.set_viewport_size({"width": width, "height": 900})
    _logged_in(page, owner)
    page.fill("input[name=q]", "tweet")
    expect(page.locator(".template-card")).to_have_count(1)
    expect(page.locator(".template-card .name")).to_have_text("X (Twitter) post")
    page.fill("input[name=q]", "cta")
    expect(page.locator(".template-card[data-slug=landing-page-hero]")).to_be_visible()

    page.goto("/templates")
    page.select_option("select[name=category]", "Email")
    expect(page).to_have_url(re.compile(r"category=Email"))
    page.select_option("select[name=category]", "Social")
    expect(page).to_have_url(re.compile(r"category=Social"))
    expect(page.locator(".template-card[data-slug=x-post]")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r"category=Email"))
    expect(page.locator("select[name=category]")).to_have_value("Email")
    expect(page.locator(".template-card[data-slug=x-post]")).to_have_count(0)
    page.go_back()
    expect(page.locator("select[name=category]")).to_have_value("")


@pytest.mark.parametrize("width", [1366, 360])
def test_example_sidebar_icons_copy_all_export_and_delete(page, owner, worker_process, fake_llm, width):
    page.set_viewport_size({"width": width, "height": 900})
    replies = iter(["=SUM(A1) first line", "Second line"])
    fake_llm.default_reply = lambda _request: next(replies, "Spare line")
    _logged_in(page, owner)
    page.goto("/write/x-post")
    page.click("[data-action=fill-example]")
    expect(page.locator("[name=f_topic]")).to_have_value(re.compile("Brewline Mini"))
    expect(page.locator("[name=f_link]")).to_have_value("brewline.example/mini")
    expect(page).to_have_url(re.compile(r"/write/x-post$"))  # filled in place, no reload
    page.select_option("[name=creativity]", "high")
    page.select_option("[name=brand_voice]", label="Calm barista")
    page.fill("[name=variant_count]", "2")
    page.click("#generate-form button[type=submit]")
    expect(page.locator(FINAL_CARDS)).to_have_count(2, timeout=GENERATION_TIMEOUT)

    # The sidebar says what was used.
    expect(page.locator("[data-testid=creativity-used]")).to_have_text("High")
    expect(page.locator("[data-testid=brand-voice-used]")).to_have_text("Calm barista")

    # Icons are SVG, every icon button has a name, and no emoji is used as UI.
    first = page.locator(FINAL_CARDS).first
    for name in ("Good", "Not good", "Copy to clipboard", "Favourite", "Delete"):
        expect(first.get_by_role("button", name=name, exact=True)).to_have_count(1)
    expect(first.locator("svg.icon use")).not_to_have_count(0)
    assert not EMOJI.search(page.locator("body").inner_text())

    # Copy all: both variants, in order.
    page.click("[data-action=copy-all]")
    expect(page.locator("[data-action=copy-all]")).to_contain_text("Copied 2")
    shown = page.locator(f"{FINAL_CARDS} [data-role=text]").all_inner_texts()  # in the page's order
    assert sorted(shown) == ["=SUM(A1) first line", "Second line"]
    assert page.evaluate("navigator.clipboard.readText()") == "\n\n".join(shown)

    # Export: a CSV download, its formula-like cell made text.
    with page.expect_download() as info:
        page.click("[data-export=csv]")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert sorted(r["text"] for r in rows) == ["'=SUM(A1) first line", "Second line"]

    # Deleting the last variant says so at once, no empty column until a reload.
    page.on("dialog", lambda dialog: dialog.accept())
    for _ in range(2):
        page.locator(FINAL_CARDS).first.locator("[data-action=delete]").click()
        expect(page.locator(FINAL_CARDS)).to_have_count(1 if _ == 0 else 0)
    expect(page.locator("[data-testid=all-deleted]")).to_be_visible()


def test_history_selection_exports_markdown(page, owner, worker_process, fake_llm):
    # Markup characters the cleaner keeps (a lone * and _) must reach the Markdown file escaped.
    fake_llm.default_reply = lambda request: "Copy * for_ " + ("A" if "Alpha" in str(request) else "B")
    _logged_in(page, owner)
    for topic in ("Alpha", "Beta", "Gamma"):
        page.goto("/write/x-post")
        page.fill("[name=f_topic]", topic)
        page.fill("[name=variant_count]", "1")
        page.click("#generate-form button[type=submit]")
        expect(page.locator(FINAL_CARDS)).to_have_count(1, timeout=GENERATION_TIMEOUT)
    page.goto("/history")
    items = page.locator(".history-item")
    expect(items).to_have_count(3)
    items.nth(0).locator("input.pick").check()  # Gamma
    items.nth(2).locator("input.pick").check()  # Alpha
    with page.expect_download() as info:
        page.click("[data-testid=history-export] button[value=md]")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.count("## Variant 1") == 2
    assert r"Copy \* for\_ A" in text and r"Copy \* for\_ B" in text
