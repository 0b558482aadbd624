"""Prompt templates and their immutable versions."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User

from app.core import utcnow
from app.extensions import db

TEST_RUN_STATUSES = ("queued", "running", "succeeded", "failed")
CATEGORIES = ("Ads", "Press & PR", "Website", "Email", "Social", "Frameworks", "Rewrite")


class Template(db.Model):
    """A catalogue entry; what users run is its published version."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    icon: Mapped[str] = mapped_column(String(40), default="sparkles")
    source: Mapped[str] = mapped_column(String(20), default="seed")  # seed | admin | workspace
    # None: a site template, visible to everyone; else private to that workspace.
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    seed_hash: Mapped[str | None] = mapped_column(String(64))
    published_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("template_versions.id", use_alter=True, name="fk_templates_published_version_id_template_versions")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    published_version: Mapped["TemplateVersion | None"] = relationship(
        foreign_keys=[published_version_id], post_update=True
    )


class TemplateVersion(db.Model):
    """One immutable snapshot of a template's fields, prompts and output rules."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    system_prompt: Mapped[str] = mapped_column(Text)
    user_prompt: Mapped[str] = mapped_column(Text)
    output: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(String(300), default="")
    # The metadata as of this version; publishing copies it onto the template (what users see).
    name: Mapped[str | None] = mapped_column(String(120))
    category: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(String(300))
    icon: Mapped[str | None] = mapped_column(String(40))
    # Model parameters; None falls back to the site default.
    model: Mapped[str | None] = mapped_column(String(120))
    temperature: Mapped[float | None]
    max_tokens: Mapped[int | None]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    template: Mapped[Template] = relationship(foreign_keys=[template_id])
    author: Mapped[User | None] = relationship()

    @property
    def default_variants(self) -> int:
        return int(self.output.get("variants", 3))

    @property
    def max_chars(self) -> int | None:
        return self.output.get("max_chars")

    @property
    def format(self) -> str:
        return self.output.get("format", "single")

    @property
    def llm(self) -> dict[str, Any] | None:
        """The model parameters in the data format, or None when all fall back to the site."""
        values = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}
        values = {k: v for k, v in values.items() if v is not None}
        return values or None


class TestRun(db.Model):
    """A workspace author's test run of a draft: who ran it where, and how many variants it asked for.

    It exists so the run can be charged like a generation: its QuotaCharges are keyed by
    this id (unique per ledger), so settling or refunding it twice moves nothing.
    Site admins' test runs of site templates are free and leave no row.
    """

    __tablename__ = "test_runs"
    __table_args__ = (CheckConstraint(f"status IN {TEST_RUN_STATUSES!r}", name="status"),)
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(60), unique=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    variant_count: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="queued")  # one of TEST_RUN_STATUSES
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    finished_at: Mapped[datetime | None]
