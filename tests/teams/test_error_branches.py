"""The refusals of inviting, accepting, resending, revoking, removing, sizing and transferring: each a clear
message, nothing written."""
from __future__ import annotations

from datetime import timedelta

import pytest
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


def test_inviting_twice_resending_to_a_full_workspace_and_revoking_an_accepted_invitation_are_refused(app, team):
    owner = team.client("owner@example.com")
    owner.post("/workspace/invitations", data={"email": "once@example.com", "role": "member"})
    again = owner.post("/workspace/invitations", data={"email": "Once@example.com", "role": "admin"})
    assert again.status_code == 422 and "once@example.com already has a pending invitation" in again.get_data(
        as_text=True)
    assert len(team.mails("once@example.com")) == 1

    # An expired invitation holds no seat; resending it needs one, and the owner sized the team to 1 meanwhile.
    invitation_id = _invitation_id(app, "once@example.com")
    with app.app_context():
        invitation = db.session.get(Invitation, invitation_id)
        invitation.expires_at -= timedelta(days=30)
        invitation.last_sent_at -= timedelta(days=30)
        db.session.get(Workspace, team.workspace_id).seats = 1
        db.session.commit()
    full = owner.post(f"/workspace/invitations/{invitation_id}/resend", follow_redirects=True)
    assert "All 1 seat is taken" in full.get_data(as_text=True)
    assert len(team.mails("once@example.com")) == 1
    with app.app_context():
        assert not db.session.get(Invitation, invitation_id).is_pending()

    with app.app_context():
        db.session.get(Workspace, team.workspace_id).seats = 5
        db.session.commit()
    owner.post("/workspace/invitations", data={"email": "joined@example.com", "role": "member"})
    link = team.invite_link("joined@example.com")
    team.make_user("joined@example.com")
    assert team.client("joined@example.com").post(link).status_code == 302
    joined_id = _invitation_id(app, "joined@example.com")
    revoked = owner.post(f"/workspace/invitations/{joined_id}/revoke", follow_redirects=True)
    assert "already accepted; remove the member instead" in revoked.get_data(as_text=True)
    assert _members(app, team.workspace_id) == 2
    with app.app_context():
        assert db.session.get(Invitation, joined_id).revoked_at is None


def test_an_invitation_revoked_while_its_page_was_open_cannot_be_accepted(app, team, make_user):
    from app.auth.models import User
    from app.workspaces import services as teams

    team.client("owner@example.com").post("/workspace/invitations", data={"email": "slow@example.com",
                                                                           "role": "member"})
    link = team.invite_link("slow@example.com")
    user_id = make_user("slow@example.com")
    invitation_id = _invitation_id(app, "slow@example.com")
    with app.app_context():
        invitation = teams.invitation_for_token(link.rsplit("/", 1)[1])  # the page checked the link...
        db.session.commit()  # (SQLite's write lock would keep the admin's request out until this one ends)
        with db.engine.begin() as other:  # ...then an admin revoked it, in another request
            other.execute(Invitation.__table__.update().where(Invitation.id == invitation_id)
                          .values(revoked_at=teams.utcnow()))
        with pytest.raises(teams.TeamError, match="This invitation is no longer valid."):
            teams.accept(invitation, db.session.get(User, user_id))
        db.session.rollback()
    assert _members(app, team.workspace_id) == 1


def test_the_link_of_an_invitation_whose_workspace_was_deleted_says_it_no_longer_exists(app, team):
    owner = team.client("owner@example.com")
    owner.post("/workspace/invitations", data={"email": "gone@example.com", "role": "member"})
    link = team.invite_link("gone@example.com")
    with app.app_context():
        name = db.session.get(Workspace, team.workspace_id).name
    assert owner.post("/workspace/delete", data={"del-confirm_name": name}).status_code == 302
    response = app.test_client().get(link)
    assert response.status_code == 410
    assert "This invitation no longer exists. Ask for a new invitation." in response.get_data(as_text=True)


def test_an_admin_cannot_remove_themself_from_the_members_page(app, team):
    team.add("adm@example.com", "admin")
    admin = team.client("adm@example.com")
    response = admin.post(f"/workspace/members/{team.membership_id('adm@example.com')}/remove")
    assert response.status_code == 422 and "Use &#39;Leave workspace&#39; to remove yourself." in response.get_data(
        as_text=True)
    assert _members(app, team.workspace_id) == 2


def test_an_owner_left_without_any_workspace_is_offered_a_new_one(app, team):
    owner = team.client("owner@example.com")
    with app.app_context():
        name = db.session.get(Workspace, team.workspace_id).name
    assert owner.post("/workspace/delete", data={"del-confirm_name": name}).status_code == 302
    page = owner.get("/workspace/members")
    assert page.status_code == 403
    assert "You do not belong to any workspace right now" in page.get_data(as_text=True)
    assert owner.post("/workspaces/new", data={"new-name": "Fresh start"}).status_code == 302
    assert "Fresh start" in owner.get("/workspace/members").get_data(as_text=True)


def test_operators_cannot_size_a_workspace_to_no_seat_or_negative_generations(app, team):
    runner = app.test_cli_runner()
    no_seat = runner.invoke(args=["set-seats", str(team.workspace_id), "0"])
    assert no_seat.exit_code != 0 and "A workspace has at least one seat." in no_seat.output
    negative = runner.invoke(args=["set-seats", str(team.workspace_id), "3", "--generations", "-1"])
    assert negative.exit_code != 0 and "Generations per seat cannot be negative." in negative.output
    with app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        assert (workspace.seats, workspace.generations_per_seat) == (5, 10)  # the 3 seats were not kept either


def test_rules_the_pages_enforce_first_still_hold_in_the_service(app, team):
    """Forms and role decorators refuse these before the service is called; any other caller meets the
    service's own rule, with its message, and nothing is written."""
    from app.auth.models import User
    from app.workspaces import services as teams

    team.add("mem@example.com")
    team.add("adm@example.com", "admin")
    ids = {address: team.membership_id(address) for address in ("owner@example.com", "mem@example.com",
                                                                 "adm@example.com")}
    with app.app_context():
        owner, member, admin = (db.session.get(Membership, ids[a]) for a in ids)
        workspace = db.session.get(Workspace, team.workspace_id)
        name = workspace.name
        refusals = [
            (lambda: teams.rename(workspace, "   "), "The workspace needs a name."),
            (lambda: teams.set_quota_mode(workspace, "everyone"), "Choose per-seat or pooled quotas."),
            (lambda: teams.invite(workspace.id, db.session.get(User, owner.user_id), "new@example.com", "owner"),
             "Choose a role: admin or member."),
            (lambda: teams.change_role(admin, member, "owner"), "Use 'Transfer ownership' to make someone the owner."),
            (lambda: teams.change_role(admin, member, "overlord"), "Choose a role: admin or member."),
            (lambda: teams.change_role(member, admin, "member"), "Only the owner and admins can manage members."),
            (lambda: teams.set_cap(member, admin, 1), "Only the owner and admins can set caps."),
            (lambda: teams.transfer_ownership(admin, member), "Only the owner can transfer ownership."),
            (lambda: teams.transfer_ownership(owner, owner), "Choose another member of this workspace."),
        ]
        for refused, message in refusals:
            with pytest.raises(teams.TeamError) as caught:
                refused()
            assert str(caught.value) == message
        db.session.rollback()
    with app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        assert (workspace.name, workspace.quota_mode) == (name, "per_seat")
        roles = {m.id: (m.role, m.quota_cap) for m in db.session.scalars(select(Membership).where(
            Membership.workspace_id == team.workspace_id))}
        assert roles == {ids["owner@example.com"]: ("owner", None), ids["mem@example.com"]: ("member", None),
                         ids["adm@example.com"]: ("admin", None)}
        assert db.session.scalar(select(func.count()).select_from(Invitation)) == 0
