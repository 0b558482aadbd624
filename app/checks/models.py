"""A workspace's style guide: its settings, its entries, and reading-level targets per brand voice."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core import utcnow
from app.extensions import db

ENTRY_KINDS = ("banned", "spelling", "ai_tell")
FLAG_ACTIONS = ("show", "hold")


class StyleGuide(db.Model):
    """One per workspace, made the first time someone saves the style-guide page.

    Until then the defaults apply: AI tells on (the default list), claims checked, flags shown.
    """

    __tablename__ = "style_guides"
    __table_args__ = (
        UniqueConstraint("workspace_id", name="uq_style_guides_workspace_id"),
        CheckConstraint("flag_action IN ('show', 'hold')", name="ck_style_guides_flag_action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_style_guides_workspace_id_workspaces"))
    ai_tells_enabled: Mapped[bool] = mapped_column(default=True, server_default="1")
    claims_enabled: Mapped[bool] = mapped_column(default=True, server_default="1")
    flag_action: Mapped[str] = mapped_column(String(10), default="show", server_default="show")
    max_grade: Mapped[int | None]  # the workspace's default target reading level (grade)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_style_guides_updated_by_id_users"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class StyleEntry(db.Model):
    """A banned phrase (with an optional replacement), a required spelling, or an AI tell."""

    __tablename__ = "style_entries"
    __table_args__ = (
        UniqueConstraint("workspace_id", "kind", "phrase_key", name="uq_style_entries_workspace_id"),
        CheckConstraint("kind IN ('banned', 'spelling', 'ai_tell')", name="ck_style_entries_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_style_entries_workspace_id_workspaces"),
        index=True)
    kind: Mapped[str] = mapped_column(String(10))
    phrase: Mapped[str] = mapped_column(String(80))
    phrase_key: Mapped[str] = mapped_column(String(80))  # lower-cased, spaces collapsed: the duplicate check
    replacement: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class ReadingTarget(db.Model):
    """A target reading level for copy written in one brand voice (overrides the workspace's)."""

    __tablename__ = "reading_targets"
    __table_args__ = (UniqueConstraint("brand_voice_id", name="uq_reading_targets_brand_voice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_reading_targets_workspace_id_workspaces"),
        index=True)
    brand_voice_id: Mapped[int] = mapped_column(
        ForeignKey("brand_voices.id", ondelete="CASCADE", name="fk_reading_targets_brand_voice_id_brand_voices"))
    max_grade: Mapped[int]


class CheckDaily(db.Model):
    """The check figures' rollup: variants checked per workspace, template and UTC day (of their
    generation), with how many had style findings, unsupported claims, the wrong language, a repair,
    and a repair that fixed everything. Added to in the job's transaction that stores the variants
    (app/checks/figures.py), so the Usage page and the catalogue's figures sum a few rows per day
    instead of scanning every variant. It counts checks as they were made: deleting a variant later
    does not take its check back.
    """

    __tablename__ = "check_daily"
    __table_args__ = (UniqueConstraint("workspace_id", "day", "template_id", name="uq_check_daily_workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_check_daily_workspace_id_workspaces"))
    day: Mapped[date]
    template_id: Mapped[int]
    checked: Mapped[int] = mapped_column(default=0)
    style: Mapped[int] = mapped_column(default=0)
    claims: Mapped[int] = mapped_column(default=0)
    wrong_language: Mapped[int] = mapped_column(default=0)
    repaired: Mapped[int] = mapped_column(default=0)
    repaired_ok: Mapped[int] = mapped_column(default=0)
