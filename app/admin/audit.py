"""The audit log: one row per admin action, written in the action's own transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from app.admin.models import AuditEntry
from app.auth.models import User
from app.bounds import escape_like
from app.extensions import db

PAGE_SIZE = 50


def record(actor: User | None, action: str, target_type: str, target_id: Any,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> AuditEntry:
    """Add an entry to the session; the caller's commit writes it together with the change."""
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        actor_email=actor.email if actor is not None else "command line",
        action=action, target_type=target_type, target_id=str(target_id),
        before=before, after=after,
    )
    db.session.add(entry)
    return entry


@dataclass
class AuditFilter:
    actor: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    since: date | None = None
    until: date | None = None


@dataclass
class AuditPage:
    entries: list[AuditEntry]
    page: int
    pages: int
    total: int


def browse(flt: AuditFilter, page: int = 1, page_size: int = PAGE_SIZE) -> AuditPage:
    """Newest first, filtered by actor email (substring), action (prefix), target and dates."""
    stmt = select(AuditEntry)
    if flt.actor:
        stmt = stmt.where(func.lower(AuditEntry.actor_email).like(f"%{escape_like(flt.actor.lower())}%", escape="\\"))
    if flt.action:
        stmt = stmt.where(AuditEntry.action.like(f"{escape_like(flt.action)}%", escape="\\"))
    if flt.target_type:
        stmt = stmt.where(AuditEntry.target_type == flt.target_type)
    if flt.target_id:
        stmt = stmt.where(AuditEntry.target_id == flt.target_id)
    if flt.since:
        stmt = stmt.where(AuditEntry.created_at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEntry.created_at < flt.until + timedelta(days=1))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    entries = list(db.session.scalars(
        stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(page_size).offset((page - 1) * page_size)))
    return AuditPage(entries, page, pages, total)


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def target_types() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.target_type).distinct().order_by(AuditEntry.target_type)))

