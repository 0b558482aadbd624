"""Generations (one submit of a template's form) and their variants."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, false, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User

from app.core import utcnow
from app.catalog.models import Template, TemplateVersion
from app.extensions import db

STATUSES = ("queued", "running", "succeeded", "failed")


class Generation(db.Model):
    __tablename__ = "generations"
    __table_args__ = (
        Index("ix_generations_workspace_id_created_at", "workspace_id", "created_at"),
        # History's template filter: newest first within one template of one workspace.
        Index("ix_generations_workspace_id_template_id_created_at", "workspace_id", "template_id", "created_at"),
        # Stale-job recovery looks only at unfinished generations: a few rows, whatever the history's size.
        Index("ix_generations_status_created_at", "status", "created_at",
              postgresql_where=text("status IN ('queued', 'running')"),
              sqlite_where=text("status IN ('queued', 'running')")),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
    )

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
    status: Mapped[str] = mapped_column(String(20), default="queued")  # one of STATUSES
    error_message: Mapped[str | None] = mapped_column(String(500))
    model: Mapped[str | None] = mapped_column(String(120))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    brand_voice_id: Mapped[int | None] = mapped_column(
        ForeignKey("brand_voices.id", ondelete="SET NULL"))
    parent_variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL", use_alter=True, name="fk_generations_parent_variant_id_variants")
    )
    search_document: Mapped[str] = mapped_column(Text, default="")
    # The bulk run row this generation wrote (app/bulk); None for a generation from the form.
    bulk_row_id: Mapped[int | None] = mapped_column(
        ForeignKey("bulk_rows.id", ondelete="SET NULL", name="fk_generations_bulk_row_id_bulk_rows"), index=True)
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
    __table_args__ = (UniqueConstraint("generation_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed by uq_variants_generation_id_position (generation_id first).
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    original_text: Mapped[str | None] = mapped_column(Text)
    over_limit: Mapped[bool] = mapped_column(default=False)
    repaired: Mapped[bool] = mapped_column(default=False)
    # The model stopped at its output limit (or the text hit LLM_MAX_OUTPUT_CHARS): kept, but flagged.
    cut_off: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_favourite: Mapped[bool] = mapped_column(default=False)
    rating: Mapped[int] = mapped_column(default=0)  # -1, 0, +1
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    edited_at: Mapped[datetime | None]
    # "Not usable: refund": set once, by one conditional UPDATE (app/quota/refunds.py); kept in history.
    refunded_at: Mapped[datetime | None]
    # List variants: the starred items, by their text (items are the stored text's lines, see list_items).
    favourite_items: Mapped[list[str] | None] = mapped_column(JSON)
    # Checks (app/checks): what the style, claims and language checks found after the one repair
    # (None: written before checks existed), summary flags for figures, and the hold state.
    findings: Mapped[list[dict] | None] = mapped_column(JSON(none_as_null=True))
    style_flagged: Mapped[bool] = mapped_column(default=False, server_default=false())
    claims_flagged: Mapped[bool] = mapped_column(default=False, server_default=false())
    wrong_language: Mapped[bool] = mapped_column(default=False, server_default=false())
    held: Mapped[bool] = mapped_column(default=False, server_default=false())
    checked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_variants_checked_by_id_users"))
    checked_at: Mapped[datetime | None]

    generation: Mapped[Generation] = relationship(back_populates="variants", foreign_keys=[generation_id])
    checked_by: Mapped[User | None] = relationship(foreign_keys=[checked_by_id])

    @property
    def copy_blocked(self) -> bool:
        """Held for review and not yet marked checked: copy and export are disabled."""
        return self.held and self.checked_at is None

    @property
    def char_count(self) -> int:
        return len(self.text)

    @property
    def unusable_reason(self) -> str | None:
        """Why this variant is not usable copy as delivered ("cut_off", "over_limit", "wrong_language"), or None.

        Only the model's own output counts: once edited, the text is the user's, and an
        over-limit edit is theirs to shorten (no refund is offered then).
        """
        if self.edited_at is not None:
            return None
        if self.cut_off:
            return "cut_off"
        if self.over_limit:
            return "over_limit"
        if self.wrong_language:
            return "wrong_language"
        return None

    @property
    def is_refunded(self) -> bool:
        return self.refunded_at is not None

    @property
    def is_copyable(self) -> bool:
        """Whether it may be copied or exported: not refunded (it was not paid for) and not held for review."""
        return self.refunded_at is None and not self.copy_blocked

    @property
    def items(self) -> list[str]:
        """A list variant's items (one per non-empty line); a single block is one item."""
        from app.generation.rules import list_items
        return list_items(self.text)
