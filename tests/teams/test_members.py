"""Invitations, seats, roles, caps, removal, ownership and deletion."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.auth.models import User
from app.extensions import db
from app.generation.models import Generation
from app.workspaces.models import Invitation, Membership, Workspace
from tests.generation.helpers import submit


def _count(app, model, **where):
    with app.app_context():
        stmt = select(func.count(model.id))
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return db.session.scalar(stmt)


def test_invite_new_user_who_signs_up_on_the_spot(app, team):
    owner = team.client("owner@example.com")
    response = owner.post("/workspace/invitations", data={"email": "New.Person@example.com", "role": "admin"})
    assert response.status_code == 302
    message = team.mails("new.person@example.com")[-1]
    assert "Join" in message["Subject"]
    assert message.get_body(("html",)) is not None
    link = team.invite_link("new.person@example.com")

    guest = app.test_client()
    page = guest.get(link).get_data(as_text=True)
    assert 'value="new.person@example.com" disabled' in page  # email prefilled and fixed
    response = guest.post(link, data={"password": "a-new-password", "confirm": "a-new-password"})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "new.person@example.com")).one()
        membership = db.session.scalars(select(Membership).where(
            Membership.user_id == user.id, Membership.workspace_id == team.workspace_id)).one()
        assert membership.role == "admin"
    # The new member works in the team workspace straight away.
    assert "owner@example.com" in guest.get("/workspace/members").get_data(as_text=True)
    # Single use.
    reused = app.test_client().get(link)
    assert reused.status_code == 410 and "already been used" in reused.get_data(as_text=True)


def test_existing_user_logs_in_then_accepts(app, team, make_user):
    make_user("existing@example.com")
    team.client("owner@example.com").post("/workspace/invitations", data={"email": "existing@example.com", "role": "member"})
    link = team.invite_link("existing@example.com")
    anonymous = app.test_client().get(link).get_data(as_text=True)
    assert "Log in to accept" in anonymous
    them = app.test_client()
    them.post("/login", data={"email": "existing@example.com", "password": "correct-horse-battery"})
    assert them.post(link).status_code == 302
    assert _count(app, Membership, workspace_id=team.workspace_id) == 2


def test_an_invitation_cannot_be_used_by_someone_else(app, team, make_user):
    make_user("other@example.com")
    team.client("owner@example.com").post("/workspace/invitations", data={"email": "right@example.com", "role": "member"})
    link = team.invite_link("right@example.com")
    other = app.test_client()
    other.post("/login", data={"email": "other@example.com", "password": "correct-horse-battery"})
    response = other.post(link)
    assert response.status_code == 409
    assert "for right@example.com" in response.get_data(as_text=True)
    assert _count(app, Membership, workspace_id=team.workspace_id) == 1


def test_bad_invitations_write_nothing(app, team):
    owner = team.client("owner@example.com")
    team.add("member@example.com")
    cases = [
        ({"email": "member@example.com", "role": "member"}, "already a member"),
        ({"email": "x@example.com", "role": "overlord"}, "Not a valid choice"),
        ({"email": "not-an-email", "role": "member"}, "Invalid email"),
    ]
    for data, message in cases:
        response = owner.post("/workspace/invitations", data=data)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), data
    assert _count(app, Invitation) == 0
    for token in ("garbage", "eyJpZCI6IDF9.forged"):
        response = app.test_client().get(f"/invitations/{token}")
        assert response.status_code == 410 and "not valid" in response.get_data(as_text=True)


def test_expired_and_revoked_invitations(app, team):
    owner = team.client("owner@example.com")
    owner.post("/workspace/invitations", data={"email": "late@example.com", "role": "member"})
    owner.post("/workspace/invitations", data={"email": "revoked@example.com", "role": "member"})
    late, revoked = team.invite_link("late@example.com"), team.invite_link("revoked@example.com")
    with app.app_context():
        from datetime import timedelta
        inv = db.session.scalars(select(Invitation).where(Invitation.email == "late@example.com")).one()
        inv.expires_at -= timedelta(days=30)
        db.session.commit()
        revoked_id = db.session.scalars(select(Invitation.id).where(Invitation.email == "revoked@example.com")).one()
    assert "expired" in app.test_client().get(late).get_data(as_text=True)
    owner.post(f"/workspace/invitations/{revoked_id}/revoke")
    assert "revoked" in app.test_client().get(revoked).get_data(as_text=True)


def test_pending_invitations_hold_seats_and_the_way_out_is_shown(app, team):
    owner = team.client("owner@example.com")
    with app.app_context():
        db.session.get(Workspace, team.workspace_id).seats = 3
        db.session.commit()
    assert owner.post("/workspace/invitations", data={"email": "a@example.com", "role": "member"}).status_code == 302
    assert owner.post("/workspace/invitations", data={"email": "b@example.com", "role": "member"}).status_code == 302
    full = owner.post("/workspace/invitations", data={"email": "c@example.com", "role": "member"})
    assert full.status_code == 422
    body = full.get_data(as_text=True)
    assert "All 3 seats are taken" in body and "remove a member" in body
    assert body.count("seats are taken") == 1  # one message, not the box and the form's error as well
    assert "ask your administrator" in body  # billing is off here: no checkout, no CLI command
    assert _count(app, Invitation) == 2
    # Revoking frees the seat.
    with app.app_context():
        invitation_id = db.session.scalars(select(Invitation.id).where(Invitation.email == "a@example.com")).one()
    owner.post(f"/workspace/invitations/{invitation_id}/revoke")
    assert owner.post("/workspace/invitations", data={"email": "c@example.com", "role": "member"}).status_code == 302


def test_parallel_invitations_cannot_overfill_the_seats(app, team):
    """Two admins inviting at once: PostgreSQL under CI (row lock), SQLite locally."""
    team.add("admin1@example.com", "admin")
    team.add("admin2@example.com", "admin")
    with app.app_context():
        db.session.get(Workspace, team.workspace_id).seats = 6  # 3 members: 3 free seats
        db.session.commit()
    clients = [team.client("admin1@example.com"), team.client("admin2@example.com")] * 5
    barrier = threading.Barrier(len(clients), timeout=60)
    statuses, lock = [], threading.Lock()

    def invite(index, client):
        barrier.wait()
        response = client.post("/workspace/invitations", data={"email": f"p{index}@example.com", "role": "member"})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=invite, args=(i, c)) for i, c in enumerate(clients)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert sorted(statuses) == [302] * 3 + [422] * 7
    assert _count(app, Invitation) == 3


def test_roles_caps_and_removal(app, team):
    team.client("owner@example.com")
    team.add("mem@example.com")
    team.add("adm@example.com", "admin")
    member_id, admin_id, owner_id = (team.membership_id(a) for a in ("mem@example.com", "adm@example.com", "owner@example.com"))

    # A member cannot manage; an admin can, but not the owner.
    member = team.client("mem@example.com")
    assert member.post(f"/workspace/members/{admin_id}/remove").status_code == 403
    assert member.post("/workspace/invitations", data={"email": "z@example.com", "role": "member"}).status_code == 403
    admin = team.client("adm@example.com")
    assert admin.post(f"/workspace/members/{owner_id}/remove").status_code == 422
    assert admin.post(f"/workspace/members/{owner_id}/role", data={"role": "member"}).status_code == 422
    assert admin.post(f"/workspace/members/{member_id}/role", data={"role": "owner"}).status_code == 422
    assert admin.post(f"/workspace/members/{member_id}/role", data={"role": "admin"}).status_code == 302
    assert admin.post(f"/workspace/members/{member_id}/role", data={"role": "member"}).status_code == 302

    # Caps: negative and above the seat quota refused, with nothing written.
    for bad, message in (("-1", "cannot be negative"), ("11", "at most 10"), ("ten", "whole number")):
        response = admin.post(f"/workspace/members/{member_id}/cap", data={"cap": bad})
        assert response.status_code == 422 and message in response.get_data(as_text=True), bad
    assert admin.post(f"/workspace/members/{member_id}/cap", data={"cap": "4"}).status_code == 302
    with app.app_context():
        assert db.session.get(Membership, member_id).quota_cap == 4
    assert admin.post(f"/workspace/members/{member_id}/cap", data={"cap": ""}).status_code == 302
    with app.app_context():
        assert db.session.get(Membership, member_id).quota_cap is None

    # Removal frees the seat at once and keeps the member's generations.
    team_generation = submit(member, app, "x-post", 1)
    assert admin.post(f"/workspace/members/{member_id}/remove").status_code == 302
    assert _count(app, Membership, workspace_id=team.workspace_id) == 2
    assert _count(app, Generation, workspace_id=team.workspace_id) == 1
    assert "removed you" in team.mails("mem@example.com")[-1].get_body(("plain",)).get_content()
    # The removed member is back in a workspace of their own: they see none of the team's work.
    assert member.get(f"/generations/{team_generation}").status_code == 404
    history = member.get("/history")
    assert history.status_code == 200
    assert f"/generations/{team_generation}" not in history.get_data(as_text=True)
    assert "Nothing here yet" in history.get_data(as_text=True)


def test_leave_and_transfer_ownership(app, team):
    team.add("heir@example.com")
    owner = team.client("owner@example.com")
    response = owner.post("/workspace/leave", follow_redirects=True)
    assert "Transfer ownership" in response.get_data(as_text=True)
    assert _count(app, Membership, workspace_id=team.workspace_id) == 2
    heir_id = team.membership_id("heir@example.com")
    assert owner.post("/workspace/transfer", data={"membership_id": heir_id}).status_code == 302
    with app.app_context():
        roles = dict(db.session.execute(select(User.email, Membership.role).join(Membership).where(
            Membership.workspace_id == team.workspace_id)).all())
    assert roles == {"owner@example.com": "admin", "heir@example.com": "owner"}
    assert owner.post("/workspace/leave").status_code == 302
    assert _count(app, Membership, workspace_id=team.workspace_id) == 1


def test_delete_workspace_needs_its_name_and_keeps_users(app, team, run_worker):
    owner = team.client("owner@example.com")
    team.add("mem@example.com")
    submit(owner, app, "x-post", 1)
    run_worker()
    assert team.client("mem@example.com").post("/workspace/delete", data={"del-confirm_name": "x"}).status_code == 403
    wrong = owner.post("/workspace/delete", data={"del-confirm_name": "not the name"}, follow_redirects=True)
    assert "Nothing was deleted" in wrong.get_data(as_text=True)
    with app.app_context():
        name = db.session.get(Workspace, team.workspace_id).name
    assert owner.post("/workspace/delete", data={"del-confirm_name": name}).status_code == 302
    with app.app_context():
        assert db.session.get(Workspace, team.workspace_id) is None
        assert db.session.scalar(select(func.count(Generation.id)).where(Generation.workspace_id == team.workspace_id)) == 0
        assert db.session.scalar(select(func.count(User.id))) == 2


def test_switching_workspaces_scopes_everything(app, team, run_worker):
    owner = team.client("owner@example.com")
    team_generation = submit(owner, app, "x-post", 1)
    with app.app_context():
        personal_id = db.session.scalars(select(Membership.workspace_id).join(User).where(
            User.email == "owner@example.com", Membership.workspace_id != team.workspace_id)).first()
    assert personal_id is None  # the fixture's owner only has the team workspace
    owner.post("/workspaces/new", data={"new-name": "Side project"})
    assert f'data-generation-id="{team_generation}"' not in owner.get("/history").get_data(as_text=True)
    assert owner.get(f"/generations/{team_generation}").status_code == 404
    owner.post("/workspaces/switch", data={"workspace_id": team.workspace_id})
    assert f'data-generation-id="{team_generation}"' in owner.get("/history").get_data(as_text=True)
    outsider_workspace = None
    with app.app_context():
        outsider_workspace = db.session.scalars(select(Workspace.id).where(Workspace.id != team.workspace_id,
                                                                         Workspace.name != "Side project")).first()
    if outsider_workspace:
        assert owner.post("/workspaces/switch", data={"workspace_id": outsider_workspace}).status_code == 404


def test_operators_set_seats_from_the_cli(app, team):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["set-seats", str(team.workspace_id), "3", "--generations", "50", "--plan", "pro"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        assert (workspace.seats, workspace.generations_per_seat, workspace.plan) == (3, 50, "pro")
    team.add("a@example.com")
    team.add("b@example.com")
    refused = runner.invoke(args=["set-seats", str(team.workspace_id), "2"])
    assert refused.exit_code != 0 and "need 3 seats" in refused.output
    assert runner.invoke(args=["set-seats", "999999", "2"]).exit_code != 0
    listing = runner.invoke(args=["workspaces"])
    assert "3 seats" in listing.output
