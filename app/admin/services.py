"""Running the site: users (suspend, reactivate, site-admin role) and workspaces (plan and seats).

Each action writes its audit entry in the same transaction as the change, and
raises AdminError, writing nothing, when it is not allowed.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.admin import audit
from app.auth import sessions
from app.auth.models import User
from app.bounds import escape_like
from app.core import required
from app.extensions import db
from app.workspaces import services as teams
from app.workspaces.models import Membership, Workspace

PAGE_SIZE = 25


class AdminError(Exception):
    """An admin action that is not allowed; the message says why."""


@dataclass
class Page:
    items: list
    page: int
    pages: int
    total: int


def _paginate(stmt, page: int) -> Page:
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    items = list(db.session.scalars(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return Page(items, page, pages, total)


def _like(query: str) -> str:
    return f"%{escape_like(query.strip().lower())}%"


def search_users(query: str = "", status: str = "", page: int = 1) -> Page:
    stmt = select(User)
    if query.strip():
        stmt = stmt.where(func.lower(User.email).like(_like(query), escape="\\"))
    if status == "suspended":
        stmt = stmt.where(User.is_suspended.is_(True))
    elif status == "admins":
        stmt = stmt.where(User.is_site_admin.is_(True))
    return _paginate(stmt.order_by(User.created_at.desc(), User.id.desc()), page)


def search_workspaces(query: str = "", page: int = 1) -> Page:
    stmt = select(Workspace)
    if query.strip():
        stmt = stmt.where(func.lower(Workspace.name).like(_like(query), escape="\\"))
    return _paginate(stmt.order_by(Workspace.created_at.desc(), Workspace.id.desc()), page)


def memberships_of_user(user: User) -> list[Membership]:
    return list(db.session.scalars(select(Membership).where(Membership.user_id == user.id).order_by(Membership.id)))


def members_of(workspace: Workspace) -> list[Membership]:
    return list(db.session.scalars(select(Membership).where(Membership.workspace_id == workspace.id)
                                   .order_by(Membership.created_at)))


def _state(user: User) -> dict:
    return {"suspended": user.is_suspended, "site_admin": user.is_site_admin}


def set_suspended(actor: User, user: User, suspended: bool) -> None:
    """Suspend (their sessions end at the next request) or reactivate an account."""
    if user.id == actor.id and suspended:
        raise AdminError("You cannot suspend yourself: ask another site admin.")
    if user.is_suspended == suspended:
        raise AdminError(f"{user.email} is already {'suspended' if suspended else 'active'}.")
    before = _state(user)
    user.is_suspended = suspended
    if suspended:
        sessions.end_all(user)
    audit.record(actor, "user.suspend" if suspended else "user.reactivate", "user", user.id, before, _state(user))


def set_site_admin(actor: User | None, user: User, admin: bool) -> None:
    """Grant or revoke the site-admin role; nobody can demote themselves (no lock-out)."""
    if actor is not None and user.id == actor.id and not admin:
        raise AdminError("You cannot revoke your own site-admin role: ask another site admin.")
    if user.is_site_admin == admin:
        raise AdminError(f"{user.email} {'is already' if admin else 'is not'} a site admin.")
    before = _state(user)
    user.is_site_admin = admin
    audit.record(actor, "user.grant_admin" if admin else "user.revoke_admin", "user", user.id, before, _state(user))


def billing_enabled() -> bool:
    """Plans and seats come from Stripe when billing is configured; until then admins set them."""
    from app.billing.gateway import enabled
    return enabled()


def _sizing(workspace: Workspace) -> dict:
    return {"plan": workspace.plan, "seats": workspace.seats, "generations_per_seat": workspace.generations_per_seat}


def size_workspace(actor: User, workspace_id: int, *, plan: str, seats: int, generations_per_seat: int,
                   force: bool = False) -> Workspace:
    """Set plan, seats and generations per seat by hand (only while billing is off), audited in the
    caller's transaction."""
    if billing_enabled():
        raise AdminError("Billing is on: plans and seats follow the Stripe subscription.")
    from app.billing.services import plan as find_plan
    if find_plan(plan.strip()) is None:
        raise AdminError(f"Unknown plan {plan.strip()!r}: use free, pro or business.")
    workspace = required(db.session.get(Workspace, workspace_id), f"workspace {workspace_id}")
    before = _sizing(workspace)
    try:
        workspace = teams.set_seats(workspace_id, seats, generations_per_seat, plan.strip() or None, force)
    except teams.TeamError as exc:
        raise AdminError(str(exc)) from exc
    audit.record(actor, "workspace.size", "workspace", workspace.id, before, _sizing(workspace))
    return workspace
