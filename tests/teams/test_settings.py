"""Workspace settings: the owner renames the workspace and chooses per-seat or pooled quotas, and the
cap a member can be given follows that choice."""
from __future__ import annotations

import html

from app.extensions import db
from app.workspaces.models import Membership, Workspace


def _workspace(app, workspace_id: int) -> tuple[str, str]:
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        return workspace.name, workspace.quota_mode


def test_the_owner_renames_the_workspace(app, team):
    owner = team.client("owner@example.com")
    before = _workspace(app, team.workspace_id)[0]
    blank = owner.post("/workspace/settings", data={"ws-name": ""})
    assert blank.status_code == 422 and "This field is required." in blank.get_data(as_text=True)
    assert _workspace(app, team.workspace_id)[0] == before
    saved = owner.post("/workspace/settings", data={"ws-name": "  Acme copy desk  "}, follow_redirects=True)
    page = saved.get_data(as_text=True)
    assert "Saved." in page and "<h1>Acme copy desk</h1>" in page
    assert _workspace(app, team.workspace_id)[0] == "Acme copy desk"


def test_a_pooled_workspace_lets_a_member_be_capped_up_to_the_pool(app, team):
    owner = team.client("owner@example.com")
    team.add("mem@example.com")
    member_id = team.membership_id("mem@example.com")
    per_seat = owner.post(f"/workspace/members/{member_id}/cap", data={"cap": "30"})
    assert per_seat.status_code == 422
    assert "A cap can be at most 10 (the seat quota)" in html.unescape(per_seat.get_data(as_text=True))

    assert owner.post("/workspace/settings", data={"quota-quota_mode": "pooled"}).status_code == 302
    assert _workspace(app, team.workspace_id)[1] == "pooled"
    members = owner.get("/workspace/members").get_data(as_text=True)
    assert 'max="50"' in members and 'max="10"' not in members  # 5 seats x 10, shared
    over = owner.post(f"/workspace/members/{member_id}/cap", data={"cap": "51"})
    assert over.status_code == 422 and "A cap can be at most 50 (the pool)" in over.get_data(as_text=True)
    assert owner.post(f"/workspace/members/{member_id}/cap", data={"cap": "30"}).status_code == 302
    with app.app_context():
        assert db.session.get(Membership, member_id).quota_cap == 30

