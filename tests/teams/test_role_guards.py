"""Owners are protected from admins, and who may see whose usage is one rule everywhere."""
from __future__ import annotations

import re

from app.extensions import db
from app.workspaces.models import Membership
from tests.generation.helpers import submit


def _row(page: str, address: str) -> str:
    return re.search(rf'<tr data-member="{re.escape(address)}">(.*?)</tr>', page, re.S).group(1)


def test_an_admin_cannot_cap_the_owner(app, team):
    team.add("adm@example.com", "admin")
    admin, owner = team.client("adm@example.com"), team.client("owner@example.com")
    owner_id = team.membership_id("owner@example.com")
    response = admin.post(f"/workspace/members/{owner_id}/cap", data={"cap": "0"})
    assert response.status_code == 422
    assert "Only the owner can cap the owner" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Membership, owner_id).quota_cap is None
    submit(owner, app, "x-post", 1)  # the owner still generates
    # The admin's page offers no cap form on the owner's row; the owner's own page does.
    assert 'aria-label="Cap for owner@example.com"' not in admin.get("/workspace/members").get_data(as_text=True)
    assert 'aria-label="Cap for owner@example.com"' in owner.get("/workspace/members").get_data(as_text=True)
    # The owner may still cap admins, and themself.
    admin_id = team.membership_id("adm@example.com")
    assert owner.post(f"/workspace/members/{admin_id}/cap", data={"cap": "3"}).status_code == 302
    assert owner.post(f"/workspace/members/{owner_id}/cap", data={"cap": "7"}).status_code == 302
    with app.app_context():
        assert db.session.get(Membership, admin_id).quota_cap == 3
        assert db.session.get(Membership, owner_id).quota_cap == 7


def test_members_see_only_their_own_usage_on_the_members_page_as_on_the_usage_page(app, team, run_worker):
    team.add("a@example.com")
    team.add("b@example.com")
    owner, member = team.client("owner@example.com"), team.client("a@example.com")
    submit(owner, app, "x-post", 2)
    submit(team.client("b@example.com"), app, "x-post", 3)
    submit(member, app, "x-post", 1)
    run_worker()
    team_page = member.get("/workspace/members").get_data(as_text=True)
    assert "1 · 9 left" in _row(team_page, "a@example.com")
    for other in ("owner@example.com", "b@example.com"):
        row = _row(team_page, other)  # still listed, with role, but no usage, remaining or cap
        assert "left" not in row and 'data-testid="member-usage"' not in row, other
    usage_page = member.get("/workspace/usage").get_data(as_text=True)
    assert 'data-member="owner@example.com"' not in usage_page and 'data-member="b@example.com"' not in usage_page
    # Managers see everyone on both pages.
    managed = owner.get("/workspace/members").get_data(as_text=True)
    assert "2 · 8 left" in _row(managed, "owner@example.com") and "3 · 7 left" in _row(managed, "b@example.com")
    assert 'data-member="b@example.com"' in owner.get("/workspace/usage").get_data(as_text=True)
