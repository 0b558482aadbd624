"""Generations (one submit of a template's form) and their variants."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User, utcnow
from app.catalog.models import Template, TemplateVersion
from app.extensions import db

STATUSES = ("queued", "running", "succeeded", "failed")


class Generation(db.Model):
    __tablename__ = "generations"
    __table_args__ = (Index("ix_generations_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    template_version_id: Mapped[int] = mapped_column(ForeignKey("template_versions.id"))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    tone: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(40))
    variant_count: Mapped[int]
    creativity: Mapped[float]
    system_prompt: Mapped[str] = mapped_column(Text)
    user_prompt: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    error_message: Mapped[str | None] = mapped_column(String(500))
    model: Mapped[str | None] = mapped_column(String(120))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    brand_voice_id: Mapped[int | None] = mapped_column(
        ForeignKey("brand_voices.id", ondelete="SET NULL", name="fk_generations_brand_voice"))
    parent_variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL", use_alter=True, name="fk_generation_parent_variant")
    )
    search_document: Mapped[str] = mapped_column(Text, default="")
    # The knowledge passages put into this generation's prompt: [{"item_id", "passage_id", "title", "text"}].
    knowledge_passages: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    template: Mapped[Template] = relationship()
    template_version: Mapped[TemplateVersion] = relationship()
    user: Mapped[User | None] = relationship()
    variants: Mapped[list["Variant"]] = relationship(
        back_populates="generation",
        order_by="Variant.position",
        cascade="all, delete-orphan",
        foreign_keys="Variant.generation_id",
    )

    @property
    def is_finished(self) -> bool:
        return self.status in ("succeeded", "failed")


class Variant(db.Model):
    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("generation_id", "position", name="uq_variant_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    original_text: Mapped[str | None] = mapped_column(Text)
    over_limit: Mapped[bool] = mapped_column(default=False)
    repaired: Mapped[bool] = mapped_column(default=False)
    # The model stopped at its output limit (or the text hit LLM_MAX_OUTPUT_CHARS): kept, but flagged.
    cut_off: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_favourite: Mapped[bool] = mapped_column(default=False, index=True)
    rating: Mapped[int] = mapped_column(default=0)  # -1, 0, +1
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    edited_at: Mapped[datetime | None]

    generation: Mapped[Generation] = relationship(back_populates="variants", foreign_keys=[generation_id])

    @property
    def char_count(self) -> int:
        return len(self.text)
