"""Issue 14's team messages: an invited sign-up has one workspace; the out-of-quota and billing-off
messages fit who reads them (owner, member, site admin) and never point at a command line."""
from __future__ import annotations

import html

from sqlalchemy import func, select

from app.auth.models import User
from app.extensions import db
from app.workspaces.models import Membership, Workspace
from tests.generation.helpers import form_data


def test_an_invited_sign_up_gets_no_unused_personal_workspace(app, team):
    owner = team.client("owner@example.com")
    owner.post("/workspace/invitations", data={"email": "joiner@example.com", "role": "member"})
    guest = app.test_client()
    response = guest.post(team.invite_link("joiner@example.com"),
                          data={"password": "a-new-password", "confirm": "a-new-password"})
    assert response.status_code == 302
    with app.app_context():
        user_id = db.session.scalars(select(User.id).where(User.email == "joiner@example.com")).one()
        workspaces = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).all()
        assert workspaces == [team.workspace_id]
    assert guest.get("/templates").status_code == 200


def test_an_ordinary_sign_up_still_gets_its_personal_workspace(app, make_user):
    user_id = make_user("solo@example.com")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == user_id)) == 1


def _exhaust(app, team, client) -> str:
    with app.app_context():
        db.session.get(Workspace, team.workspace_id).generations_per_seat = 1
        db.session.commit()
    assert client.post("/write/x-post", data=form_data(app, "x-post", 1)).status_code == 302
    refused = client.post("/write/x-post", data=form_data(app, "x-post", 1))
    assert refused.status_code == 402
    return refused.get_data(as_text=True)


def test_out_of_quota_owner_is_told_where_seats_come_from(app, team):
    body = _exhaust(app, team, team.client("owner@example.com"))
    assert "no generations left" in body and "ask your administrator" in body
    assert "a workspace owner can add seats" not in body


def test_out_of_quota_member_is_told_to_ask_the_owner(app, team):
    team.add("writer@example.com")
    body = _exhaust(app, team, team.client("writer@example.com"))
    assert "no generations left" in body and "Ask the workspace owner" in body


def test_billing_off_free_owner_does_not_dead_end(app, make_user):
    make_user("free@example.com")
    client = app.test_client()
    client.post("/login", data={"email": "free@example.com", "password": "correct-horse-battery"})
    for page in (client.get("/brand-voices").get_data(as_text=True), client.get("/billing").get_data(as_text=True)):
        assert "ask your administrator" in page and "flask billing" not in page


def test_billing_off_site_admin_is_pointed_at_the_admin_console(app, make_user):
    user_id = make_user("root@example.com")
    with app.app_context():
        db.session.get(User, user_id).is_site_admin = True
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()
        db.session.commit()
    client = app.test_client()
    client.post("/login", data={"email": "root@example.com", "password": "correct-horse-battery"})
    page = client.get("/billing").get_data(as_text=True)
    assert 'data-testid="admin-hint"' in page and f"/admin/workspaces/{workspace_id}" in page


def test_an_invited_member_who_is_removed_gets_a_workspace_of_their_own(app, team):
    team.client("owner@example.com").post("/workspace/invitations", data={"email": "brief@example.com", "role": "member"})
    guest = app.test_client()
    guest.post(team.invite_link("brief@example.com"), data={"password": "a-new-password", "confirm": "a-new-password"})
    removed = team.client("owner@example.com").post(f"/workspace/members/{team.membership_id('brief@example.com')}/remove")
    assert removed.status_code == 302
    with app.app_context():
        user_id = db.session.scalars(select(User.id).where(User.email == "brief@example.com")).one()
        workspaces = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).all()
        assert len(workspaces) == 1 and workspaces[0] != team.workspace_id
    assert "brief's workspace" in html.unescape(guest.get("/templates").get_data(as_text=True))
