"""Bulk runs: one uploaded sheet, its rows, each row a normal Generation; mappings saved per template.

A run is `draft` while the user maps and checks (the uploaded file is kept in `source` until the run
starts), then `running` / `paused`, and ends `finished` or `cancelled`. A row is `pending` (valid,
waiting), `queued` (handed to the bulk queue, holding one of the workspace's slots), `running`, and
ends `done`, `failed` or `skipped` (invalid, already done in an earlier run, over the chosen quota, or
cancelled): every row of a file ends in exactly one of those three.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User

from app.core import utcnow
from app.catalog.models import Template, TemplateVersion
from app.extensions import db

RUN_STATUSES = ("draft", "running", "paused", "cancelled", "finished")
ROW_STATUSES = ("pending", "queued", "running", "done", "failed", "skipped")
IN_FLIGHT = ("queued", "running")
FINAL = ("done", "failed", "skipped")


class BulkRun(db.Model):
    __tablename__ = "bulk_runs"
    __table_args__ = (Index("ix_bulk_runs_workspace_id_created_at", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_bulk_runs_workspace_id_workspaces"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_bulk_runs_user_id_users"))
    template_id: Mapped[int] = mapped_column(
        ForeignKey("templates.id", name="fk_bulk_runs_template_id_templates"))
    template_version_id: Mapped[int] = mapped_column(
        ForeignKey("template_versions.id", name="fk_bulk_runs_template_version_id_template_versions"))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    filename: Mapped[str] = mapped_column(String(200))
    # The uploaded file, kept only while the run is a draft (re-read when the user corrects the options).
    source: Mapped[bytes | None] = mapped_column(LargeBinary)
    # How the file is read: {"kind", "encoding", "delimiter", "header_row"} (detected, then corrected).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    redo_done: Mapped[bool] = mapped_column(default=False)
    total_rows: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    template: Mapped[Template] = relationship()
    template_version: Mapped[TemplateVersion] = relationship()
    user: Mapped[User | None] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status in ("running", "paused")


class BulkRow(db.Model):
    __tablename__ = "bulk_rows"
    __table_args__ = (
        UniqueConstraint("run_id", "position", name="uq_bulk_rows_run_id_position"),
        Index("ix_bulk_rows_run_id_status", "run_id", "status"),
        Index("ix_bulk_rows_workspace_id_row_key", "workspace_id", "row_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("bulk_runs.id", ondelete="CASCADE",
                                                   name="fk_bulk_rows_run_id_bulk_runs"))
    workspace_id: Mapped[int]
    position: Mapped[int]  # 1-based data row
    line: Mapped[int]  # the row number the spreadsheet program shows
    cells: Mapped[list[Any]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    tone: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(40))
    variant_count: Mapped[int]
    creativity: Mapped[str] = mapped_column(String(20))
    # sha256 of (inputs, settings, template version): a rerun skips rows already done.
    row_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    note: Mapped[str | None] = mapped_column(String(1000))
    generation_id: Mapped[int | None]  # the row's latest generation (no FK: History may delete it)
    attempts: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    run: Mapped[BulkRun] = relationship()


class BulkMapping(db.Model):
    """The last mapping used with a template in a workspace, by column name, offered next time."""

    __tablename__ = "bulk_mappings"
    __table_args__ = (UniqueConstraint("workspace_id", "template_id", name="uq_bulk_mappings_workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_bulk_mappings_workspace_id_workspaces"))
    template_id: Mapped[int] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE", name="fk_bulk_mappings_template_id_templates"))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class BulkSlots(db.Model):
    """Rows of a workspace in flight (queued or running): claimed with one conditional UPDATE, so a big run
    never holds more than BULK_CONCURRENCY worker threads. Moves only with a row's transition, in its
    transaction."""

    __tablename__ = "bulk_slots"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_bulk_slots_workspace_id_workspaces"),
        primary_key=True)
    in_flight: Mapped[int] = mapped_column(default=0)
