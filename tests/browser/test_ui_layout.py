"""Every main page at 1366 px and 360 px: no horizontal scrolling, and axe-core finds nothing serious.

One signed-up owner (also a site admin) with a generation whose output is a 1,200-character
unbroken string: the pages that show it (result, history) must still fit the window. axe-core
is vendored (tests/browser/vendor/, pinned, with its licence) and evaluated in the page through
the DevTools protocol, which the page's Content-Security-Policy does not apply to.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.workspaces import services as teams
from app.workspaces.models import Membership
from tests.browser.test_journey import FINAL_CARDS, GENERATION_TIMEOUT, PASSWORD, log_in

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parent / "vendor" / "axe-4.14.1.min.js").read_text(encoding="utf-8")
WIDTHS = {"desktop": 1366, "phone": 360}
LONG_WORD = "https://example.com/" + "x" * 1180
LONG_EMAIL = "a.very.long.address.for.the.marketing.team@department.example.com"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.id + " (" + v.impact + "): " + v.help + " -> "
         + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}"""
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > width + 1)
    .slice(0, 5).map(el => el.tagName.toLowerCase() + "." + el.className);
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, wide: wide};
}"""


def check_page(page, path: str, label: str) -> list[str]:
    """Visit `path`; the problems found: horizontal overflow and serious/critical axe violations."""
    page.goto(path)
    page.wait_for_load_state("load")
    problems = []
    fit = page.evaluate(OVERFLOW)
    if fit["scroll"] > fit["inner"]:
        problems.append(f"{label} {path}: {fit['scroll']} px wide in a {fit['inner']} px window ({fit['wide']})")
    page.evaluate(AXE + "\n;undefined")
    problems += [f"{label} {path}: {v}" for v in page.evaluate(RUN_AXE)]
    return problems


@pytest.fixture
def owner_with_long_result(app, browser, live_server, make_user, worker_process, fake_llm):
    """An owner (site admin too) whose workspace has one generation of a 1,200-character word."""
    user_id = make_user("wide@example.com", PASSWORD)
    teammate_id = make_user(LONG_EMAIL, PASSWORD)
    with app.app_context():
        db.session.get(User, user_id).is_site_admin = True
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()
        db.session.commit()
        teams.set_seats(workspace_id, 3, generations_per_seat=20, plan="pro")
        db.session.commit()
        # A teammate with a long address and a pending invitation: the team and usage tables have rows,
        # and every seat is taken (the members page shows its one "seats taken" message).
        owner = db.session.get(User, user_id)
        db.session.add(Membership(workspace_id=workspace_id, role="member", user_id=teammate_id))
        db.session.commit()
        teams.invite(workspace_id, owner, "pending.person.with.a.long.address@example.com", "member")
        db.session.commit()
        db.session.remove()
    fake_llm.default_reply = lambda _request: LONG_WORD
    context = browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    log_in(page, "wide@example.com", PASSWORD)
    expect(page).to_have_url(re.compile(r"/templates$"))
    page.goto("/write/expand-text")
    for field in page.locator("#generate-form [name^=f_]").all():
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(index=1)
        else:
            field.fill(LONG_WORD[:100])
    page.fill("#generate-form [name=variant_count]", "1")
    page.click("#generate-form button[type=submit]")
    expect(page.locator(FINAL_CARDS)).to_have_count(1, timeout=GENERATION_TIMEOUT)
    generation_url = page.url
    yield context, generation_url
    context.close()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_main_pages_fit_and_pass_axe(owner_with_long_result, browser, live_server, width):
    context, generation_url = owner_with_long_result
    page = context.new_page()
    page.set_viewport_size({"width": WIDTHS[width], "height": 800})
    problems = []
    for path in ("/templates", "/write/x-post", generation_url, "/history", "/workspace/members",
                 "/workspace/usage", "/billing", "/brand-voices", "/projects", "/admin/templates", "/admin"):
        problems += check_page(page, path, width)
    anonymous = browser.new_context(base_url=live_server, viewport={"width": WIDTHS[width], "height": 800})
    try:
        visitor = anonymous.new_page()
        for path in ("/", "/login", "/signup"):
            problems += check_page(visitor, path, width)
    finally:
        anonymous.close()
    assert not problems, "\n".join(problems)


def test_phone_header_is_compact_and_log_out_is_reachable(owner_with_long_result):
    context, _ = owner_with_long_result
    page = context.new_page()
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/templates")
    header = page.locator("header.topbar").bounding_box()
    assert header["height"] <= 740 * 0.25, header  # it took 35% of a phone's screen
    log_out = page.locator("header form button:has-text('Log out')")
    expect(log_out).to_be_in_viewport(ratio=1)
    page.goto("/workspace/members")
    expect(page.locator("[data-testid=seats-full]")).to_have_count(1)
    expect(page.locator("form[action$='/workspace/invitations']")).to_have_count(0)
    expect(page.locator("tr[data-member='%s']" % LONG_EMAIL)).to_be_visible()
    log_out.click()
    expect(page).to_have_url(re.compile(r"/(login)?$"))
