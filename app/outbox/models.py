"""Outbox rows: a Redis side effect (an RQ job, or a generation stream's final entry) not yet delivered."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core import utcnow
from app.extensions import db


class OutboxMessage(db.Model):
    """One pending side effect. Deleted once delivered; a row that stays is retried by the sweep."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # job | stream
    # The RQ job id (deterministic, e.g. generation-12) or the stream key: what dispatch checks first.
    target: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # The sweep leaves a row alone until then, so it does not race the dispatch right after commit.
    available_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
