"""Webhook endpoints, events and deliveries (one row per endpoint an event is sent to)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import utcnow
from app.extensions import db

EVENT_TYPES = (
    "generation.completed", "generation.failed", "bulk_run.completed",
    "quota.threshold_reached", "quota.exhausted",
)
# Sent only by "Send test event", to that one endpoint, whatever it subscribed to.
TEST_EVENT = "webhook.test"


class WebhookEndpoint(db.Model):
    """A URL of a workspace's that receives the events it chose, signed with its own secret.

    The secret is kept in clear because we sign with it (as Stripe does). On rotation the previous
    secret keeps signing beside the new one until `previous_secret_expires_at`, so a receiver can
    switch without dropping deliveries.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_webhook_endpoints_workspace_id_workspaces"),
        index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(80))
    previous_secret: Mapped[str | None] = mapped_column(String(80))
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    def subscribes(self, event_type: str) -> bool:
        return event_type in (self.events or [])


class WebhookEvent(db.Model):
    """Something that happened in a workspace, with the payload every endpoint receives for it.

    `public_id` (`evt_...`) is stable: a redelivery carries the same id, so receivers deduplicate on it.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("public_id", name="uq_webhook_events_public_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40))
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_webhook_events_workspace_id_workspaces"),
        index=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class WebhookDelivery(db.Model):
    """Sending one event to one endpoint: its attempts so far, the last answer, and when to try next.

    status: pending (an attempt is queued or due at `next_attempt_at`), succeeded, failed (gave up).
    While pending, `next_attempt_at` is also a lease: the sweep enqueues an attempt whose time has come,
    so an attempt lost with its job (Redis flushed, worker killed) is tried again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_webhook_deliveries_workspace_id_workspaces"),
        index=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE", name="fk_webhook_deliveries_event_id_webhook_events"),
        index=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE",
                   name="fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        index=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    status_code: Mapped[int | None]
    response_ms: Mapped[int | None]
    response_excerpt: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(String(300))
    redelivery_of_id: Mapped[int | None]  # the delivery a manual "Redeliver" repeated
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    event: Mapped[WebhookEvent] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()
