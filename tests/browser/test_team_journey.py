"""A new team in the browser: invite, accept in a second browser, generate, watch usage, remove."""
from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.workspaces import services as teams
from app.workspaces.models import Membership
from tests.browser.test_journey import FINAL_CARDS, QUOTA, fill_generate_form, headline_replies, sign_up

pytestmark = pytest.mark.browser


def _invitation_link(outbox: Path, address: str) -> str:
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and "Join" in message["Subject"]:
            body = message.get_body(("plain",)).get_content()
            return re.search(r"https?://\S+(/invitations/\S+)", body).group(1)
    raise AssertionError(f"no invitation email for {address}")


def test_owner_invites_member_who_generates_and_is_removed(app, browser, live_server, worker_process,
                                                           base_env, fake_llm):
    fake_llm.default_reply = headline_replies()
    owner_ctx = browser.new_context(base_url=live_server)
    member_ctx = browser.new_context(base_url=live_server)
    try:
        owner = owner_ctx.new_page()
        owner.on("dialog", lambda dialog: dialog.accept())
        sign_up(owner, "lead@example.com")
        with app.app_context():
            workspace_id = db.session.scalars(select(Membership.workspace_id)).one()
            teams.set_seats(workspace_id, 3, generations_per_seat=10, plan="pro")
            db.session.commit()
            db.session.remove()

        owner.click("nav.mainnav >> text=Team")
        expect(owner.locator("[data-testid=seats]")).to_contain_text("1 of 3")
        owner.fill("form[action$='/workspace/invitations'] input[name=email]", "writer@example.com")
        owner.click("form[action$='/workspace/invitations'] button[type=submit]")
        expect(owner.locator(".flash-success")).to_contain_text("Invitation sent to writer@example.com")
        expect(owner.locator("[data-testid=seats]")).to_contain_text("2 of 3")
        expect(owner.locator("[data-invitation='writer@example.com']")).to_be_visible()

        # The member accepts in their own browser, signing up on the spot.
        member = member_ctx.new_page()
        member.goto(_invitation_link(Path(base_env["MAIL_OUTBOX"]), "writer@example.com"))
        expect(member.locator("input#email")).to_have_value("writer@example.com")
        expect(member.locator("input#email")).to_be_disabled()
        member.fill("input[name=password]", "another-good-password")
        member.fill("input[name=confirm]", "another-good-password")
        member.click("[data-action=signup-accept]")
        expect(member).to_have_url(re.compile(r"/templates$"))
        expect(member.locator("#workspace-switch option:checked")).to_have_text("lead's workspace")
        expect(member.locator(QUOTA)).to_have_text("10")

        member.goto("/write/google-ads-headlines")
        fill_generate_form(member, {}, 2)
        member.click("#generate-form button[type=submit]")
        expect(member.locator(FINAL_CARDS)).to_have_count(2, timeout=20_000)
        expect(member.locator(QUOTA)).to_have_text("8")

        # The owner sees the member's usage.
        owner.goto("/workspace/usage")
        expect(owner.locator("[data-testid=usage-members] tr[data-member='writer@example.com'] .variants")).to_have_text("2")
        expect(owner.locator("[data-testid=usage-total]")).to_contain_text("2")
        expect(owner.locator("svg.chart rect.bar")).not_to_have_count(0)

        # Removing the member frees the seat at once; their work stays.
        owner.goto("/workspace/members")
        expect(owner.locator("[data-testid=seats]")).to_contain_text("2 of 3")
        owner.click("tr[data-member='writer@example.com'] [data-action=remove-member]")
        expect(owner.locator(".flash-success")).to_contain_text("writer@example.com was removed")
        expect(owner.locator("[data-testid=seats]")).to_contain_text("1 of 3")
        owner.goto("/history")
        expect(owner.locator(".history-item")).to_have_count(1)

        member.goto("/templates")
        expect(member.locator("#workspace-switch option:checked")).to_have_text("writer's workspace")
        expect(member.locator("#workspace-switch option")).to_have_count(1)
    finally:
        owner_ctx.close()
        member_ctx.close()
