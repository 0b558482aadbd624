"""The refusals of accepting, resending and transferring: each a clear message, nothing written."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.workspaces.models import Invitation, Membership, Workspace


def _members(app, workspace_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.workspace_id == workspace_id))


def _invitation_id(app, address: str) -> int:
    with app.app_context():
        return db.session.scalars(select(Invitation.id).where(Invitation.email == address)).one()


def test_accepting_when_already_a_member_is_refused(app, team):
    owner = team.client("owner@example.com")
    owner.post("/workspace/invitations", data={"email": "twice@example.com", "role": "member"})
    link = team.invite_link("twice@example.com")
    team.add("twice@example.com")  # joined another way meanwhile
    response = team.client("twice@example.com").post(link)
    assert response.status_code == 409 and "already a member" in response.get_data(as_text=True)
    assert _members(app, team.workspace_id) == 2


def test_accepting_when_the_seats_were_taken_meanwhile_is_refused(app, team, make_user):
    owner = team.client("owner@example.com")
    owner.post("/workspace/invitations", data={"email": "seat@example.com", "role": "member"})
    link = team.invite_link("seat@example.com")
    with app.app_context():
        db.session.get(Workspace, team.workspace_id).seats = 1  # the owner reduced the seats
        db.session.commit()
    make_user("seat@example.com")
    them = app.test_client()
    them.post("/login", data={"email": "seat@example.com", "password": "correct-horse-battery"})
    response = them.post(link)
    assert response.status_code == 409 and "no free seat" in response.get_data(as_text=True)
    assert _members(app, team.workspace_id) == 1


def test_resend_refuses_answered_and_just_sent_invitations(app, team):
    owner = team.client("owner@example.com")
    owner.post("/workspace/invitations", data={"email": "again@example.com", "role": "member"})
    invitation_id = _invitation_id(app, "again@example.com")
    too_soon = owner.post(f"/workspace/invitations/{invitation_id}/resend", follow_redirects=True)
    assert "Wait a minute" in too_soon.get_data(as_text=True)
    assert len(team.mails("again@example.com")) == 1
    with app.app_context():
        invitation = db.session.get(Invitation, invitation_id)
        invitation.last_sent_at -= timedelta(minutes=2)  # sent two minutes ago
        db.session.commit()
    sent = owner.post(f"/workspace/invitations/{invitation_id}/resend", follow_redirects=True)
    assert "Invitation sent again" in sent.get_data(as_text=True)
    assert len(team.mails("again@example.com")) == 2
    owner.post(f"/workspace/invitations/{invitation_id}/revoke")
    revoked = owner.post(f"/workspace/invitations/{invitation_id}/resend", follow_redirects=True)
    assert "Only pending invitations" in revoked.get_data(as_text=True)
    assert len(team.mails("again@example.com")) == 2


def test_transfer_refuses_a_choice_outside_the_workspace(app, team, make_user):
    owner = team.client("owner@example.com")
    stranger_id = make_user("elsewhere@example.com")
    with app.app_context():
        foreign = db.session.scalars(select(Membership.id).where(Membership.user_id == stranger_id)).one()
    for choice in (str(foreign), "", "not-a-number"):
        response = owner.post("/workspace/transfer", data={"membership_id": choice})
        assert response.status_code == 422 and "Choose a member" in response.get_data(as_text=True), choice
    with app.app_context():
        roles = dict(db.session.execute(select(Membership.user_id, Membership.role).where(
            Membership.workspace_id == team.workspace_id)).all())
    assert list(roles.values()) == ["owner"]
