"""API keys, the generations each key started, and stored Idempotency-Key results."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User

from app.core import utcnow
from app.extensions import db

SCOPES = ("generate", "read", "bulk", "webhooks")


class ApiKey(db.Model):
    """A workspace's key for /api/v1. Only the SHA-256 of the secret is stored; `display` is the
    visible start of the key (cd_live_/cd_test_ and a few characters) so people can tell keys apart."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_api_keys_workspace_id_workspaces"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    display: Mapped[str] = mapped_column(String(24))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # The member whose seat the key's generations charge (in pooled mode: the pool, on their behalf).
    charge_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_api_keys_charge_user_id_users"))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_api_keys_created_by_id_users"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_ip: Mapped[str | None] = mapped_column(String(64))

    charge_user: Mapped[User | None] = relationship(foreign_keys=[charge_user_id])

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def audit_state(self) -> dict[str, Any]:
        return {"name": self.name, "display": self.display, "scopes": list(self.scopes),
                "charge_user_id": self.charge_user_id,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


class ApiGeneration(db.Model):
    """Which key started a generation (for the key's usage); written in the generation's transaction."""

    __tablename__ = "api_generations"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE", name="fk_api_generations_generation_id_generations"),
        primary_key=True)
    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE", name="fk_api_generations_api_key_id_api_keys"), index=True)


class IdempotencyRecord(db.Model):
    """One Idempotency-Key of one API key: the request's fingerprint and, once done, its response."""

    __tablename__ = "api_idempotency"
    __table_args__ = (
        UniqueConstraint("api_key_id", "key", name="uq_api_idempotency_api_key_id"),
        Index("ix_api_idempotency_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE", name="fk_api_idempotency_api_key_id_api_keys"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]  # None while the first request is still running
    response_body: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime]
