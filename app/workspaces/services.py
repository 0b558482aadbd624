"""Workspace rules: personal workspaces, the active workspace, tenant-scoped lookups."""
from __future__ import annotations

from typing import TypeVar

from flask import abort, current_app, session
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.workspaces.models import Membership, Workspace

M = TypeVar("M")


def create_personal_workspace(user: User) -> Workspace:
    """Give a new user their own workspace on the Free plan (caller commits)."""
    workspace = Workspace(
        name=f"{user.email.split('@')[0]}'s workspace",
        plan="free",
        seats=1,
        generations_per_seat=current_app.config["FREE_MONTHLY_GENERATIONS"],
    )
    db.session.add(workspace)
    db.session.add(Membership(workspace=workspace, user=user, role="owner"))
    return workspace


def memberships_of(user: User) -> list[Membership]:
    return list(
        db.session.scalars(
            select(Membership).where(Membership.user_id == user.id).order_by(Membership.id)
        )
    )


def current_membership(user: User) -> Membership | None:
    """The membership of the workspace the user is working in (kept in the session)."""
    wanted = session.get("workspace_id")
    memberships = memberships_of(user)
    if not memberships:
        return None
    for membership in memberships:
        if membership.workspace_id == wanted:
            return membership
    session["workspace_id"] = memberships[0].workspace_id
    return memberships[0]


def get_in_workspace_or_404(model: type[M], object_id: int, workspace_id: int) -> M:
    """Load a row of workspace data by id; another workspace's id is a 404."""
    obj = db.session.get(model, object_id)
    if obj is None or getattr(obj, "workspace_id") != workspace_id:
        abort(404)
    return obj
