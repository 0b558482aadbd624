"""Workspace rules: membership, roles, seats, invitations, ownership.

Every rule that a request could break under concurrency (seats, the owner)
runs with the workspace row locked (SELECT ... FOR UPDATE on PostgreSQL; on
SQLite every transaction already holds the write lock, see app/db_setup.py).
Functions raise TeamError with a message for the user and write nothing; they never commit:
the request (or the CLI command) that calls them commits its unit of work.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol, TypeVar

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, select
from sqlalchemy.orm import joinedload

from app.auth.models import User

from app.core import NotFound, utcnow
from app.extensions import db
from app.workspaces.models import INVITABLE_ROLES, QUOTA_MODES, ROLES, Invitation, Membership, Workspace

class _WorkspaceRow(Protocol):
    workspace_id: Any


M = TypeVar("M", bound=_WorkspaceRow)


class TeamError(Exception):
    """A team rule was broken; the message says what to do instead."""


# --- workspaces ----------------------------------------------------------------

def create_workspace(user: User, name: str, *, free_allowance: bool = False) -> Workspace:
    """A new team on the Free plan, owned by its creator (caller commits).

    Only the personal workspace made at sign-up carries the Free allowance; any
    other starts with no Free generations until it is on a paid plan.
    """
    workspace = Workspace(name=name.strip()[:120] or "My workspace", plan="free", seats=1,
                          generations_per_seat=current_app.config["FREE_MONTHLY_GENERATIONS"],
                          free_allowance=free_allowance)
    db.session.add(workspace)
    db.session.add(Membership(workspace=workspace, user=user, role="owner"))
    return workspace


def create_personal_workspace(user: User) -> Workspace:
    """Give a new user their own workspace on the Free plan (caller commits)."""
    return create_workspace(user, f"{user.email.split('@')[0]}'s workspace", free_allowance=True)


def lock(workspace_id: int) -> Workspace:
    """Load the workspace with its row locked until the transaction ends."""
    workspace = db.session.scalars(
        select(Workspace).where(Workspace.id == workspace_id).with_for_update().execution_options(populate_existing=True)
    ).one()
    return workspace


def memberships_of(user: User) -> list[Membership]:
    return list(db.session.scalars(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.id)
        .options(joinedload(Membership.workspace))  # the header's switcher names every workspace
    ))


def current_membership(user: User, wanted_workspace_id: int | None,
                       memberships: list[Membership] | None = None) -> Membership | None:
    """The membership of the workspace the user asked to work in, else their first one (None if they
    have none). Pass the user's memberships if already loaded."""
    memberships = memberships_of(user) if memberships is None else memberships
    if not memberships:
        return None
    for membership in memberships:
        if membership.workspace_id == wanted_workspace_id:
            return membership
    return memberships[0]


def membership_of(user: User, workspace_id: int) -> Membership:
    """The user's membership of this workspace; NotFound if they are not a member."""
    membership = db.session.scalars(select(Membership).where(
        Membership.user_id == user.id, Membership.workspace_id == workspace_id)).first()
    if membership is None:
        raise NotFound(f"workspace {workspace_id}")
    return membership


def get_in_workspace_or_404(model: type[M], object_id: int, workspace_id: int) -> M:
    """Load a row of workspace data by id; another workspace's id is a 404."""
    obj = db.session.get(model, object_id)
    if obj is None or obj.workspace_id != workspace_id:
        raise NotFound(f"{model.__name__} {object_id}")
    return obj


def variant_in_workspace_or_404(variant_id: int, workspace_id: int):
    """A variant, through its generation's workspace; another workspace's is a 404."""
    from app.generation.models import Variant

    variant = db.session.get(Variant, variant_id)
    if variant is None or variant.generation.workspace_id != workspace_id:
        raise NotFound(f"variant {variant_id}")
    return variant


def membership_in(workspace: Workspace, membership_id: int) -> Membership:
    return get_in_workspace_or_404(Membership, membership_id, workspace.id)


def rename(workspace: Workspace, name: str) -> None:
    name = name.strip()
    if not name:
        raise TeamError("The workspace needs a name.")
    workspace.name = name[:120]


def set_quota_mode(workspace: Workspace, mode: str) -> None:
    if mode not in QUOTA_MODES:
        raise TeamError("Choose per-seat or pooled quotas.")
    workspace.quota_mode = mode


def delete_workspace(workspace: Workspace, typed_name: str) -> None:
    """Delete the workspace and all its data; its users remain."""
    if typed_name.strip() != workspace.name:
        raise TeamError("Type the workspace's name exactly to confirm. Nothing was deleted.")
    db.session.execute(delete(Workspace).where(Workspace.id == workspace.id))


# --- seats -----------------------------------------------------------------------

def seat_usage(workspace: Workspace) -> tuple[int, int]:
    """(members, pending invitations): together they occupy the seats."""
    members = db.session.scalar(select(func.count(Membership.id)).where(Membership.workspace_id == workspace.id))
    pending = db.session.scalar(select(func.count(Invitation.id)).where(
        Invitation.workspace_id == workspace.id, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow()))
    return members or 0, pending or 0  # COUNT always answers; `or 0` tells mypy so


def seats_free(workspace: Workspace) -> int:
    members, pending = seat_usage(workspace)
    return workspace.seats - members - pending


def _no_seat_message(workspace: Workspace) -> str:
    return (f"All {workspace.seats} seat{'s are' if workspace.seats != 1 else ' is'} taken (members and pending "
            "invitations). Add seats to your plan, revoke a pending invitation, or remove a member first.")


def set_seats(workspace_id: int, seats: int, generations_per_seat: int | None = None,
              plan: str | None = None, force: bool = False) -> Workspace:
    """Operators' way to size a workspace (until billing does it); the caller commits, so the admin
    console writes its audit entry in the same transaction."""
    workspace = lock(workspace_id)
    if seats < 1:
        raise TeamError("A workspace has at least one seat.")
    members, pending = seat_usage(workspace)
    if seats < members + pending and not force:
        raise TeamError(f"{members} members and {pending} pending invitations need {members + pending} seats.")
    workspace.seats = seats
    if generations_per_seat is not None:
        if generations_per_seat < 0:
            raise TeamError("Generations per seat cannot be negative.")
        workspace.generations_per_seat = generations_per_seat
    if plan:
        workspace.plan = plan
    return workspace


# --- invitations ------------------------------------------------------------------

def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="copydeck.invitation")


def invitation_token(invitation: Invitation) -> str:
    return _serializer().dumps({"id": invitation.id, "email": invitation.email})


def invitation_for_token(token: str) -> Invitation:
    """The pending invitation behind a link, or TeamError saying why not."""
    try:
        data = _serializer().loads(token)
    except BadSignature as exc:
        raise TeamError("This invitation link is not valid. Ask for a new invitation.") from exc
    invitation = db.session.get(Invitation, data.get("id")) if isinstance(data, dict) else None
    if invitation is None or invitation.email != data.get("email"):
        raise TeamError("This invitation no longer exists. Ask for a new invitation.")
    if invitation.accepted_at is not None:
        raise TeamError("This invitation has already been used.")
    if invitation.revoked_at is not None:
        raise TeamError("This invitation was revoked. Ask the workspace's admins for a new one.")
    if invitation.expires_at <= utcnow():
        raise TeamError("This invitation has expired. Ask the workspace's admins to resend it.")
    return invitation


def _expiry():
    return utcnow() + timedelta(days=current_app.config["INVITATION_DAYS"])


def invite(workspace_id: int, inviter: User, email: str, role: str) -> Invitation:
    """Invite someone by email with a role; a pending invitation holds a seat."""
    email = email.strip().lower()
    if role not in INVITABLE_ROLES:
        raise TeamError("Choose a role: admin or member.")
    workspace = lock(workspace_id)
    existing_member = db.session.scalar(select(Membership.id).join(User, User.id == Membership.user_id).where(
        Membership.workspace_id == workspace.id, func.lower(User.email) == email))
    if existing_member:
        raise TeamError(f"{email} is already a member of this workspace.")
    pending = db.session.scalars(select(Invitation).where(
        Invitation.workspace_id == workspace.id, Invitation.email == email,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow())).first()
    if pending:
        raise TeamError(f"{email} already has a pending invitation. Resend it instead.")
    if seats_free(workspace) < 1:
        raise TeamError(_no_seat_message(workspace))
    invitation = Invitation(workspace_id=workspace.id, email=email, role=role, invited_by_id=inviter.id,
                            expires_at=_expiry(), last_sent_at=utcnow())
    db.session.add(invitation)
    db.session.flush()  # the link the caller mails carries its id
    return invitation


def resend(invitation: Invitation) -> None:
    """Send the link again and restart its validity."""
    if invitation.accepted_at or invitation.revoked_at:
        raise TeamError("Only pending invitations can be resent.")
    if (utcnow() - invitation.last_sent_at).total_seconds() < 60:
        raise TeamError("This invitation was just sent. Wait a minute before resending it.")
    workspace = lock(invitation.workspace_id)
    if invitation.expires_at <= utcnow() and seats_free(workspace) < 1:
        raise TeamError(_no_seat_message(workspace))
    invitation.expires_at = _expiry()
    invitation.last_sent_at = utcnow()


def revoke(invitation: Invitation) -> None:
    if invitation.accepted_at:
        raise TeamError("This invitation was already accepted; remove the member instead.")
    invitation.revoked_at = invitation.revoked_at or utcnow()


def accept(invitation: Invitation, user: User) -> Membership:
    """Join the workspace with the invited role: only as the invited email."""
    if user.email.lower() != invitation.email.lower():
        raise TeamError(f"This invitation is for {invitation.email}. Log in with that address to accept it.")
    workspace = lock(invitation.workspace_id)
    db.session.refresh(invitation)
    if not invitation.is_pending():
        raise TeamError("This invitation is no longer valid.")
    if db.session.scalar(select(Membership.id).where(
            Membership.workspace_id == workspace.id, Membership.user_id == user.id)):
        raise TeamError("You are already a member of this workspace.")
    members, pending = seat_usage(workspace)
    if members + pending > workspace.seats:  # seats were reduced after the invitation
        raise TeamError("This workspace has no free seat any more. Ask its owner to add a seat.")
    membership = Membership(workspace_id=workspace.id, user_id=user.id, role=invitation.role)
    invitation.accepted_at = utcnow()
    db.session.add(membership)
    db.session.flush()
    return membership


# --- members ------------------------------------------------------------------------

def _check_manager(actor: Membership, target: Membership) -> None:
    if not actor.can_manage:
        raise TeamError("Only the owner and admins can manage members.")
    if target.role == "owner":
        raise TeamError("The owner cannot be changed this way; the owner can transfer ownership.")


def change_role(actor: Membership, target: Membership, role: str) -> None:
    if role not in INVITABLE_ROLES:
        raise TeamError("Choose a role: admin or member." if role not in ROLES
                        else "Use 'Transfer ownership' to make someone the owner.")
    _check_manager(actor, target)
    target.role = role


def max_cap(workspace: Workspace) -> int:
    """The highest cap that makes sense: the seat quota, or the pool when pooled."""
    if workspace.quota_mode == "pooled":
        return workspace.seats * workspace.seat_quota
    return workspace.seat_quota


def set_cap(actor: Membership, target: Membership, cap: int | None) -> None:
    """Cap a member's quota. The owner's own quota is the owner's alone: admins cannot
    cap it (as they cannot change the owner's role or remove them)."""
    if not actor.can_manage:
        raise TeamError("Only the owner and admins can set caps.")
    if target.role == "owner" and actor.role != "owner":
        raise TeamError("Only the owner can cap the owner's quota.")
    if cap is not None:
        if cap < 0:
            raise TeamError("A cap cannot be negative.")
        limit = max_cap(target.workspace)
        if cap > limit:
            raise TeamError(f"A cap can be at most {limit} (the {'pool' if target.workspace.quota_mode == 'pooled' else 'seat quota'}); "
                            "leave it empty for no cap.")
    target.quota_cap = cap


def remove_member(actor: Membership, target: Membership) -> User:
    """Remove a member: the seat frees at once, their generations stay."""
    _check_manager(actor, target)
    if target.id == actor.id:
        raise TeamError("Use 'Leave workspace' to remove yourself.")
    user = target.user
    db.session.delete(target)
    _keep_a_workspace(user)
    return user


def _keep_a_workspace(user: User) -> None:
    """Someone who signed up through an invitation has no personal workspace (issue 14): when they
    leave or are removed from their last one, they get it now, so nobody is left without a workspace."""
    db.session.flush()
    if not db.session.scalar(select(Membership.id).where(Membership.user_id == user.id).limit(1)):
        create_personal_workspace(user)


def leave(membership: Membership) -> None:
    if membership.role == "owner":
        raise TeamError("Transfer ownership to another member before leaving.")
    user = membership.user
    db.session.delete(membership)
    _keep_a_workspace(user)


def transfer_ownership(owner: Membership, target: Membership) -> None:
    if owner.role != "owner":
        raise TeamError("Only the owner can transfer ownership.")
    if target.workspace_id != owner.workspace_id or target.id == owner.id:
        raise TeamError("Choose another member of this workspace.")
    lock(owner.workspace_id)
    target.role = "owner"
    owner.role = "admin"
