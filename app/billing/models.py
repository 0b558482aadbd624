"""Plans and the Stripe events we received."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core import utcnow
from app.extensions import db

# What a plan can include, with the words the billing page shows. Plans may list only these, and code
# asks for them by these names (Plan.has refuses any other name: a typo would silently lock a feature).
FEATURES = {"brand_voices": "brand voices", "api_access": "API access", "bulk_runs": "bulk runs",
            "knowledge": "knowledge base"}
# Knowledge base size per plan (app/knowledge): bytes per uploaded file, characters stored in all items.
# A plan with the feature but not listed here (a hand-set plan) gets the largest.
KNOWLEDGE_LIMITS = {
    "pro": {"file_bytes": 2 * 1024 * 1024, "total_chars": 1_000_000},
    "business": {"file_bytes": 10 * 1024 * 1024, "total_chars": 10_000_000},
}


class Plan(db.Model):
    """What a subscription buys: a per-seat price and a quota per seat."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    stripe_price_id: Mapped[str | None] = mapped_column(String(120), unique=True)
    generations_per_seat: Mapped[int]
    min_seats: Mapped[int] = mapped_column(default=1)
    max_seats: Mapped[int] = mapped_column(default=1)
    monthly_price_cents: Mapped[int] = mapped_column(default=0)  # shown on the billing page only
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(default=0)

    def has(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise ValueError(f"unknown plan feature {feature!r}; FEATURES lists them")
        return feature in (self.features or [])

    @property
    def feature_labels(self) -> list[str]:
        """The plan's features in the billing page's words, in FEATURES' order."""
        return [label for key, label in FEATURES.items() if key in (self.features or [])]


class StripeEvent(db.Model):
    """Every webhook event, stored once by its id; applied by re-syncing from Stripe."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[str | None] = mapped_column(String(80), index=True)
    created: Mapped[int]  # Stripe's timestamp
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="received")  # received|applied|ignored|failed
    note: Mapped[str | None] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    applied_at: Mapped[datetime | None]
