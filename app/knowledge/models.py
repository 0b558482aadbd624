"""Knowledge items (a workspace's products, company facts, FAQs, proof points) and their passages.

An item keeps its whole text (`body`, typed or extracted from an upload); its passages are that text
split into bounded pieces (app/knowledge/splitting.py), the unit retrieval ranks and a prompt receives.
The full-text index over passages is not a model: the migration builds it per dialect (SQLite FTS5
external-content table + triggers; PostgreSQL a generated tsvector column + GIN index), see
app/knowledge/retrieval.py.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, PrimaryKeyConstraint, String, Text, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import utcnow
from app.extensions import db

KINDS = {"product": "Product", "company_fact": "Company fact", "faq": "FAQ", "proof_point": "Proof point"}
SOURCES = ("typed", "markdown", "text", "pdf", "docx")


class KnowledgeItem(db.Model):
    """One thing the workspace knows, e.g. a product sheet; archived items are kept but never retrieved."""

    __tablename__ = "knowledge_items"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_knowledge_items"),
                      Index("ix_knowledge_items_workspace_id", "workspace_id"))

    id: Mapped[int] = mapped_column()
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_knowledge_items_workspace_id_workspaces"))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(20), default="typed")
    filename: Mapped[str | None] = mapped_column(String(255))
    archived: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_knowledge_items_created_by_id_users"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    passages: Mapped[list["KnowledgePassage"]] = relationship(
        back_populates="item", order_by="KnowledgePassage.position", cascade="all, delete-orphan")

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)


class KnowledgePassage(db.Model):
    """A bounded piece of an item's text: what retrieval ranks and what a prompt receives."""

    __tablename__ = "knowledge_passages"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_knowledge_passages"),
                      UniqueConstraint("item_id", "position", name="uq_knowledge_passages_item_id"),
                      Index("ix_knowledge_passages_workspace_id", "workspace_id"))

    id: Mapped[int] = mapped_column()
    item_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_items.id", ondelete="CASCADE", name="fk_knowledge_passages_item_id_knowledge_items"))
    # Denormalised from the item so retrieval filters the index by workspace without a join first.
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_knowledge_passages_workspace_id_workspaces"))
    position: Mapped[int]
    heading: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)

    item: Mapped[KnowledgeItem] = relationship(back_populates="passages")
