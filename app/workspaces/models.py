"""Workspaces (teams), who belongs to them, invitations, brand voices and projects."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User

from app.core import utcnow
from app.extensions import db

ROLES = ("owner", "admin", "member")
INVITABLE_ROLES = ("admin", "member")
QUOTA_MODES = ("per_seat", "pooled")


class Workspace(db.Model):
    __tablename__ = "workspaces"
    __table_args__ = (
        UniqueConstraint("stripe_customer_id"),
        CheckConstraint(f"quota_mode IN {QUOTA_MODES!r}", name="quota_mode"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    plan: Mapped[str] = mapped_column(String(40), default="free")
    seats: Mapped[int] = mapped_column(default=1)
    generations_per_seat: Mapped[int] = mapped_column(default=20)
    quota_mode: Mapped[str] = mapped_column(String(20), default="per_seat", server_default="per_seat")
    # Whether this workspace carries its owner's Free allowance: only the personal workspace made
    # at sign-up does. Workspaces created later start empty on Free (see ARCHITECTURE.md).
    free_allowance: Mapped[bool] = mapped_column(default=True, server_default="1")
    # Set by billing from the subscription; until then the period is the calendar month.
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]
    # Billing (Stripe): the subscription as last synced, and what it grants now.
    stripe_customer_id: Mapped[str | None] = mapped_column(String(80))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(80))
    stripe_subscription_item_id: Mapped[str | None] = mapped_column(String(80))
    subscription_status: Mapped[str | None] = mapped_column(String(30))
    subscribed_plan: Mapped[str | None] = mapped_column(String(40))
    subscribed_seats: Mapped[int | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False, server_default="0")
    past_due_since: Mapped[datetime | None]
    billing_synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def seat_quota(self) -> int:
        """Generations per seat this period: the plan's, or none for a Free workspace
        without the Free allowance (a second workspace cannot mint more free copy)."""
        if self.plan == "free" and not self.free_allowance:
            return 0
        return self.generations_per_seat


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("workspace_id", "user_id"),
        CheckConstraint(f"role IN {ROLES!r}", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed by uq_memberships_workspace_id_user_id (workspace_id first).
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="member")
    quota_cap: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    workspace: Mapped[Workspace] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()

    @property
    def can_manage(self) -> bool:
        return self.role in ("owner", "admin")


class Invitation(db.Model):
    """An emailed, signed, single-use invitation; pending ones hold a seat."""

    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(f"role IN {INVITABLE_ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(20), default="member")
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime]
    last_sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    workspace: Mapped[Workspace] = relationship()
    invited_by: Mapped[User | None] = relationship()

    def is_pending(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now
